"""TLS to the broker (``mqtts://``): the files, their checks, the client's SSL context.

The context verifies the broker's certificate against ``ca`` (the system's trust
store when there is none) and its host name against the URL's host, speaks TLS 1.2
or newer, and presents ``cert``/``key`` when given - a broker with
``require_certificate true`` refuses a client without one, and with
``use_identity_as_username true`` the certificate's common name is the user name its
ACL file restricts (``deploy/mosquitto/acl``).
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path


class TlsError(ValueError):
    """A TLS file is missing, unreadable, too open or not what it should be.

    The message starts with the setting's key (``bus.tls_key: ...``).
    """


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM files of one client; ``cert`` and ``key`` come together or not at all."""

    ca: Path | None = None  # None: the system's trust store
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            missing = "bus.tls_key" if self.key is None else "bus.tls_cert"
            raise TlsError(f"{missing}: needed too (bus.tls_cert and bus.tls_key go together)")


def check_file(path: Path, *, secret: bool = False) -> Path:
    """``path`` if it is a readable file, and (``secret``) readable by its owner only.

    Raises:
        TlsError: naming the path and what is wrong (the caller names the setting).
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise TlsError(f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise TlsError(f"{path}: not a file")
    if not os.access(path, os.R_OK):
        raise TlsError(f"{path}: not readable by this user")
    mode = stat.S_IMODE(info.st_mode)
    if secret and mode & 0o077:
        # Like ssh with its keys: a private key others can read is no longer private.
        raise TlsError(f"{path} is open to other users (mode {mode:04o}): chmod 600 it")
    return path


def _check(path: Path, key: str, *, secret: bool = False) -> None:
    try:
        check_file(path, secret=secret)
    except TlsError as exc:
        raise TlsError(f"{key}: {exc}") from None


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails.

    paho wraps the TCP socket and runs the handshake in its connect; when the
    handshake fails (the broker's certificate does not verify, or the broker refuses
    ours) it raises without closing the socket, which then lingers until the garbage
    collector finds it - one file descriptor per retry, and a ResourceWarning.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """The SSL context of a client that checks the broker (TLS >= 1.2, host name on).

    Raises:
        TlsError: a file cannot be read or is not a PEM certificate / matching key.
    """
    if files.ca is not None:
        _check(files.ca, "bus.tls_ca")
    if files.cert is not None and files.key is not None:
        _check(files.cert, "bus.tls_cert")
        _check(files.key, "bus.tls_key", secret=True)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.sslsocket_class = _ClosingSSLSocket
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context sets both; said again because they are the point.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if files.ca is not None:
        try:
            context.load_verify_locations(cafile=files.ca)
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(f"bus.tls_ca: {files.ca}: not a PEM CA certificate ({exc})") from None
    if files.cert is not None and files.key is not None:
        try:
            context.load_cert_chain(files.cert, files.key)
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(
                f"bus.tls_cert, bus.tls_key: {files.cert} and {files.key}: not a PEM "
                f"certificate and its unencrypted private key ({exc})"
            ) from None
    return context
