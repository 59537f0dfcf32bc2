"""Settings of the notification dispatcher and its channels (one frozen dataclass).

Built from the ``notifications.*`` section with ``NotificationSettings.dispatcher()``
(``caseapi.notifications.config``), which owns the defaults that section has; the
others (claim timeout, batch size, ...) are tuning knobs only tests change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from caseapi.notifications.addresses import WebhookPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherSettings:
    """Everything the dispatcher and channels need.

    E-mail is off while ``smtp_host`` is ``None``; MQTT is off while ``mqtt_url`` is
    ``None``; webhooks are always on (they exist only when someone subscribes).
    """

    smtp_host: str | None
    smtp_port: int
    smtp_from: str
    smtp_starttls: bool
    smtp_user: str | None
    smtp_password: str | None = field(repr=False)
    #: ``mqtt://[user:password@]host[:port]``.
    mqtt_url: str | None = field(repr=False)  # may carry a password
    mqtt_topic_prefix: str
    max_attempts: int
    backoff_base: timedelta
    backoff_cap: timedelta
    #: How long a claimed delivery is reserved for one dispatcher; then it is due again.
    claim_timeout: timedelta = timedelta(minutes=5)
    #: Seconds one send (SMTP session, HTTP request, MQTT connect + PUBACK) may take.
    send_timeout: float = 30.0
    batch_size: int = 100
    concurrency: int = 10
    #: How long the old webhook secret keeps signing after a rotation (default).
    webhook_rotation_overlap: timedelta = timedelta(hours=24)
    #: Where webhooks may be delivered (``notifications.webhooks.*``).
    webhook_policy: WebhookPolicy = WebhookPolicy()  # noqa: RUF009 - frozen, shared safely
    #: Signs staff alerts to members' webhooks (``None``: no staff webhooks).
    staff_webhook_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base <= timedelta(0) or self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_base must be positive and backoff_cap >= backoff_base")
        if self.send_timeout <= 0:
            raise ValueError("send_timeout must be positive")
        if self.claim_timeout.total_seconds() <= self.send_timeout:
            # A claim must outlive the send it covers, or two dispatchers could
            # send the same delivery at the same time.
            raise ValueError("claim_timeout must be longer than send_timeout")
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        if not 0 < self.smtp_port < 65536:
            raise ValueError("smtp_port must be a TCP port")
        if self.mqtt_url is not None:
            parts = urlsplit(self.mqtt_url)
            if parts.scheme != "mqtt" or not parts.hostname:
                raise ValueError("mqtt_url must look like mqtt://host[:port]")
        if not self.mqtt_topic_prefix or self.mqtt_topic_prefix.endswith("/"):
            raise ValueError("mqtt_topic_prefix must be non-empty without a trailing '/'")

    @property
    def email_enabled(self) -> bool:
        return self.smtp_host is not None

    @property
    def mqtt_enabled(self) -> bool:
        return self.mqtt_url is not None
