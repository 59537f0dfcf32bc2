"""Errors of the ``nms`` package.

    NmsError
    ├── ConfigError        bad configuration value, file or environment variable
    ├── InventoryError     bad inventory file (every problem, with file, line, field)
    ├── OrganisationError  bad organisation file (every problem, with file, line, field)
    ├── ListenError        the API address cannot be bound (in use, not permitted)
    └── ApiWorkersError    ``nms api``'s workers keep failing or did not stop cleanly

All carry a list of human-readable ``problems``; the CLI prints them one per line
and exits with code 2.
"""

from __future__ import annotations


class NmsError(Exception):
    """Root of the nms exceptions."""


class _ProblemsError(NmsError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ConfigError(_ProblemsError):
    """The configuration is invalid; ``problems`` names each key and what is wrong."""


class InventoryError(_ProblemsError):
    """The inventory is invalid; ``problems`` names file, line and field of each."""


class OrganisationError(_ProblemsError):
    """The organisation file is invalid; ``problems`` names file, line and field of each."""


class ListenError(_ProblemsError):
    """The API cannot listen on the configured address."""


class ApiWorkersError(_ProblemsError):
    """``nms api``'s worker processes keep failing, or did not stop cleanly."""
