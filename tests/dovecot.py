"""A real Dovecot IMAP server for a test, on its own free port on 127.0.0.1.

``Dovecot(tmp_path)`` writes its configuration, a passwd-file with one user
(``USER`` / ``PASSWORD``) and its log under ``tmp_path``; the user's maildir lives in
a private directory of its own under the system temporary folder (Dovecot refuses
mail access as root, so the mail user is the ``dovecot`` system user, who cannot
enter a root-only pytest ``tmp_path``). The plain port has no TLS (``ssl = no``);
``tls=True`` adds an implicit-TLS port (``tls_port``) with a certificate of the
``tests.pki`` test CA (``ca_file``) and allows STARTTLS on the plain port.

Test mail goes in with ``append()`` (IMAP APPEND, as a real MTA's delivery looks to
a reader); ``uids()`` and ``flags()`` look at a folder. These are blocking calls on
the standard library's ``imaplib``: a test needs no event loop for them.

Use the fixture ``dovecot``: ``def test_x(dovecot): ...``.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.pki import Pki
from tests.server_process import log_tails, spawn

BINARY = Path(shutil.which("dovecot") or "/usr/sbin/dovecot")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
USER = "support@example.test"
PASSWORD = "imap-test-password"
MAIL_OWNER = "dovecot"


def _free_ports(count: int) -> list[int]:
    """``count`` different free ports (all bound at once, so no two are the same)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def available() -> bool:
    """Whether the Dovecot binary (Debian ``dovecot-imapd``) is installed."""
    return BINARY.exists() and Path("/usr/lib/dovecot/imap").exists()


class Dovecot:
    """One Dovecot process; ``start()`` it, ``stop()`` it (the fixture does both)."""

    def __init__(self, tmp_path: Path, *, tls: bool = False) -> None:
        self.directory = tmp_path / "dovecot"
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = _free_ports(2)
        self.port = ports[0]
        self.tls_port = ports[1] if tls else None
        self.user, self.password = USER, PASSWORD
        self.config = self.directory / "dovecot.conf"
        self.log = self.directory / "dovecot.log"
        self._stderr = self.directory / "stderr.log"
        self._process: subprocess.Popen[bytes] | None = None
        owner = pwd.getpwnam(MAIL_OWNER)
        self.mail_root = Path(tempfile.mkdtemp(prefix="nms-dovecot-"))
        os.chown(self.mail_root, owner.pw_uid, owner.pw_gid)
        # The auth process runs as the mail owner: the passwd-file lives with the mail.
        self.passwd = self.mail_root / "passwd"
        # Dovecot's Unix sockets live under base_dir, and a socket's path may not pass
        # 107 bytes: a pytest tmp_path (a level deeper under pytest-xdist) leaves too
        # few. A short private directory of the system temporary folder instead.
        self.sockets = Path(tempfile.mkdtemp(prefix="nms-dovecot-"))
        self.passwd.write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}:{owner.pw_uid}:{owner.pw_gid}::{self.mail_root}::\n"
        )
        me = pwd.getpwuid(os.getuid()).pw_name
        ssl_lines = "ssl = no\n"
        listeners = (
            f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = {self.port}\n  }}\n"
        )
        self.ca_file: Path | None = None
        if tls:
            pki = Pki(self.directory / "pki")
            self.ca_file = pki.ca
            cert, key = pki.server.cert, pki.server.key
            ssl_lines = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
            listeners += (
                f"  inet_listener imaps {{\n    address = 127.0.0.1\n"
                f"    port = {self.tls_port}\n    ssl = yes\n  }}\n"
            )
        self.config.write_text(
            f"base_dir = {self.sockets}/run\n"
            f"state_dir = {self.directory}/state\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            f"log_path = {self.log}\n"
            f"info_log_path = {self.log}\n"
            f"default_login_user = dovenull\n"
            f"default_internal_user = {MAIL_OWNER}\n"
            f"default_internal_group = {MAIL_OWNER}\n"
            f"# started by {me} for a test\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            f"{ssl_lines}"
            f"first_valid_uid = {owner.pw_uid}\n"
            f"mail_location = maildir:{self.mail_root}/Maildir\n"
            "mail_fsync = never\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN username_format=%u {self.passwd}\n}}\n"
            "userdb {\n  driver = passwd-file\n"
            f"  args = username_format=%u {self.passwd}\n}}\n"
            "namespace inbox {\n  inbox = yes\n  separator = /\n"
            "  mailbox Processed {\n    auto = create\n  }\n}\n"
            f"service imap-login {{\n{listeners}}}\n"
            "service anvil {\n  chroot =\n}\n"
            "service imap-login {\n  chroot =\n}\n"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start Dovecot in the foreground and return once it accepts connections."""
        if self.running:
            raise RuntimeError("dovecot is running already")
        # Its own process group: stop() ends the master and its children at once.
        self._process = spawn(
            [str(BINARY), "-F", "-c", str(self.config)], self._stderr, own_group=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"dovecot exited with {code}: {self._diagnostics()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.settimeout(2)
                    if sock.recv(200).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"dovecot not answering on port {self.port} after {START_TIMEOUT} s: "
                    f"{self._diagnostics()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """End the master and every child of it (its process group), and wait.

        SIGKILL, not SIGTERM: a test server keeps nothing worth a clean shutdown (the
        maildir is written synchronously), and the master's SIGTERM takes a second.
        """
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)

    def remove(self) -> None:
        """Delete the mail and socket directories (after ``stop()``)."""
        shutil.rmtree(self.mail_root, ignore_errors=True)
        shutil.rmtree(self.sockets, ignore_errors=True)

    def _diagnostics(self) -> str:
        return log_tails(self._stderr, self.log)

    # -- a blocking IMAP client for the test's side ------------------------------------

    @contextlib.contextmanager
    def client(self, folder: str = "INBOX") -> Iterator[imaplib.IMAP4]:
        """A logged-in ``imaplib`` client with ``folder`` selected."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(self.user, self.password)
            status, _ = imap.select(folder)
            assert status == "OK", f"cannot select {folder}"
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def append(self, messages: Iterable[bytes], folder: str = "INBOX") -> int:
        """APPEND each message to ``folder``; returns how many."""
        count = 0
        with self.client(folder) as imap:
            for raw in messages:
                status, data = imap.append(folder, "", None, raw)
                assert status == "OK", data
                count += 1
        return count

    def uids(self, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        """The UIDs in ``folder`` matching ``criteria`` (IMAP SEARCH syntax)."""
        with self.client(folder) as imap:
            status, data = imap.uid("SEARCH", criteria)
            assert status == "OK", data
            return [int(uid) for uid in data[0].split()] if data and data[0] else []

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Each message's UID in ``folder`` and its flags."""
        with self.client(folder) as imap:
            status, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            assert status == "OK", data
            found: dict[int, set[str]] = {}
            for line in data:
                if not isinstance(line, bytes):
                    continue
                match = re.search(rb"UID (\d+).*FLAGS \(([^)]*)\)", line) or re.search(
                    rb"FLAGS \(([^)]*)\).*UID (\d+)", line
                )
                if match is None:
                    continue
                if line.find(b"UID") < line.find(b"FLAGS"):
                    uid, flags = match.group(1), match.group(2)
                else:
                    flags, uid = match.group(1), match.group(2)
                found[int(uid)] = set(flags.decode().split())
            return found


@pytest.fixture(name="dovecot")
def dovecot_fixture(tmp_path: Path) -> Iterator[Dovecot]:
    """A started Dovecot of this test alone (plain port only), stopped at teardown."""
    require(available(), "needs Dovecot (apt install dovecot-imapd)")
    server = Dovecot(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.remove()


@pytest.fixture(name="dovecot_tls")
def dovecot_tls_fixture(tmp_path: Path) -> Iterator[Dovecot]:
    """As ``dovecot``, with an implicit-TLS port and STARTTLS (``ca_file`` trusts it)."""
    require(available(), "needs Dovecot (apt install dovecot-imapd)")
    server = Dovecot(tmp_path, tls=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.remove()
