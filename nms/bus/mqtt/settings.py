"""The MQTT bus's settings and the broker address parsed from its URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_MAX_SESSION_EXPIRY = 2**32 - 1  # a four-byte integer in CONNECT; this value means never


@dataclass(frozen=True, slots=True)
class MqttBusSettings:
    """Connection settings; ``timeout`` bounds connect, subscribe and each publish ack.

    Raises:
        ValueError: (when built) a bad URL, topic prefix or limit, naming it.
    """

    url: str  # mqtt://[user:pass@]host[:port]
    topic_prefix: str = "nms/v1"
    session_expiry: float = 3600.0  # seconds, for persistent=True clients
    buffer_batches: int = 2000
    reconnect_base: float = 0.5  # backoff with jitter, doubling...
    reconnect_cap: float = 30.0  # ...up to this
    keepalive: int = 10
    timeout: float = 10.0

    def __post_init__(self) -> None:
        Broker.parse(self.url)
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
    """Where the broker is and who we are to it, from ``mqtt://[user:pass@]host[:port]``."""

    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Broker:
        """The broker of ``url``; user and password are percent-decoded.

        Raises:
            ValueError: not an ``mqtt://`` URL with a host (and at most a port).
        """
        parts = urlsplit(url)
        if parts.scheme != "mqtt":
            raise ValueError(f"bus url {url!r}: expected mqtt://[user:pass@]host[:port]")
        if not parts.hostname:
            raise ValueError(f"bus url {url!r}: no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"bus url {url!r}: unexpected path or query")
        port = parts.port or 1883  # ValueError for a bad port
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )
