"""The mail channel for an embedding application: the IMAP poller and the MTA pipe.

``nms`` runs ``ImapPoller`` (``mail.imap``) in ``nms run`` and the leading
``nms detector``, and ``nms mail deliver`` reads one mail from an MTA; both hand
each mail to ``MailIngestService.ingest``.
"""

from caseapi.mail.deliver import EX_DATAERR, EX_OK, EX_TEMPFAIL, Delivered, deliver, read_bounded
from caseapi.mail.imap import FAILED, INGESTED, ImapAuthError, ImapError
from caseapi.mail.imap_config import ImapSettings
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
    "PollerStats",
    "RoundResult",
    "deliver",
    "read_bounded",
]
