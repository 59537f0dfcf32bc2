"""Public: the mail channel for the composition root: ingest, IMAP poller, MTA pipe.

``build_mail_ingest`` assembles a ``MailIngestService`` from the ``mail`` and
``attachments`` settings; ``MailIngestService.ingest(raw, mailbox=..., uid=...)``
stores one mail exactly once and answers an ``IngestResult``. Move or flag a fetched
mail only after ``ingest`` returned (its transaction has committed then).

``ImapPoller`` reads ``mail.imap``'s folder into the ingest (``nms run``, the leading
``nms detector``); ``deliver`` is the core of ``nms mail deliver`` (sysexits codes).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.attachments.config import AttachmentSettings
from caseapi.attachments.service import AttachmentService
from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.service import CaseService
from caseapi.cases.sla import SlaSettings
from caseapi.clock import Clock
from caseapi.comments.service import CommentService
from caseapi.mail.config import MailSettings
from caseapi.mail.deliver import EX_DATAERR, EX_OK, EX_TEMPFAIL, Delivered, deliver, read_bounded
from caseapi.mail.imap import FAILED, INGESTED, ImapAuthError, ImapError
from caseapi.mail.imap_config import ImapSettings
from caseapi.mail.ingest import IngestOutcome, IngestResult, MailIngestService
from caseapi.mail.intake import IngestSettings
from caseapi.mail.parse import MailParseError
from caseapi.mail.poller import ImapPoller, Ingest, PollerStats, RoundResult

__all__ = [
    "EX_DATAERR",
    "EX_OK",
    "EX_TEMPFAIL",
    "FAILED",
    "INGESTED",
    "Delivered",
    "ImapAuthError",
    "ImapError",
    "ImapPoller",
    "ImapSettings",
    "Ingest",
    "IngestOutcome",
    "IngestResult",
    "IngestSettings",
    "MailIngestService",
    "MailParseError",
    "MailSettings",
    "PollerStats",
    "RoundResult",
    "build_mail_ingest",
    "deliver",
    "read_bounded",
]


def build_mail_ingest(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    mail: MailSettings,
    attachments: AttachmentSettings | None = None,
    sla: SlaSettings | None = None,
    also_ours: Iterable[str] = (),
) -> MailIngestService:
    """The mail ingest over ``sessionmaker``, with the API's case, comment and
    attachment rules.

    Args:
        sessionmaker: Session factory of the case database.
        clock: Source of every stored time.
        mail: The ``mail`` settings section (address, staff, ``max_size``, ``rate_limit``).
        attachments: The ``attachments`` section (limits, storage); defaults when omitted.
        sla: SLA durations of the cases it opens (``CaseSettings.sla()``).
        also_ours: Other addresses our mail is sent from (``notifications.smtp_from``):
            mail from them is a loop, never answered.
    """
    # The same SLA for the cases it opens and for the waiting cases a reply resumes.
    comments = CommentService(sessionmaker=sessionmaker, clock=clock, sla=sla or DEFAULT_SLA)
    return MailIngestService(
        sessionmaker=sessionmaker,
        clock=clock,
        settings=IngestSettings.from_mail(mail, also_ours=also_ours),
        cases=CaseService(sessionmaker=sessionmaker, clock=clock, sla=sla),
        comments=comments,
        attachments=AttachmentService(
            sessionmaker=sessionmaker, clock=clock, settings=attachments, comments=comments
        ),
    )
