"""The three channels: e-mail (SMTP), webhooks (HTTPS POST) and MQTT v5.

Each channel turns one claimed ``Job`` into one send and raises ``DeliveryError``
(retry) or ``PermanentDeliveryError`` (give up) on failure; library exceptions are
translated here. Every message carries the outbox row's ``event_id`` so that a
receiver can drop duplicates (delivery is at-least-once, see ``dispatcher``):

- e-mail: ``Message-ID: <event-id@domain>`` (the same for every retry and every
  recipient), threaded to its case with ``In-Reply-To`` / ``References``;
- webhooks: ``Idempotency-Key`` and ``X-NMS-Event-Id`` headers, ``id`` in the body;
- MQTT: user property ``idempotency-key`` and ``id`` in the JSON payload.

MQTT topic tree (``<prefix>`` defaults to ``nms/v1``), QoS 1, not retained::

    <prefix>/customers/<customer>/cases/<case ref>          case events
    <prefix>/customers/<customer>/maintenances/<id>         maintenance events
    <prefix>/customers/<customer>/ntus/<ntu id>             NTU events (no case)
    <prefix>/customers/<customer>/events                    anything else

``+``, ``#`` and ``/`` inside an id are replaced by ``_``. Subscribe to
``<prefix>/customers/<customer>/#`` for everything of one customer.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from types import TracebackType
from urllib.parse import unquote, urlsplit

import aiomqtt
import aiosmtplib
import httpx
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from caseapi.core.secrets import SecretBox, SecretDecryptError, open_secret
from caseapi.mail.config import MailSettings
from caseapi.mail.threading import make_message_id
from caseapi.notifications.addresses import WebhookUrlError
from caseapi.notifications.attachments import Attachment, AttachmentSource
from caseapi.notifications.enums import REPLY_KINDS
from caseapi.notifications.errors import DeliveryError, PermanentDeliveryError
from caseapi.notifications.render import public_payload, render_email
from caseapi.notifications.repository import Job
from caseapi.notifications.settings import DispatcherSettings
from caseapi.notifications.signing import SIGNATURE_HEADER, signature_header
from caseapi.notifications.transport import ForbiddenAddressError, UnresolvableHostError

logger = logging.getLogger(__name__)

USER_AGENT = "nms-notifications/1"
# Retrying cannot fix these; 408 (timeout) and 429 (rate limit) are worth a retry.
_RETRYABLE_4XX = frozenset({408, 425, 429})


def message_id(event_id: str, sender: str) -> str:
    """The ``Message-ID`` of every mail about ``event_id``."""
    return make_message_id(event_id, sender)


class EmailChannel:
    """Sends one mail per delivery (one recipient) with ``aiosmtplib``."""

    def __init__(
        self,
        *,
        settings: DispatcherSettings,
        attachments: Sequence[AttachmentSource] = (),
        mail: MailSettings | None = None,
    ) -> None:
        """Create the channel.

        Args:
            settings: SMTP server, sender and timeouts.
            attachments: Sources of files to attach (``caseapi.notifications.attachments``).
            mail: The support mailbox (``Reply-To``, ``X-Loop``) and the templates.

        Raises:
            ValueError: No SMTP host, or a broken template file.
        """
        if settings.smtp_host is None:
            raise ValueError("EmailChannel needs settings.smtp_host")
        self._settings = settings
        self._host = settings.smtp_host
        self._attachments = tuple(attachments)
        self._mail = mail or MailSettings()
        self._templates = self._mail.templates()

    def build(self, job: Job, attachments: Sequence[Attachment] = ()) -> EmailMessage:
        """The MIME message (plain text with an HTML alternative, then any files).

        Threaded (``In-Reply-To`` / ``References``: ``job.thread``) in the
        recipient's language, answering to the support mailbox, and marked as
        automatic (RFC 3834) with our ``X-Loop``, so auto-responders stay quiet and
        our own mail ingest recognises it.
        """
        mail = self._mail
        rendered = render_email(
            job.envelope,
            language=job.language,
            recipient_name=job.recipient_name,
            support_address=mail.address,
            templates=self._templates,
            timezone=job.timezone,
        )
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = job.target
        message["Reply-To"] = formataddr((mail.name, mail.address))
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(job.envelope.created_at)
        message["Message-ID"] = message_id(job.envelope.event_id, self._settings.smtp_from)
        in_reply_to, references = job.thread
        if in_reply_to is not None:
            message["In-Reply-To"] = in_reply_to
            message["References"] = " ".join(references)
        auto = "auto-replied" if job.envelope.kind in REPLY_KINDS else "auto-generated"
        message["Auto-Submitted"] = auto
        message["X-Loop"] = mail.address
        message["X-NMS-Event"] = job.envelope.kind
        if job.envelope.case_ref:
            message["X-NMS-Case"] = job.envelope.case_ref
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        for attachment in attachments:
            maintype, subtype = attachment.content_type.split("/")
            message.add_attachment(
                attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
            )
        # Last: making the message multipart moves every Content-* header to a part.
        message["Content-Language"] = job.language
        return message

    async def files_for(self, job: Job) -> list[Attachment]:
        """The files every attachment source has for ``job``'s mail.

        Raises:
            DeliveryError: A source could not reach its data (retry the mail).
        """
        files: list[Attachment] = []
        for source in self._attachments:
            try:
                files.extend(await source(job.envelope))
            except DeliveryError:
                raise
            except Exception:
                # A broken attachment must not cost the customer the message.
                logger.exception(
                    "notification %s: attachment failed; sending without it",
                    job.envelope.event_id,
                )
        return files

    async def send(self, job: Job) -> None:
        s = self._settings
        files = await self.files_for(job)
        try:
            await aiosmtplib.send(
                self.build(job, files),
                hostname=self._host,
                port=s.smtp_port,
                username=s.smtp_user,
                password=s.smtp_password,
                start_tls=s.smtp_starttls,
                timeout=s.send_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(str(exc), channel="email", target=job.target) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(str(exc), channel="email", target=job.target) from exc


class WebhookChannel:
    """POSTs the signed JSON event to a subscription's URL."""

    def __init__(
        self,
        *,
        settings: DispatcherSettings,
        client: httpx.AsyncClient,
        secrets: SecretBox | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._secrets = secrets

    async def send(self, job: Job, *, timestamp: int) -> None:
        if job.webhook is None:
            raise PermanentDeliveryError(
                "subscription deleted or disabled", channel="webhook", target=job.target
            )
        try:
            # The rules may have tightened since the subscription (allow_http off).
            self._settings.webhook_policy.check_url(job.webhook.url)
        except WebhookUrlError as exc:
            raise PermanentDeliveryError(str(exc), channel="webhook", target=job.target) from exc
        try:
            keys = [open_secret(stored, self._secrets) for stored in job.webhook.secrets]
        except SecretDecryptError as exc:
            # A key configuration problem (start-up checks for it): retried, so
            # nothing is lost once the key is back.
            raise DeliveryError(str(exc), channel="webhook", target=job.target) from exc
        body = json.dumps(public_payload(job.envelope), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": job.envelope.event_id,
            "X-NMS-Event-Id": job.envelope.event_id,
            "X-NMS-Event": job.envelope.kind,
            "X-NMS-Delivery": str(job.delivery_id),
            "X-NMS-Attempt": str(job.attempt),
            SIGNATURE_HEADER: signature_header(keys, timestamp, body),
        }
        try:
            response = await self._client.post(
                job.webhook.url, content=body, headers=headers, timeout=self._settings.send_timeout
            )
        except ForbiddenAddressError as exc:
            # Checked at every connection: the name may point elsewhere since it was
            # subscribed (DNS rebinding). Retrying would only knock again.
            raise PermanentDeliveryError(str(exc), channel="webhook", target=job.target) from exc
        except UnresolvableHostError as exc:
            raise DeliveryError(str(exc), channel="webhook", target=job.target) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"{type(exc).__name__}: {exc}", channel="webhook", target=job.target
            ) from exc
        if response.is_success:
            return
        error = f"HTTP {response.status_code} from {job.webhook.url}"
        if response.is_redirect:
            # Following it would reach an address nobody checked; the subscriber
            # must subscribe the final URL.
            location = response.headers.get("location", "(no Location)")
            raise PermanentDeliveryError(
                f"{error}: redirect to {location[:200]} not followed (webhooks never "
                "follow redirects; subscribe the final URL)",
                channel="webhook",
                target=job.target,
            )
        if 400 <= response.status_code < 500 and response.status_code not in _RETRYABLE_4XX:
            raise PermanentDeliveryError(error, channel="webhook", target=job.target)
        raise DeliveryError(error, channel="webhook", target=job.target)


class MqttPublisher:
    """One MQTT v5 connection for a batch: ``async with MqttPublisher(...) as p``."""

    def __init__(self, *, settings: DispatcherSettings, identifier: str | None = None) -> None:
        if settings.mqtt_url is None:
            raise ValueError("MqttPublisher needs settings.mqtt_url")
        url = urlsplit(settings.mqtt_url)
        assert url.hostname is not None
        self._client = aiomqtt.Client(
            url.hostname,
            url.port or 1883,
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=settings.send_timeout,
        )
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> MqttPublisher:
        try:
            await self._stack.enter_async_context(self._client)
        except aiomqtt.MqttError as exc:
            raise DeliveryError(str(exc), channel="mqtt", target="connect") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The messages were acknowledged (or their failures recorded) already; a
        # failing DISCONNECT changes nothing.
        with contextlib.suppress(aiomqtt.MqttError):
            await self._stack.aclose()

    async def send(self, job: Job) -> None:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        properties.UserProperty = [
            ("idempotency-key", job.envelope.event_id),
            ("event-type", job.envelope.kind),
        ]
        payload = json.dumps(public_payload(job.envelope), separators=(",", ":"))
        try:
            await self._client.publish(job.target, payload, qos=1, properties=properties)
        except aiomqtt.MqttError as exc:
            raise DeliveryError(str(exc), channel="mqtt", target=job.target) from exc
