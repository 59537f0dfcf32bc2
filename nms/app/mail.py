"""The mail channel in the processes: the IMAP poller and ``nms mail deliver``.

``nms run`` and the leading ``nms detector`` run the poller when ``mail.imap.host``
is set (``mail_poller``); one poller per mailbox is the rule - the ingest is
idempotent, so two would not duplicate, only race. ``nms mail deliver`` is the MTA
pipe: one mail on standard input, an exit code the MTA understands (the table is in
``caseapi.mail.deliver`` and in ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.database import make_engine, make_sessionmaker
from caseapi.mailbox import (
    EX_TEMPFAIL,
    ImapPoller,
    Ingest,
    build_mail_ingest,
    deliver,
    read_bounded,
)
from nms.app.settings import Settings
from nms.clock import Clock, SystemClock
from nms.errors import ConfigError
from nms.noc.mail_metrics import MailCollector

log = logging.getLogger("nms.mail")

DELIVER_HELP = """\
Read one RFC 5322 mail on standard input (for an MTA pipe: Postfix mailbox_command
or an alias "|nms mail deliver", like rt-mailgate) and ingest it into the cases of
the database of the configuration (nms run must have created it).

exit codes (sysexits, as MTAs read them):
  0   accepted: a case, a comment, held for staff (also a mail above
      mail.max_size, whose headers are kept), ignored (auto-reply, bounce,
      loop) or already taken before (duplicate)
  65  EX_DATAERR: not a mail at all; nothing is stored, the MTA returns it
  75  EX_TEMPFAIL: try again later (database unavailable or locked, the
      configuration cannot be used, any unexpected error); the MTA keeps it
"""


def mail_ingest(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> Ingest:
    """The case service's mail ingest (``MailIngestService.ingest``) for these settings."""
    service = build_mail_ingest(
        sessionmaker=sessionmaker,
        clock=clock,
        mail=settings.mail,
        attachments=settings.attachments,
        sla=settings.cases.sla(),
        also_ours=(settings.notifications.smtp_from,),
    )
    return service.ingest


def mail_poller(
    settings: Settings,
    ingest: Ingest,
    clock: Clock,
    *,
    registry: CollectorRegistry | None = None,
) -> ImapPoller | None:
    """The IMAP poller of ``mail.imap`` (None when no host is set), its metrics registered."""
    imap = settings.mail.imap
    if not imap.enabled:
        return None
    poller = ImapPoller(
        settings=imap, ingest=ingest, max_size=int(settings.mail.max_size), now=clock.now
    )
    if registry is not None:
        registry.register(MailCollector(poller.stats))
    return poller


# -- nms mail deliver ---------------------------------------------------------------


def add_mail_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_config: Callable[[argparse.ArgumentParser], None],
) -> None:
    """``nms mail deliver``."""
    mail = sub.add_parser("mail", help="the e-mail channel")
    mail_sub = mail.add_subparsers(dest="mail_command", required=True, metavar="ACTION")
    deliver_cmd = mail_sub.add_parser(
        "deliver",
        help="ingest one mail from standard input (MTA pipe)",
        description=DELIVER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config(deliver_cmd)
    deliver_cmd.add_argument("--database", metavar="URL", help="SQLAlchemy URL")
    deliver_cmd.add_argument(
        "--mailbox",
        metavar="NAME",
        default="mta",
        help="where the mail came from, as the held list shows it (default: mta)",
    )


def run_mail_command(
    args: argparse.Namespace, load: Callable[[argparse.Namespace], Settings]
) -> int:
    """Run ``nms mail deliver``; returns its exit code (never raises for the MTA)."""
    logging.Formatter.converter = time.gmtime
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)sZ %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load(args)
    except ConfigError as exc:
        # The MTA keeps the mail and retries once the configuration is fixed.
        print("nms mail deliver: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EX_TEMPFAIL
    raw, total = read_bounded(sys.stdin.buffer, int(settings.mail.max_size))
    try:
        code, message = asyncio.run(_deliver(settings, raw, mailbox=args.mailbox))
    except Exception as exc:
        log.exception("mail deliver failed")
        code, message = EX_TEMPFAIL, f"failed, try again later: {type(exc).__name__}: {exc}"
    print(f"nms mail deliver: {message} ({total} bytes)", file=sys.stderr)
    return code


async def _deliver(settings: Settings, raw: bytes, *, mailbox: str) -> tuple[int, str]:
    clock = SystemClock()
    engine = make_engine(settings.database.url)
    try:
        ingest = mail_ingest(settings, make_sessionmaker(engine), clock)
        done = await deliver(
            raw, ingest=ingest, mailbox=mailbox, max_size=int(settings.mail.max_size)
        )
        return done.code, done.message
    finally:
        await engine.dispose()
