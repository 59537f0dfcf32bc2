"""``host:port`` addresses in settings (``[v6]:port`` for IPv6)."""

from __future__ import annotations


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) -> (host, port)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{listen!r} is not host:port (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port_text)
