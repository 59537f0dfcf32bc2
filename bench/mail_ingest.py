"""Mail ingest throughput: a Dovecot mailbox of 1,000 mails through the IMAP poller.

    python bench/mail_ingest.py [--mails 1000] [--postgres]

Starts a Dovecot of its own (``tests.dovecot``: 127.0.0.1, a free port, a temporary
maildir), APPENDs ``--mails`` mails and lets the real poller (``ImapPoller``) feed
them to the real ingest (``MailIngestService``) on a fresh database: SQLite in a
temporary folder, or with ``--postgres`` the database ``nms_bench_mail`` on the
local server (``NMS_TEST_PG_URL``), dropped at the end. Half the mails are new
requests from 20 contacts of 5 customers (each opens a case and queues its
acknowledgement); the other half are their replies, threaded by ``In-Reply-To``
(each a comment on its case). Prints mails per second and this process's CPU per
mail (poller, parsing, ingest, database client; Dovecot's and PostgreSQL's own CPU
are not in it) for each half. Not a test: it prints figures.

Figures (this shared 2-core machine, load average 7-8 from other work, 2026-12-06):

=========  ====================  ====================
database   new requests (cases)  replies (comments)
=========  ====================  ====================
SQLite     19.0 mails/s, 20 ms   16.9 mails/s, 23 ms
PostgreSQL  9.2 mails/s, 18 ms    6.7 mails/s, 21 ms
=========  ====================  ====================

(mails per second, and CPU of this process per mail.) CPU per mail is the cost; the
wall-clock rate is bounded by the loaded machine and, on PostgreSQL, by one commit
per mail (each mail is its own transaction, by design: exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

# The Dovecot harness of the tests: run from the repository's root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text
from sqlalchemy.engine import make_url

from caseapi.database import make_engine, make_sessionmaker
from caseapi.mailbox import ImapPoller, ImapSettings
from nms.app.mail import mail_ingest
from nms.app.settings import Settings
from nms.app.wiring import migrate_all
from nms.clock import SystemClock
from nms.inventory.loader import load_inventory
from nms.inventory.sync import sync_inventory
from tests.dovecot import Dovecot, available

ADMIN_URL: Final = os.environ.get(
    "NMS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PG_NAME: Final = "nms_bench_mail"
SUPPORT: Final = "support@example.test"
CUSTOMERS: Final = 5
CONTACTS_EACH: Final = 4


def contact(n: int) -> str:
    return f"contact{n}@cust{n % CUSTOMERS}.test"


def inventory_yaml() -> str:
    lines = ["customers:"]
    for c in range(CUSTOMERS):
        lines.append(f"  - id: cust{c}\n    name: Customer {c}\n    contacts:")
        for n in range(c, CUSTOMERS * CONTACTS_EACH, CUSTOMERS):
            lines.append(f"      - {{email: {contact(n)}, name: Contact {n}, language: en}}")
    lines.append("ntus: []")
    return "\n".join(lines) + "\n"


def mail(n: int, *, reply_to: int | None = None) -> bytes:
    sender = contact(n % (CUSTOMERS * CONTACTS_EACH))
    subject = f"Line {n} is down" if reply_to is None else f"Re: Line {reply_to} is down"
    threading = (
        f"In-Reply-To: <req{reply_to}@bench.test>\r\nReferences: <req{reply_to}@bench.test>\r\n"
        if reply_to is not None
        else ""
    )
    message_id = f"<req{n}@bench.test>" if reply_to is None else f"<rep{n}@bench.test>"
    body = (
        f"Hello,\r\n\r\nsince this morning the line at site {n} has no sync; the router shows "
        "a red LED. We restarted it twice.\r\n\r\nRegards,\r\nThe customer\r\n"
    )
    return (
        f"From: Contact <{sender}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n{threading}Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


async def drain(poller: ImapPoller) -> int:
    done = 0
    while True:
        result = await poller.poll_once()
        done += result.ingested
        if result.found == 0:
            return done


async def phase(name: str, server: Dovecot, poller: ImapPoller, mails: list[bytes]) -> None:
    await asyncio.to_thread(server.append, mails)
    wall, cpu = time.perf_counter(), time.process_time()
    done = await drain(poller)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{name:<28} {done:>5} mails  {done / wall:>7.1f} mails/s  "
        f"{1000 * cpu / max(done, 1):>6.2f} ms CPU/mail  ({wall:.1f} s)"
    )
    print(f"  outcomes: {dict(poller.stats.ingested)}")
    poller.stats.ingested.clear()


async def bench(url: str, server: Dovecot, workdir: Path, count: int) -> None:
    inventory_file = workdir / "inventory.yaml"
    inventory_file.write_text(inventory_yaml())
    settings = Settings(
        database={"url": url},
        mail={"address": SUPPORT, "rate_limit": "1000000/hour"},
    )
    engine = make_engine(url)
    try:
        await migrate_all(engine)
        sessionmaker = make_sessionmaker(engine)
        await sync_inventory(sessionmaker, load_inventory(inventory_file))
        clock = SystemClock()
        ingest = mail_ingest(settings, sessionmaker, clock)
        imap = ImapSettings(
            host="127.0.0.1",
            port=server.port,
            security="none",
            user=server.user,
            password=server.password,
        )
        poller = ImapPoller(
            settings=imap, ingest=ingest, max_size=int(settings.mail.max_size), now=clock.now
        )
        half = count // 2
        print(f"database: {make_url(url).get_backend_name()}, {count} mails")
        await phase("new requests (cases)", server, poller, [mail(n) for n in range(half)])
        replies = [mail(half + n, reply_to=n) for n in range(count - half)]
        await phase("replies (comments)", server, poller, replies)
    finally:
        await engine.dispose()


async def with_postgres(server: Dovecot, workdir: Path, count: int) -> None:
    admin = make_engine(ADMIN_URL)
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME}"))
            await conn.execute(text(f"CREATE DATABASE {PG_NAME}"))
        url = make_url(ADMIN_URL).set(database=PG_NAME).render_as_string(hide_password=False)
        await bench(url, server, workdir, count)
    finally:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)"))
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    if not available():
        sys.exit("needs Dovecot (apt install dovecot-imapd)")
    with tempfile.TemporaryDirectory(prefix="nms-bench-mail-") as tmp:
        workdir = Path(tmp)
        server = Dovecot(workdir)
        try:
            server.start()
            if args.postgres:
                asyncio.run(with_postgres(server, workdir, args.mails))
            else:
                url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
                asyncio.run(bench(url, server, workdir, args.mails))
        finally:
            server.stop()
            server.remove()


if __name__ == "__main__":
    main()
