"""Where each message goes, and how: topic, QoS (see the ``nms.bus.mqtt`` docstring)."""

from __future__ import annotations

import re

from nms.bus.wire import CaseChange, Message, NtuStateChange, SkipSet

_UNSAFE_IN_LEVEL = re.compile(r"[+#/\x00]")


def topic_for(prefix: str, message: Message, sender: str | None = None) -> str:
    """The topic ``message`` is published on (see the ``nms.bus.mqtt`` docstring).

    ``sender`` is the level under ``probes/`` (default: the message's source): a probe
    worker's user name at the broker, which its ACL limits it to.
    """
    payload = message.payload
    if isinstance(payload, NtuStateChange):
        return f"{prefix}/detector/ntus/{_level(payload.ntu_id)}"
    if isinstance(payload, CaseChange):
        return f"{prefix}/cases/{_level(payload.ref)}"
    if isinstance(payload, SkipSet):
        return f"{prefix}/control/skip"
    return f"{prefix}/probes/{_level(sender or message.source)}/{message.kind}"


def qos_for(kind: str) -> int:
    """0 for heartbeats (only the latest matters), 1 for everything else."""
    return 0 if kind == "heartbeat" else 1


def _level(text: str) -> str:
    """``text`` as one topic level: wildcards and separators would change the topic."""
    return _UNSAFE_IN_LEVEL.sub("_", text) or "_"
