"""Files attached to customer e-mails, supplied by the domains that own them.

The dispatcher knows no domain (see the package docstring), so a domain that wants a
file on its mails hands the dispatcher an ``AttachmentSource``: called with each
mail's ``Envelope``, it returns the files for it (none for kinds it does not serve).
``caseapi.rfo.mail.RfoPdfAttachments`` attaches the published RFO's PDF to
``rfo_published`` mails (setting ``notifications.attach_rfo_pdf``).

A source that cannot reach its data (the database) raises ``DeliveryError``: the mail
is retried like any failed send. Any other failure is logged and the mail goes
without that file: a broken attachment must not cost the customer the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from caseapi.notifications.render import Envelope


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file: its name, MIME type (``maintype/subtype``) and content."""

    filename: str
    content_type: str
    data: bytes

    def __post_init__(self) -> None:
        if self.content_type.count("/") != 1:
            raise ValueError(f"content_type must be maintype/subtype, not {self.content_type!r}")


class AttachmentSource(Protocol):
    """Supplies the files of one mail (an empty sequence for none)."""

    async def __call__(self, envelope: Envelope) -> Sequence[Attachment]: ...
