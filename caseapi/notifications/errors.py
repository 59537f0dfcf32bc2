"""Errors of the notification package::

CaseApiError
├── DeliveryError                 one attempt to send failed; retried with backoff
│   └── PermanentDeliveryError    retrying cannot help (4xx, refused recipient)
├── NotFoundError
│   ├── WebhookNotFoundError      404 webhook_not_found
│   └── DeliveryNotFoundError     404 notification_not_found
└── WebhookRequestError           422 invalid_webhook_request
    └── WebhookUrlRejectedError   422 webhook_scheme_forbidden, webhook_userinfo_forbidden,
                                      webhook_host_invalid, webhook_host_unresolvable,
                                      webhook_address_forbidden (see ``addresses``)
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class DeliveryError(CaseApiError):
    """One send failed; ``channel`` and ``target`` say where to."""

    code = "delivery_failed"

    def __init__(self, message: str, *, channel: str, target: str) -> None:
        self.channel = channel
        self.target = target
        super().__init__(f"{channel} {target}: {message}")


class PermanentDeliveryError(DeliveryError):
    """The receiver refused the message in a way a retry cannot change."""

    code = "delivery_refused"


class WebhookNotFoundError(NotFoundError):
    code = "webhook_not_found"

    def __init__(self, subscription_id: int) -> None:
        self.subscription_id = subscription_id
        super().__init__(f"no webhook subscription {subscription_id}")


class DeliveryNotFoundError(NotFoundError):
    code = "notification_not_found"

    def __init__(self, delivery_id: int) -> None:
        self.delivery_id = delivery_id
        super().__init__(f"no failed notification delivery {delivery_id}")


class WebhookRequestError(CaseApiError):
    code = "invalid_webhook_request"
    http_status: ClassVar[int] = 422


class WebhookUrlRejectedError(WebhookRequestError):
    """A webhook URL that breaks a delivery rule; ``code`` names the rule.

    ``problem_extensions`` carry ``field`` (``url``) and, for an address,
    ``address`` and ``address_class`` (``loopback``, ``private``, ...).
    """

    def __init__(self, message: str, *, code: str, **extensions: str) -> None:
        self.code = code
        self.problem_extensions = {"field": "url", **extensions}
        super().__init__(message)
