"""The ``notifications.*`` settings, and the dispatcher settings derived from them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator

from caseapi.core.config import Section, check_mqtt_url
from caseapi.core.durations import Duration, positive
from caseapi.notifications.addresses import WebhookPolicy
from caseapi.notifications.settings import DispatcherSettings
from caseapi.oncall.config import AlertConfig


class WebhookSettings(Section):
    """Where webhooks may be delivered (``caseapi.notifications.addresses``)."""

    allow_http: bool = False
    """Accept ``http://`` URLs (labs only: production webhooks are ``https://``)."""
    internal_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    """The provider's own networks (CIDR): refused like private addresses."""
    allow_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    """Exceptions (CIDR): legitimate internal receivers, allowed whatever their class."""

    def policy(self) -> WebhookPolicy:
        return WebhookPolicy(
            allow_http=self.allow_http,
            internal_networks=tuple(self.internal_networks),
            allow_networks=tuple(self.allow_networks),
        )


class NotificationSettings(Section):
    """Customer notifications: e-mail, webhooks (always on) and MQTT."""

    enabled: bool = True
    interval: Duration = timedelta(seconds=5)
    """How often the dispatcher looks for messages to send."""
    smtp_host: str | None = None
    """E-mail is off until this is set."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "noc@localhost"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    mqtt_url: str | None = Field(default=None, repr=False)  # may carry a password
    """``mqtt://[user:password@]host[:port]``; MQTT is off until this is set."""
    mqtt_topic_prefix: str = "nms/v1"
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base: Duration = timedelta(seconds=30)
    backoff_cap: Duration = timedelta(hours=1)
    attach_rfo_pdf: bool = True
    """Attach the published RFO as a PDF to the ``rfo_published`` e-mail."""
    webhooks: WebhookSettings = WebhookSettings()
    staff_ack_base_url: str = "http://127.0.0.1:8000"
    """Where the acknowledgement links in staff alerts point: the case API's public
    URL as staff reach it (``<base>/v1/alerts/ack?token=...``)."""
    staff_webhook_secret: SecretStr | None = Field(default=None, min_length=16)
    """Signs staff alerts to members' own webhooks (``X-NMS-Signature``, like customer
    webhooks); unset: staff alerts go by e-mail (and MQTT) only."""
    staff_fallback_email: str | None = None
    """Told once when nobody acknowledges a staff alert (the chain ran out): the NOC's
    shared mailbox; unset: it is only logged."""
    staff_fallback_webhook: str | None = None
    """The same by webhook (a pager service or chat), signed with
    ``staff_webhook_secret`` (required with it)."""

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, url: str | None) -> str | None:
        return None if url is None else check_mqtt_url(url)

    @field_validator("staff_ack_base_url")
    @classmethod
    def _check_ack_base(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"{url!r}: expected an http(s) URL such as https://nms.example")
        return url.rstrip("/")

    @field_validator("staff_fallback_email")
    @classmethod
    def _check_fallback_email(cls, address: str | None) -> str | None:
        if address is None:
            return None
        local, at, domain = address.strip().rpartition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in address.strip()):
            raise ValueError(f"{address!r}: expected an e-mail address such as noc@example.com")
        return address.strip()

    @field_validator("staff_fallback_webhook")
    @classmethod
    def _check_fallback_webhook(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r}: expected an http(s) URL such as https://pager.example/hook")
        return url

    @model_validator(mode="after")
    def _check(self) -> NotificationSettings:
        positive(self.interval)
        if self.staff_fallback_webhook and self.staff_webhook_secret is None:
            raise ValueError(
                "staff_fallback_webhook: needs staff_webhook_secret (staff webhooks are signed)"
            )
        positive(self.backoff_base)
        if self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_cap must not be shorter than backoff_base")
        return self

    def staff_alert_config(self) -> AlertConfig:
        """Where staff alerts' ack links point, and their fallback (``caseapi.oncall``)."""
        return AlertConfig(
            public_url=self.staff_ack_base_url,
            fallback_email=self.staff_fallback_email,
            fallback_webhook=self.staff_fallback_webhook,
        )

    def dispatcher(self, **tuning: Any) -> DispatcherSettings:
        """The dispatcher's settings; ``tuning`` sets its other knobs (tests).

        Raises:
            ValueError: A combination the dispatcher refuses (see ``DispatcherSettings``).
        """
        return DispatcherSettings(
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_from=self.smtp_from,
            smtp_starttls=self.smtp_starttls,
            smtp_user=self.smtp_user,
            smtp_password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            mqtt_url=self.mqtt_url,
            mqtt_topic_prefix=self.mqtt_topic_prefix,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            webhook_policy=self.webhooks.policy(),
            staff_webhook_secret=(
                self.staff_webhook_secret.get_secret_value() if self.staff_webhook_secret else None
            ),
            **tuning,
        )


#: What a dispatcher or service built without settings applies.
DEFAULT_DISPATCHER = NotificationSettings().dispatcher()
