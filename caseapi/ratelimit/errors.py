"""The error of a request over a rate limit::

CaseApiError
└── RateLimitedError   429 rate_limited (``limit`` names it; ``Retry-After`` in seconds)
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError


class RateLimitedError(CaseApiError):
    """``limit`` is used up for this caller; it frees in ``retry_after`` seconds."""

    code = "rate_limited"
    http_status: ClassVar[int] = 429

    def __init__(self, *, limit: str, retry_after: int, what: str) -> None:
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(f"too many {what}; retry after {retry_after} s (limit {limit})")
        self.http_headers = {"Retry-After": str(retry_after)}
        self.problem_extensions = {"limit": limit, "retry_after": retry_after}
