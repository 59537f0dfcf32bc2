"""Multi-step SNMP exchanges written as generators (sans-IO).

A flow yields a :class:`Request`, is sent the agent's Response :class:`~probes.snmp.pdu.Pdu`,
and finally returns its result (``StopIteration.value``). The client only drives
flows: it owns request-ids, encoding, timeouts and retries, and it runs the same
flow over v1 / v2c (our codec) or v3 (pysnmp). Anchor: httpx ``auth_flow``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

from probes.errors import RemoteProtocolError, SnmpNoSuchNameError
from probes.snmp import ber
from probes.snmp.ber import Oid
from probes.snmp.pdu import Pdu, PduType, VarBind, check_response


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A read request: GET, GETNEXT or GETBULK of ``oids`` (values are NULL)."""

    type: PduType
    oids: tuple[Oid, ...]
    non_repeaters: int = 0
    max_repetitions: int = 0

    def __post_init__(self) -> None:
        if self.type not in (PduType.GET, PduType.GET_NEXT, PduType.GET_BULK):
            raise ValueError(f"a read request is GET, GET_NEXT or GET_BULK, not {self.type!r}")
        if not self.oids:
            raise ValueError("a request needs at least one OID")


R = TypeVar("R")
Flow = Generator[Request, Pdu, R]


def get_flow(oids: tuple[Oid, ...]) -> Generator[Request, Pdu, tuple[VarBind, ...]]:
    """One GET; returns the varbinds (v2c exception values included, in order).

    Raises:
        SnmpStatusError: the Response carried an error-status.
        RemoteProtocolError: the Response did not answer the OIDs asked.
    """
    response = yield Request(type=PduType.GET, oids=oids)
    check_response(response)
    varbinds = response.varbinds
    if len(varbinds) != len(oids) or any(
        vb[0] != oid for vb, oid in zip(varbinds, oids, strict=True)
    ):
        raise RemoteProtocolError("GET response does not match the OIDs requested")
    return varbinds


def walk_flow(
    root: Oid, *, bulk: bool, max_repetitions: int = 25, max_rows: int = 100_000
) -> Generator[Request, Pdu, list[VarBind]]:
    """Every varbind under ``root``, in order.

    Uses GETBULK when ``bulk`` (v2c / v3) and GETNEXT otherwise (v1). Ends at the
    first OID outside ``root``, at endOfMibView, or (v1) at a noSuchName error.

    Raises:
        RemoteProtocolError: the agent returned OIDs that do not increase (a loop),
            or more than ``max_rows`` rows.
    """
    out: list[VarBind] = []
    last = root
    depth = len(root)
    while True:
        if bulk:
            request = Request(type=PduType.GET_BULK, oids=(last,), max_repetitions=max_repetitions)
        else:
            request = Request(type=PduType.GET_NEXT, oids=(last,))
        response = yield request
        try:
            check_response(response)
        except SnmpNoSuchNameError:
            if bulk:
                raise
            return out  # v1 signals the end of the MIB with noSuchName (RFC 1157 4.1.3)
        if not response.varbinds:
            raise RemoteProtocolError("empty response to a walk request")
        for oid, value in response.varbinds:
            if isinstance(value, ber.EndOfMibView) or oid[:depth] != root:
                return out
            if oid <= last:
                raise RemoteProtocolError(f"OID {ber.format_oid(oid)} does not increase")
            out.append((oid, value))
            last = oid
        if len(out) > max_rows:
            raise RemoteProtocolError(f"walk of {ber.format_oid(root)} exceeds {max_rows} rows")
