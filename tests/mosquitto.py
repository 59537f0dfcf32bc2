"""A real Mosquitto broker for a test, on its own free port on 127.0.0.1.

``Mosquitto(tmp_path)`` writes its config, database and log under ``tmp_path``.
Persistence is on, so ``stop()``/``start()`` (or ``restart()``) keeps persistent
sessions and their queued messages, as a production broker restart does; ``kill()``
(SIGKILL) is a crash and loses what was not saved. The methods block (a start takes a
few tens of milliseconds); calling them from a test coroutine is fine - nothing else on
the loop can do anything useful while the broker is down anyway.

Use the function-scoped fixture ``mosquitto``: ``async def test_x(mosquitto): ...``.

``Mosquitto(tmp_path, pki=Pki(...))`` runs the production TLS configuration instead -
``deploy/mosquitto/mosquitto-tls.conf`` itself, pointed at this test's port, CA and
server certificate: TLS only, a client certificate of the CA required, its common
name as the user name, and the committed ACL file ``deploy/mosquitto/acl`` - so what
the documented set-up allows and refuses is what the tests check.
``tls_fixture`` (``mosquitto_tls``) is that broker, started.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.pki import Pki
from tests.server_process import log_tails, spawn

BINARY = Path(shutil.which("mosquitto") or "/usr/sbin/mosquitto")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
ACL_FILE = DEPLOY / "acl"
TLS_CONFIG = DEPLOY / "mosquitto-tls.conf"


def _production_tls_config(
    port: int, pki: Pki, acl_file: Path | None, directory: Path, log: Path
) -> str:
    """``deploy/mosquitto/mosquitto-tls.conf`` with this test's port, files and log."""
    text = TLS_CONFIG.read_text()
    replacements = {
        "listener 8883\n": f"listener {port} 127.0.0.1\n",
        "/mosquitto/certs/ca.pem": str(pki.ca),
        "/mosquitto/certs/server.pem": str(pki.server.cert),
        "/mosquitto/certs/server.key": str(pki.server.key),
        "acl_file /mosquitto/config/acl\n": f"acl_file {acl_file}\n" if acl_file else "",
        "/mosquitto/data/": f"{directory}/",
        "log_dest stdout\n": f"log_dest file {log}\n",
    }
    for old, new in replacements.items():
        # A change to the production file that this mapping misses must fail here.
        assert old in text, f"{TLS_CONFIG.name} no longer has {old!r}"
        text = text.replace(old, new)
    return text


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Mosquitto:
    """One broker process; ``start()`` it, ``stop()`` it (the fixture does both)."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        port: int | None = None,
        extra_config: str = "",
        pki: Pki | None = None,
        acl_file: Path | None = ACL_FILE,
    ) -> None:
        self.directory = tmp_path / "mosquitto"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.pki = pki
        self.config = self.directory / "mosquitto.conf"
        self.log = self.directory / "mosquitto.log"
        self._stderr = self.directory / "stderr.log"
        self._process: subprocess.Popen[bytes] | None = None
        # Run as root, mosquitto switches to the 'mosquitto' user, which cannot write to
        # a pytest tmp_path; "user <ourselves>" keeps the current user.
        user = pwd.getpwuid(os.getuid()).pw_name
        if pki is None:
            self.config.write_text(
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
                f"persistence_location {self.directory}/\n"
                "max_queued_messages 100000\n"
                f"log_dest file {self.log}\n"
                "log_type all\n"
                "connection_messages true\n"
                f"user {user}\n"
                f"{extra_config}"
            )
        else:
            self.config.write_text(
                _production_tls_config(self.port, pki, acl_file, self.directory, self.log)
                + "log_type all\n"
                "connection_messages true\n"
                f"user {user}\n"
                f"{extra_config}"
            )

    @property
    def url(self) -> str:
        scheme = "mqtt" if self.pki is None else "mqtts"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker and return once it accepts connections."""
        if self.running:
            raise RuntimeError("mosquitto is running already")
        self._process = spawn([str(BINARY), "-c", str(self.config)], self._stderr)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"mosquitto exited with {code}: {self._diagnostics()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(
                        f"mosquitto not accepting on port {self.port} after {START_TIMEOUT} s: "
                        f"{self._diagnostics()}"
                    ) from None
                time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM and wait: mosquitto saves its database (the sessions) on the way out."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL and wait: a crash; nothing is saved."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        """``stop()`` then ``start()`` on the same port."""
        self.stop()
        self.start()

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _diagnostics(self) -> str:
        return log_tails(self._stderr, self.log)


@pytest.fixture(name="mosquitto")
def mosquitto_fixture(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started broker of this test alone, stopped at teardown.

    Import it as ``mosquitto`` (tests then take a ``mosquitto`` argument, which ruff
    reports as F811) or as ``mosquitto_fixture`` (no clash; the fixture is still
    called ``mosquitto``).
    """
    require(
        shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists(),
        "needs the mosquitto broker (apt install mosquitto)",
    )
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


mosquitto = mosquitto_fixture


@pytest.fixture(name="mosquitto_tls")
def tls_fixture(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started TLS broker (client certificates, the ACL file): ``broker.pki`` signs."""
    require(
        shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists(),
        "needs the mosquitto broker (apt install mosquitto)",
    )
    broker = Mosquitto(tmp_path, pki=Pki(tmp_path / "pki"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


mosquitto_tls = tls_fixture
