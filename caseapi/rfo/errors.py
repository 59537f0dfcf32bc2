"""Errors of the RFO API::

CaseApiError
├── NotFoundError
│   └── RfoNotFoundError      404 rfo_not_found
└── RfoRuleError              409
    ├── RfoPublishedError     409 rfo_published: a published version never changes
    ├── RfoIncompleteError    409 rfo_incomplete: publishing without cause or actions
    └── RfoNotPublishedError  409 rfo_not_published: a PDF of a version not published
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class RfoNotFoundError(NotFoundError):
    """No (visible) RFO for case ``ref`` (or not that version)."""

    code = "rfo_not_found"

    def __init__(self, ref: str, version: int | None = None) -> None:
        self.ref = ref
        self.version = version
        which = f"version {version} of the RFO" if version is not None else "RFO"
        super().__init__(f"no {which} for case {ref!r}")


class RfoRuleError(CaseApiError):
    """A change the RFO rules refuse."""

    code = "rfo_rule_error"
    http_status: ClassVar[int] = 409


class RfoPublishedError(RfoRuleError):
    """Version ``version`` is published and can never change."""

    code = "rfo_published"

    def __init__(self, ref: str, version: int) -> None:
        self.ref = ref
        self.version = version
        super().__init__(
            f"version {version} of the RFO of {ref} is published and immutable; "
            "edit the draft of the next version instead"
        )


class RfoIncompleteError(RfoRuleError):
    """Publishing needs the fields in ``missing``."""

    code = "rfo_incomplete"

    def __init__(self, ref: str, missing: list[str]) -> None:
        self.ref = ref
        self.missing = missing
        self.problem_extensions = {"missing": list(missing)}
        super().__init__(f"the RFO of {ref} cannot be published without: {', '.join(missing)}")


class RfoNotPublishedError(RfoRuleError):
    """The PDF is made only of published versions; ``version`` (or any) is not one."""

    code = "rfo_not_published"

    def __init__(self, ref: str, version: int | None) -> None:
        self.ref = ref
        self.version = version
        which = f"version {version} of the RFO" if version is not None else "the RFO"
        super().__init__(
            f"{which} of {ref} is not published yet; the PDF is made only of published "
            "versions (read the draft as JSON or with format=md)"
        )
