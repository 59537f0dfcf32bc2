"""Errors of the staff alert acknowledgement (problem+json ``code`` each)."""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class AlertNotFoundError(NotFoundError):
    """No staff alert has this id, or the link's token is not one we issued."""

    code = "alert_not_found"

    def __init__(self, alert: str) -> None:
        self.alert = alert
        super().__init__(f"no staff alert {alert}")


class AlertNotPendingError(CaseApiError):
    """The alert was acknowledged already or ran out of people (an ack link works once)."""

    code = "alert_not_pending"
    http_status: ClassVar[int] = 409

    def __init__(self, alert_id: int, status: str) -> None:
        self.alert_id = alert_id
        self.status = status
        super().__init__(f"staff alert {alert_id} is {status}, not waiting for an ack")


class AlertLinkExpiredError(CaseApiError):
    """The ack link is older than ``ACK_LINK_TTL`` or a newer step replaced it."""

    code = "alert_link_expired"
    http_status: ClassVar[int] = 410

    def __init__(self, alert_id: int) -> None:
        self.alert_id = alert_id
        super().__init__(f"the acknowledgement link of staff alert {alert_id} has expired")
