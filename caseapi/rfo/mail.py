"""The published RFO's PDF on the customer's ``rfo_published`` mail.

``RfoPdfAttachments`` is an ``AttachmentSource`` (``caseapi.notifications.attachments``)
wired into the dispatcher by ``caseapi.app`` while ``notifications.attach_rfo_pdf`` is
on. It attaches the very version the mail announces (the notification's ``version``),
rendered as ``GET /v1/cases/{ref}/rfo?format=pdf&version=N`` gives it, and only when
that case belongs to the mail's customer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from caseapi.notifications.attachments import Attachment
from caseapi.notifications.enums import NotificationKind
from caseapi.notifications.errors import DeliveryError
from caseapi.notifications.render import Envelope
from caseapi.rfo.pdf import PDF_MEDIA_TYPE, published_pdf
from caseapi.rfo.service import RfoService


class RfoPdfAttachments:
    """Attaches ``RFO-<ref>-v<n>.pdf`` to ``rfo_published`` mails."""

    def __init__(self, *, service: RfoService) -> None:
        self._service = service

    async def __call__(self, envelope: Envelope) -> Sequence[Attachment]:
        """The PDF of the published version ``envelope`` announces (none otherwise).

        Raises:
            DeliveryError: The database could not be read (the mail is retried).
        """
        version = envelope.data.get("version")
        if envelope.kind != NotificationKind.RFO_PUBLISHED or envelope.case_ref is None:
            return []
        if not isinstance(version, int) or isinstance(version, bool):
            return []
        try:
            published = await self._service.published_for_customer(
                customer_id=envelope.customer_id, ref=envelope.case_ref, version=version
            )
        except (SQLAlchemyError, OSError) as exc:
            raise DeliveryError(
                f"RFO PDF: {exc}", channel="email", target=envelope.case_ref
            ) from exc
        if published is None:
            return []
        name, data = await asyncio.to_thread(published_pdf, published)
        return [Attachment(filename=name, content_type=PDF_MEDIA_TYPE, data=data)]
