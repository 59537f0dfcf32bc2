"""A user-space ICMP echo responder with a chosen delay: the lab's latency fault.

The kernel here has no ``netem``, so a lab host is made slow by silencing its kernel
responder (``icmp_echo_ignore_all=1``) and running this one inside its namespace. It
reads every echo request to any of the host's addresses on a raw socket and answers
after ``delay`` (plus up to ``jitter``) seconds, from the address that was asked.
IPv4 only.

    ip netns exec ntulab1 python -m nms.lab.responder --delay 0.2 --jitter 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import Self

from nms.lab.plan import LabHost
from nms.lab.procs import stop_process
from probes.errors import DecodeError
from probes.icmp import codec

log = logging.getLogger("nms.lab")

_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")


def reply_packet(request: bytes) -> tuple[bytes, str] | None:
    """The IPv4 packet answering ``request`` (an IPv4 packet), and where it goes."""
    try:
        echo = codec.decode_request(request, ip_header=True)
    except DecodeError:
        return None
    source, destination = request[12:16], request[16:20]
    icmp = codec.encode_echo_reply(
        identifier=echo.identifier, sequence=echo.sequence, payload=echo.payload
    )
    # With IP_HDRINCL Linux fills in the header checksum and total length.
    header = _IPV4_HEADER.pack(0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0, destination, source)
    return header + icmp, socket.inet_ntoa(source)


async def serve(delay: float, jitter: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def send(packet: bytes, to: str) -> None:
        with contextlib.suppress(OSError):  # a peer gone meanwhile: nothing to answer
            sock.sendto(packet, (to, 0))

    def on_readable() -> None:
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            answer = reply_packet(data)
            if answer is not None:
                loop.call_later(delay + random.uniform(0, jitter), send, *answer)

    loop.add_reader(sock.fileno(), on_readable)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()


class LatencyResponder:
    """Make a lab host answer echoes ``delay`` seconds late, until ``stop()``.

    Silences the host's kernel responder and starts this module inside its
    namespace; ``stop`` undoes both.
    """

    def __init__(self, *, host: LabHost, delay: float, jitter: float = 0.0) -> None:
        if delay < 0 or jitter < 0:
            raise ValueError("delay and jitter must not be negative")
        self._host = host
        self._delay = delay
        self._jitter = jitter
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        from nms.lab import faults

        faults.silence(self._host)
        self._proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self._host.netns,
                sys.executable,
                "-m",
                "nms.lab.responder",
                "--delay",
                str(self._delay),
                "--jitter",
                str(self._jitter),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError(f"latency responder in {self._host.netns} did not start")
        log.info("fault: %s answers echoes %.0f ms late", self._host.netns, self._delay * 1000)

    def stop(self) -> None:
        from nms.lab import faults

        if self._proc is not None:
            stop_process(self._proc, timeout=5)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        self._proc = None
        faults.unsilence(self._host)
        log.info("undo: %s answers echoes from the kernel again", self._host.netns)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Answer ICMP echoes with a delay.")
    parser.add_argument("--delay", type=float, required=True, help="seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra random seconds")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.delay, args.jitter))
    return 0


if __name__ == "__main__":
    sys.exit(main())
