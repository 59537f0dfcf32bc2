"""The MQTT bus's settings and the broker address parsed from its URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from nms.bus.mqtt.tls import TlsFiles

_MAX_SESSION_EXPIRY = 2**32 - 1  # a four-byte integer in CONNECT; this value means never


@dataclass(frozen=True, slots=True)
class MqttBusSettings:
    """Connection settings; ``timeout`` bounds connect, subscribe and each publish ack.

    Raises:
        ValueError: (when built) a bad URL, topic prefix or limit, naming it.
    """

    url: str  # mqtt[s]://[user:pass@]host[:port]
    topic_prefix: str = "nms/v1"
    session_expiry: float = 3600.0  # seconds, for persistent=True clients
    buffer_batches: int = 2000
    reconnect_base: float = 0.5  # backoff with jitter, doubling...
    reconnect_cap: float = 30.0  # ...up to this
    keepalive: int = 10
    timeout: float = 10.0
    # Credentials, when not in the URL (not both); the password is never shown.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsFiles | None = None  # mqtts:// only; None there: system CAs, no certificate

    def __post_init__(self) -> None:
        broker = Broker.parse(self.url)
        if self.tls is not None and not broker.tls:
            raise ValueError("bus.tls_*: TLS files need an mqtts:// url")
        if self.username is not None and broker.username is not None:
            raise ValueError("bus url: a user name in the URL and in username; give one")
        if self.password is not None and self.username is None:
            raise ValueError("password without username")
        prefix = self.topic_prefix
        if not prefix or prefix.startswith("/") or prefix.endswith("/") or "+" in prefix:
            raise ValueError(f"topic_prefix {prefix!r}: not a topic like 'nms/v1'")
        if "#" in prefix or "\x00" in prefix:
            raise ValueError(f"topic_prefix {prefix!r}: must not contain '#'")
        if not 0 <= self.session_expiry <= _MAX_SESSION_EXPIRY:
            raise ValueError(f"session_expiry {self.session_expiry}: 0 to {_MAX_SESSION_EXPIRY} s")
        if self.buffer_batches < 1:
            raise ValueError("buffer_batches must be at least 1")
        if not 0 < self.reconnect_base <= self.reconnect_cap:
            raise ValueError("need 0 < reconnect_base <= reconnect_cap")
        if not 1 <= self.keepalive <= 65535:
            raise ValueError("keepalive must be 1 to 65535 s")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the broker is and who we are to it, from ``mqtt[s]://[user:pass@]host[:port]``."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Broker:
        """The broker of ``url``; user and password are percent-decoded.

        ``mqtts://`` is TLS, on port 8883 unless the URL says otherwise.

        Raises:
            ValueError: not an ``mqtt[s]://`` URL with a host (and at most a port); the
                message shows the URL without its password.
        """
        parts = urlsplit(url)
        shown = masked(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"bus url {shown!r}: expected mqtt[s]://[user:pass@]host[:port]")
        if not parts.hostname:
            raise ValueError(f"bus url {shown!r}: no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"bus url {shown!r}: unexpected path or query")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ValueError(f"bus url {shown!r}: {exc}") from None
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=tls,
        )


def masked(url: str) -> str:
    """``url`` with the password of its user info (if any) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
