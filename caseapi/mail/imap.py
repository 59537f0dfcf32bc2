"""One IMAP connection for the mail poller: the few commands it needs, on aioimaplib.

``ImapConnection.open`` connects (implicit TLS, STARTTLS or plain, per
``mail.imap.security``), logs in and selects the folder; every network step runs
under ``asyncio.timeout(mail.imap.timeout)``. Library and OS errors leave this
module as ``ImapError`` (``raise ... from``); a refused login is ``ImapAuthError``.
The response parsers are pure functions over the lines aioimaplib hands back.

All messages are addressed by UID and read with ``BODY.PEEK`` (never sets ``\\Seen``):
what the poller has done to a message is said by a keyword it stores or by the move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from aioimaplib import aioimaplib

from caseapi.mail.imap_config import ImapSettings

log = logging.getLogger("caseapi.mail.imap")

#: Stored on a mail once ingested (``after: flag``), so that it is not read again.
INGESTED: Final = "$NmsIngested"
#: Stored on a mail whose ingest failed ``max_failures`` times: left for staff.
FAILED: Final = "$NmsFailed"

_CLOSE_TIMEOUT: Final = 3.0
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class ImapError(Exception):
    """The IMAP server could not be used (connection, TLS, timeout, a refused command)."""


class ImapAuthError(ImapError):
    """The server refused the login."""


def quote(name: str) -> str:
    """A folder name as an IMAP quoted string (the settings forbid quotes and ``\\``)."""
    return f'"{name}"'


def parse_search(lines: Sequence[bytes]) -> list[int]:
    """The UIDs of a ``UID SEARCH`` response.

    aioimaplib hands back the untagged line without its ``* SEARCH`` (``1 2 3``),
    followed by the completion text; a ``SEARCH`` left in front is accepted too.
    """
    uids: list[int] = []
    for line in lines[:-1] if len(lines) > 1 else lines:
        words = bytes(line).split()
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        if words and all(word.isdigit() for word in words):
            uids.extend(int(word) for word in words)
    return uids


def parse_uidvalidity(lines: Sequence[bytes]) -> int | None:
    """The ``UIDVALIDITY`` of a ``SELECT`` response."""
    for line in lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    return None


def parse_sizes(lines: Sequence[bytes]) -> dict[int, int]:
    """UID -> ``RFC822.SIZE`` of a ``UID FETCH ... (RFC822.SIZE)`` response."""
    sizes: dict[int, int] = {}
    for line in lines:
        if not isinstance(line, bytes) or b"FETCH" not in line:
            continue
        uid, size = _FETCH_UID.search(line), _FETCH_SIZE.search(line)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def parse_body(lines: Sequence[bytes], uid: int) -> bytes | None:
    """The literal (message bytes) of a one-message ``UID FETCH`` response.

    Returns None when the response holds no message for ``uid`` (expunged meanwhile).
    """
    for index, line in enumerate(lines):
        if isinstance(line, bytearray):
            continue
        match = _FETCH_UID.search(line)
        if b"FETCH" in line and match and int(match.group(1)) == uid:
            following = lines[index + 1] if index + 1 < len(lines) else None
            if isinstance(following, bytearray):
                return bytes(following)
            if line.rstrip().endswith(b"{0}"):
                return b""
    return None


@dataclass(frozen=True, slots=True)
class Selected:
    """The folder as ``SELECT`` found it."""

    uidvalidity: int | None
    can_move: bool
    can_idle: bool
    uidplus: bool


class ImapConnection:
    """A logged-in connection with ``settings.folder`` selected; ``close()`` it."""

    def __init__(self, settings: ImapSettings, client: Any, selected: Selected) -> None:
        self._settings = settings
        self._client = client
        self._timeout = settings.timeout.total_seconds()
        self.selected = selected

    @classmethod
    async def open(cls, settings: ImapSettings) -> ImapConnection:
        """Connect, log in and select the folder.

        Raises:
            ImapAuthError: The login was refused.
            ImapError: Anything else that went wrong (the message says what).
        """
        assert settings.host is not None  # the wiring starts no poller without one
        timeout = settings.timeout.total_seconds()
        host, port = settings.host, settings.effective_port
        context = _ssl_context(settings) if settings.security != "none" else None
        client: Any = None
        try:
            password = settings.secret()
            async with asyncio.timeout(timeout):
                if settings.security == "tls":
                    client = aioimaplib.IMAP4_SSL(
                        host=host, port=port, timeout=timeout, ssl_context=context
                    )
                else:
                    client = aioimaplib.IMAP4(host=host, port=port, timeout=timeout)
                await client.wait_hello_from_server()
                if settings.security == "starttls":
                    assert context is not None
                    await _starttls(client, host, context)
                response = await client.login(settings.user, password)
            if response.result != "OK":
                raise ImapAuthError(
                    f"IMAP login as {settings.user} on {host}:{port} refused: {_text(response)}"
                )
            connection = cls(settings, client, Selected(None, False, False, False))
            connection.selected = await connection._select()
            if settings.after == "move":
                await connection._ensure_folder(settings.move_to)
            return connection
        except BaseException as exc:
            if client is not None:
                _drop(client)
            if isinstance(exc, ImapError | asyncio.CancelledError) or not isinstance(
                exc, Exception
            ):
                raise
            raise ImapError(f"IMAP {host}:{port}: {_describe(exc)}") from exc

    async def _select(self) -> Selected:
        response = await self._call("SELECT", self._client.select(quote(self._settings.folder)))
        capabilities = self._client.protocol.capabilities
        return Selected(
            uidvalidity=parse_uidvalidity(response.lines),
            can_move="MOVE" in capabilities,
            can_idle="IDLE" in capabilities,
            uidplus="UIDPLUS" in capabilities,
        )

    async def _ensure_folder(self, folder: str) -> None:
        # CREATE of a folder that exists is a NO; the later MOVE reports a real problem.
        with contextlib.suppress(ImapError):
            await self._call("CREATE", self._client.create(quote(folder)))

    async def pending(self) -> list[int]:
        """UIDs of the mails still to ingest, oldest first."""
        criteria = ["NOT", "DELETED", "NOT", "KEYWORD", FAILED]
        if self._settings.after == "flag":
            criteria += ["NOT", "KEYWORD", INGESTED]
        response = await self._call("UID SEARCH", self._client.uid_search(*criteria, charset=None))
        return sorted(parse_search(response.lines))

    async def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """UID -> size in bytes of each of ``uids`` still there."""
        if not uids:
            return {}
        uid_set = ",".join(str(uid) for uid in uids)
        response = await self._call(
            "UID FETCH", self._client.uid("fetch", uid_set, "(RFC822.SIZE)")
        )
        return parse_sizes(response.lines)

    async def fetch(self, uid: int, *, limit: int | None = None) -> bytes | None:
        """The mail ``uid`` (its first ``limit`` bytes if given); None if it is gone."""
        part = "BODY.PEEK[]" if limit is None else f"BODY.PEEK[]<0.{limit}>"
        response = await self._call("UID FETCH", self._client.uid("fetch", str(uid), f"({part})"))
        return parse_body(response.lines, uid)

    async def mark_done(self, uid: int) -> None:
        """Move ``uid`` to ``move_to`` or flag it ``$NmsIngested``, per ``mail.imap.after``."""
        if self._settings.after == "flag":
            await self.flag(uid, INGESTED, "\\Seen")
            return
        target = quote(self._settings.move_to)
        if self.selected.can_move:
            await self._call("UID MOVE", self._client.uid("move", str(uid), target))
            return
        # No MOVE (RFC 6851): copy, mark deleted, expunge (just this UID with UIDPLUS).
        await self._call("UID COPY", self._client.uid("copy", str(uid), target))
        await self.flag(uid, "\\Deleted")
        if self.selected.uidplus:
            await self._call("UID EXPUNGE", self._client.uid("expunge", str(uid)))
        else:
            await self._call("EXPUNGE", self._client.expunge())

    async def flag(self, uid: int, *flags: str) -> None:
        """Add ``flags`` to ``uid``."""
        await self._call(
            "UID STORE",
            self._client.uid("store", str(uid), "+FLAGS.SILENT", f"({' '.join(flags)})"),
        )

    async def wait_for_news(self, wait: float) -> bool:
        """IDLE up to ``wait`` seconds; True when the server told of a change.

        Raises:
            ImapError: The server does not support IDLE, or the connection failed.
        """
        if not self.selected.can_idle:
            raise ImapError("the server does not support IDLE")
        try:
            async with asyncio.timeout(self._timeout):
                idle = await self._client.idle_start(timeout=wait)
            try:
                # The library ends the wait itself after ``wait`` (a stop marker).
                async with asyncio.timeout(wait + self._timeout):
                    pushed = await self._client.wait_server_push()
            finally:
                if self._client.has_pending_idle():
                    self._client.idle_done()
                async with asyncio.timeout(self._timeout):
                    await asyncio.shield(idle)
        except (TimeoutError, OSError, aioimaplib.AioImapException) as exc:
            raise ImapError(f"IMAP IDLE: {_describe(exc)}") from exc
        if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
            return False
        return any(b"EXISTS" in bytes(line) for line in pushed if isinstance(line, bytes))

    async def close(self) -> None:
        """Log out (best effort, bounded by the timeout) and drop the connection."""
        try:
            # Short: this also runs on the way out of a stopping process.
            async with asyncio.timeout(min(self._timeout, _CLOSE_TIMEOUT)):
                await self._client.logout()
        except (TimeoutError, OSError, aioimaplib.AioImapException):
            pass
        finally:
            _drop(self._client)

    async def _call(self, what: str, command: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                response = await command
        except (TimeoutError, OSError, aioimaplib.AioImapException) as exc:
            raise ImapError(f"IMAP {what}: {_describe(exc)}") from exc
        if response.result != "OK":
            raise ImapError(f"IMAP {what}: {response.result} {_text(response)}")
        return response


def _ssl_context(settings: ImapSettings) -> ssl.SSLContext:
    cafile = str(settings.ca_file) if settings.ca_file is not None else None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)


async def _starttls(client: Any, host: str, context: ssl.SSLContext) -> None:
    """Upgrade the plain connection (RFC 3501 STARTTLS); aioimaplib has no call for it."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError(f"IMAP {host}: the server does not offer STARTTLS")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await protocol.execute(command)
    if response.result != "OK":
        raise ImapError(f"IMAP {host}: STARTTLS refused: {_text(response)}")
    transport = await protocol.loop.start_tls(
        protocol.transport, protocol, context, server_hostname=host
    )
    protocol.transport = transport
    # Capabilities before TLS must not be trusted (RFC 3501 6.2.1): ask again.
    await protocol.capability()


def _drop(client: Any) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()
    task = getattr(client, "_client_task", None)
    if task is not None and not task.done():
        task.cancel()


def _text(response: Any) -> str:
    lines = [bytes(line) for line in response.lines if isinstance(line, bytes)]
    return (lines[-1] if lines else b"").decode(errors="replace")[:200]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]
