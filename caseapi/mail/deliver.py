"""One mail from an MTA pipe (``nms mail deliver``) into the ingest, with sysexits codes.

An MTA (Postfix ``mailbox_command`` or an alias ``|command``, Exim's pipe
transport, ``rt-mailgate``-style) runs the command once per mail with the message
on standard input and reads the exit code:

======  ===============  =========================================================
code    name             meaning for the MTA
======  ===============  =========================================================
0       EX_OK            taken: a case, a comment, held for staff (also a mail
                         over ``mail.max_size``: its headers are kept), ignored
                         (auto-reply, bounce, loop) or already taken (duplicate)
65      EX_DATAERR       not a mail at all: nothing is stored, the MTA returns it
75      EX_TEMPFAIL      try again later: database unavailable or locked, the
                         configuration cannot be used, or any unexpected error
======  ===============  =========================================================

(67 EX_NOUSER is not used: every mail to the pipe is for the one support mailbox.)

Standard input is read up to ``max_size + 1`` bytes; the rest is read and dropped
(an MTA whose writes fail counts the delivery as failed), and the ingest, seeing
more than ``max_size``, holds the mail as too large from its headers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO, Final

from caseapi.database import DatabaseUnavailableError
from caseapi.mail.parse import MailParseError, parse_mail
from caseapi.mail.poller import Ingest

log = logging.getLogger("caseapi.mail.deliver")

EX_OK: Final = 0
EX_DATAERR: Final = 65
EX_TEMPFAIL: Final = 75

_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Delivered:
    """The exit code for the MTA and one line for its log (standard error)."""

    code: int
    message: str


def read_bounded(stream: BinaryIO, max_size: int) -> tuple[bytes, int]:
    """The first ``max_size + 1`` bytes of ``stream`` and the total size read.

    The rest is read and dropped, in chunks: memory stays bounded by ``max_size``.
    """
    raw = stream.read(max_size + 1)
    total = len(raw)
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
    return raw, total


async def deliver(raw: bytes, *, ingest: Ingest, mailbox: str, max_size: int) -> Delivered:
    """Ingest ``raw`` (at most ``max_size + 1`` bytes) and say what the MTA should do."""
    if len(raw) <= max_size:
        try:
            parse_mail(raw)
        except MailParseError as exc:
            return Delivered(EX_DATAERR, f"not a mail, refused: {exc.reason}")
    try:
        result = await ingest(raw, mailbox=mailbox, uid=None)
    except DatabaseUnavailableError as exc:
        return Delivered(EX_TEMPFAIL, f"database unavailable, try again later: {exc}")
    except Exception as exc:
        # Better a retry by the MTA (and a mail that waits in its queue) than a lost mail.
        log.exception("ingest failed")
        return Delivered(EX_TEMPFAIL, f"ingest failed, try again later: {type(exc).__name__}")
    return Delivered(EX_OK, f"accepted: {result.outcome}")
