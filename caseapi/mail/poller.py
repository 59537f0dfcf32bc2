"""The IMAP poller: every mail in the folder goes through the ingest exactly once.

One round (``poll_once``): search the folder for mails not yet done, and for each,
oldest first: fetch it (a mail above ``max_size`` only up to ``max_size + 1``
bytes: the ingest refuses it as too large from its headers), hand it to the ingest
- which commits - and only then move or flag it (``mail.imap.after``).

Exactly once: a crash after the commit and before the move leaves the mail in the
folder; the next round fetches it again and the ingest answers ``duplicate`` (it
knows the Message-ID and the mailbox's UID), after which the mail is moved. A
crash before the commit rolls the ingest back: the mail is simply read again.

The mailbox the ingest is told is an RFC 5092 IMAP URL that includes the folder's
``UIDVALIDITY`` (``imap://user@host/INBOX;UIDVALIDITY=7``): when the server
renumbers the folder (a new UIDVALIDITY), the old UIDs can no longer be mistaken for
the new ones, and mails already ingested are still recognized by their Message-ID.

A mail whose ingest raises is left where it is for the next round; after
``max_failures`` failures it is flagged ``$NmsFailed`` (never read again; staff see
it in the mail client) and logged. A database that is unavailable is not the mail's
fault: the round stops and nothing is counted against it.

``run`` repeats rounds forever: with IDLE where the server supports it (a new mail
is read at once), else every ``poll_interval``; a lost connection is re-made with
jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from caseapi.database import DatabaseUnavailableError
from caseapi.mail.imap import FAILED, ImapConnection, ImapError
from caseapi.mail.imap_config import ImapSettings

log = logging.getLogger("caseapi.mail.poller")

_BACKOFF_FIRST = 0.5
_BACKOFF_CAP = 60.0


class IngestResultLike(Protocol):
    """What the poller reads of an ingest result (``caseapi.mail.ingest.IngestResult``)."""

    @property
    def outcome(self) -> str: ...


class Ingest(Protocol):
    """``MailIngestService.ingest``: commits the mail, idempotent by Message-ID and UID."""

    def __call__(
        self, raw: bytes, *, mailbox: str, uid: int | None
    ) -> Awaitable[IngestResultLike]: ...


@dataclass
class PollerStats:
    """Counters for ``/metrics`` (read at scrape time)."""

    ingested: Counter[str] = field(default_factory=Counter)
    """Mails handed to the ingest, by outcome (``case_opened``, ``held``, ``duplicate``...)."""
    failures: int = 0
    """Ingest attempts that raised."""
    gave_up: int = 0
    """Mails flagged ``$NmsFailed``."""
    poll_errors: int = 0
    """Rounds that failed (connection, login, a command)."""
    last_poll: datetime | None = None
    """End of the last round that completed."""


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one round did."""

    found: int
    ingested: int


class ImapPoller:
    """Reads ``settings.folder`` into ``ingest``; ``run()`` until cancelled."""

    def __init__(
        self,
        *,
        settings: ImapSettings,
        ingest: Ingest,
        max_size: int,
        now: Callable[[], datetime],
        stats: PollerStats | None = None,
    ) -> None:
        if not settings.enabled:
            raise ValueError("mail.imap.host is not set: there is no mailbox to poll")
        self._settings = settings
        self._ingest = ingest
        self._max_size = max_size
        self._now = now
        self.stats = stats or PollerStats()
        self._failures: Counter[int] = Counter()
        self._uidvalidity: int | None = None
        self._errors_in_a_row = 0

    @property
    def mailbox(self) -> str:
        """The mailbox URL given to the ingest (with the current UIDVALIDITY)."""
        settings = self._settings
        base = f"imap://{settings.user}@{settings.host}/{settings.folder}"
        return base if self._uidvalidity is None else f"{base};UIDVALIDITY={self._uidvalidity}"

    async def run(self) -> None:
        """Poll forever (IDLE where possible), reconnecting with backoff."""
        settings = self._settings
        log.info(
            "reading mail from %s:%d (%s) every %s%s",
            settings.host,
            settings.effective_port,
            settings.mailbox_name,
            settings.poll_interval,
            " or at once (IDLE)" if settings.idle else "",
        )
        while True:
            try:
                connection = await ImapConnection.open(settings)
            except ImapError as exc:
                await self._back_off(exc)
                continue
            try:
                await self._serve(connection)
            except ImapError as exc:
                await self._back_off(exc)
            except Exception as exc:
                # A bug (ours or the library's) must not stop the process: log, retry.
                log.exception("mail: the poll failed")
                await self._back_off(exc)
            finally:
                await connection.close()

    async def _serve(self, connection: ImapConnection) -> None:
        """Rounds on one connection until it fails (raises ImapError)."""
        wait = self._settings.poll_interval.total_seconds()
        idle = self._settings.idle and connection.selected.can_idle
        while True:
            # Again until a round does nothing: a mail that came during a round may have
            # been announced (EXISTS) in the answer to one of its commands, not in IDLE.
            while (await self._round(connection)).ingested:
                self._errors_in_a_row = 0
            self._errors_in_a_row = 0
            if idle:
                await connection.wait_for_news(wait)
            else:
                await asyncio.sleep(wait)

    async def _back_off(self, exc: Exception) -> None:
        self.stats.poll_errors += 1
        self._errors_in_a_row += 1
        delay = min(_BACKOFF_CAP, _BACKOFF_FIRST * 2 ** min(self._errors_in_a_row - 1, 16))
        delay *= random.uniform(0.5, 1.0)
        log.warning("mail: %s; retrying in %.1f s", exc, delay)
        # Real time, not the clock: this paces connection attempts to a real server.
        await asyncio.sleep(delay)

    async def poll_once(self) -> RoundResult:
        """Connect, do one round, disconnect (``nms`` tests and the benchmark).

        Raises:
            ImapError: The server could not be used.
        """
        connection = await ImapConnection.open(self._settings)
        try:
            return await self._round(connection)
        finally:
            await connection.close()

    async def _round(self, connection: ImapConnection) -> RoundResult:
        validity = connection.selected.uidvalidity
        if self._uidvalidity is not None and validity != self._uidvalidity:
            log.warning(
                "mail: %s has a new UIDVALIDITY (%s, was %s): the server renumbered it; "
                "mails already ingested are recognized by their Message-ID",
                self._settings.mailbox_name,
                validity,
                self._uidvalidity,
            )
            self._failures.clear()
        self._uidvalidity = validity
        uids = await connection.pending()
        sizes = await connection.sizes(uids) if uids else {}
        done = 0
        for uid in uids:
            if uid not in sizes:
                continue  # expunged since the search
            if await self._one(connection, uid, sizes[uid]):
                done += 1
        self.stats.last_poll = self._now()
        return RoundResult(found=len(uids), ingested=done)

    async def _one(self, connection: ImapConnection, uid: int, size: int) -> bool:
        limit = self._max_size + 1 if size > self._max_size else None
        raw = await connection.fetch(uid, limit=limit)
        if raw is None:
            return False
        try:
            result = await self._ingest(raw, mailbox=self.mailbox, uid=uid)
        except DatabaseUnavailableError as exc:
            # Not this mail's fault: stop the round (the connection is fine).
            raise ImapError(f"database unavailable, mail {uid} left for later: {exc}") from exc
        except Exception:
            self.stats.failures += 1
            self._failures[uid] += 1
            count = self._failures[uid]
            log.exception(
                "mail: ingest of UID %d in %s failed (%d of %d)",
                uid,
                self._settings.mailbox_name,
                count,
                self._settings.max_failures,
            )
            if count >= self._settings.max_failures:
                await connection.flag(uid, FAILED)
                self.stats.gave_up += 1
                self._failures.pop(uid, None)
                log.error(
                    "mail: UID %d in %s flagged %s after %d failed ingests; left for staff",
                    uid,
                    self._settings.mailbox_name,
                    FAILED,
                    count,
                )
            return False
        # Committed: now (and only now) the mail may leave the folder.
        self.stats.ingested[str(result.outcome)] += 1
        self._failures.pop(uid, None)
        await connection.mark_done(uid)
        return True
