"""What is polled per NTU each cycle: one :class:`~probes.observation.SnmpResult` each.

Per target, one flow (a generator the client drives):

1. GET sysUpTime.0 and, when the WAN ifIndex is known, the WAN row: ifOperStatus,
   ifAdminStatus, ifHCIn/OutOctets (ifIn/OutOctets for v1 or agents without HC
   counters), ifInErrors, ifOutErrors, ifInDiscards, and, for a WAN port chosen by
   name, the name column at the cached index (to notice that it moved).
2. When the index is not known yet, sysUpTime went backwards (a reboot can renumber
   interfaces) or the name at the cached index no longer matches, walk the
   ifName / ifDescr / ifAlias column, cache the new index and GET again.
3. When the HC counters come back as noSuchObject / noSuchInstance, remember that
   for the target and GET the 32-bit counters instead.

A cycle is therefore one GET per NTU in the steady state. Values are raw: the
detector computes rates, wraps and reboots. An agent that does not answer gives
``reachable=False`` with ``error`` "timeout", the errno name ("EHOSTUNREACH"),
"auth" (SNMPv3 credentials rejected) or "internal" (a bug on our side, e.g. a
failing flow: it says nothing about the NTU). An agent that answers wrongly gives
``reachable=True`` with the error-status name ("noSuchName" ...) or "protocol".
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from probes.errors import (
    ProbeAuthError,
    ProbeError,
    ProbeTimeoutError,
    ProbeUnreachableError,
    RemoteProtocolError,
    SnmpNoSuchNameError,
    SnmpStatusError,
)
from probes.observation import SnmpResult
from probes.snmp import ber
from probes.snmp.ber import Oid
from probes.snmp.client import SnmpClient
from probes.snmp.flows import Request, walk_flow
from probes.snmp.pdu import Pdu, PduType, check_response
from probes.snmp.target import SnmpTarget, SnmpVersion, WanSelector

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
_IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_DESCR = (*_IF_ENTRY, 2)
IF_ADMIN_STATUS = (*_IF_ENTRY, 7)
IF_OPER_STATUS = (*_IF_ENTRY, 8)
IF_IN_OCTETS = (*_IF_ENTRY, 10)
IF_IN_DISCARDS = (*_IF_ENTRY, 13)
IF_IN_ERRORS = (*_IF_ENTRY, 14)
IF_OUT_OCTETS = (*_IF_ENTRY, 16)
IF_OUT_ERRORS = (*_IF_ENTRY, 20)
IF_NAME = (*_IFX_ENTRY, 1)
IF_HC_IN_OCTETS = (*_IFX_ENTRY, 6)
IF_HC_OUT_OCTETS = (*_IFX_ENTRY, 10)
IF_ALIAS = (*_IFX_ENTRY, 18)
NAME_COLUMN: dict[str, Oid] = {"name": IF_NAME, "descr": IF_DESCR, "alias": IF_ALIAS}
_ROW = (IF_OPER_STATUS, IF_ADMIN_STATUS, IF_IN_ERRORS, IF_OUT_ERRORS, IF_IN_DISCARDS)


@dataclass(frozen=True, slots=True)
class WanCache:
    """What the poller remembers about one NTU between cycles."""

    if_index: int | None = None
    sys_uptime: int | None = None
    hc_counters: bool = True


@dataclass(frozen=True, slots=True)
class _Polled:
    cache: WanCache
    sys_uptime: int | None
    if_index: int | None = None
    oper: int | None = None
    admin: int | None = None
    in_octets: int | None = None
    out_octets: int | None = None
    hc: bool = False
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None


def _int(value: ber.Value) -> int | None:
    if isinstance(value, ber.Integer | ber.Counter32 | ber.Gauge32 | ber.TimeTicks | ber.Counter64):
        return value.value
    return None


def _text(value: ber.Value) -> str | None:
    if isinstance(value, ber.OctetString):
        # Some agents pad ifDescr with NULs or trailing blanks.
        return value.text().rstrip("\x00 ")
    return None


def _answer(response: Pdu, oids: Sequence[Oid]) -> list[ber.Value]:
    """The values of a GET Response, checked against the OIDs asked.

    Raises:
        SnmpStatusError: the Response carried an error-status.
        RemoteProtocolError: the agent answered other OIDs, or another number of them
            (a broken agent, not a bug of ours: the NTU did answer).
    """
    check_response(response)
    varbinds = response.varbinds
    if len(varbinds) != len(oids) or any(
        vb[0] != oid for vb, oid in zip(varbinds, oids, strict=True)
    ):
        raise RemoteProtocolError("GET response does not match the OIDs requested")
    return [value for _, value in varbinds]


def poll_flow(
    target: SnmpTarget, cache: WanCache, *, max_repetitions: int = 25
) -> Generator[Request, Pdu, _Polled]:
    """The per-cycle flow for one target (see the module docstring)."""
    wan = target.wan
    v1 = target.version is SnmpVersion.V1
    hc = cache.hc_counters and not v1  # Counter64 does not exist in SNMPv1
    index = wan.value if wan is not None and wan.by == "index" else cache.if_index
    assert index is None or isinstance(index, int)
    resolved = False
    while True:
        check_name = wan is not None and wan.by != "index" and index is not None
        oids: list[Oid] = [SYS_UPTIME]
        if wan is not None and index is not None:
            if check_name:
                assert wan is not None
                oids.append((*NAME_COLUMN[wan.by], index))
            oids += [(*column, index) for column in _ROW]
            counters = (IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS) if hc else (IF_IN_OCTETS, IF_OUT_OCTETS)
            oids += [(*column, index) for column in counters]
        response = yield Request(type=PduType.GET, oids=tuple(oids))
        try:
            values = _answer(response, oids)
        except SnmpNoSuchNameError:
            # v1: one missing instance fails the whole GET; the row is gone.
            if len(oids) == 1:
                raise
            values = [ber.NO_SUCH_INSTANCE_VALUE] * len(oids)
            uptime_only = yield Request(type=PduType.GET, oids=(SYS_UPTIME,))
            values[0] = _answer(uptime_only, [SYS_UPTIME])[0]
        uptime = _int(values[0]) if values else None
        rebooted = uptime is not None and cache.sys_uptime is not None and uptime < cache.sys_uptime
        cache = replace(cache, sys_uptime=uptime)
        if wan is None:
            return _Polled(cache=cache, sys_uptime=uptime)
        if wan.by != "index" and not resolved:
            moved = index is None or rebooted or (check_name and _text(values[1]) != wan.value)
            if moved:
                index = yield from _resolve(target, wan, max_repetitions=max_repetitions)
                resolved = True
                cache = replace(cache, if_index=index)
                if index is None:
                    return _Polled(cache=cache, sys_uptime=uptime)
                continue
        row = values[2:] if check_name else values[1:]
        oper, admin, in_err, out_err, in_disc, in_oct, out_oct = (_int(v) for v in row)
        if hc and in_oct is None and isinstance(row[5], ber.NoSuchObject | ber.NoSuchInstance):
            hc = False
            cache = replace(cache, hc_counters=False)
            assert index is not None  # the row (with its counters) was polled
            counters32: list[Oid] = [(*IF_IN_OCTETS, index), (*IF_OUT_OCTETS, index)]
            fallback = yield Request(type=PduType.GET, oids=tuple(counters32))
            in_oct, out_oct = (_int(v) for v in _answer(fallback, counters32))
        return _Polled(
            cache=cache,
            sys_uptime=uptime,
            if_index=index,
            oper=oper,
            admin=admin,
            in_octets=in_oct,
            out_octets=out_oct,
            hc=hc,
            in_errors=in_err,
            out_errors=out_err,
            in_discards=in_disc,
        )


def _resolve(
    target: SnmpTarget, wan: WanSelector, *, max_repetitions: int
) -> Generator[Request, Pdu, int | None]:
    """Walk the name column and return the first ifIndex whose text matches."""
    column = NAME_COLUMN[wan.by]
    bulk = target.version is not SnmpVersion.V1
    rows = yield from walk_flow(column, bulk=bulk, max_repetitions=max_repetitions)
    for oid, value in rows:
        if len(oid) == len(column) + 1 and _text(value) == wan.value:
            return oid[-1]
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def error_name(exc: ProbeError) -> str:
    """The short ``SnmpResult.error`` for a failure."""
    if isinstance(exc, ProbeTimeoutError):
        return "timeout"
    if isinstance(exc, ProbeAuthError):
        return "auth"
    if isinstance(exc, ProbeUnreachableError):
        return str(exc) or "unreachable"
    if isinstance(exc, SnmpStatusError):
        return exc.name
    if isinstance(exc, RemoteProtocolError):
        return "protocol"
    return "internal"


class SnmpPoller:
    """Polls NTUs' sysUpTime and WAN interface; remembers each WAN ifIndex.

    Use ``await poller.poll(targets)`` once per cycle with an open
    :class:`~probes.snmp.client.SnmpClient`.
    """

    def __init__(
        self,
        *,
        client: SnmpClient,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Args:
        client: an open client (the poller does not own it).
        wall_clock: UTC "now" for ``SnmpResult.started_at``.
        """
        if not isinstance(client, SnmpClient):
            raise TypeError("client must be an SnmpClient")
        self._client = client
        self._wall_clock = wall_clock
        self._cache: dict[str, WanCache] = {}

    def cached(self, key: str) -> WanCache | None:
        """What is remembered about NTU ``key``."""
        return self._cache.get(key)

    def forget(self, key: str) -> None:
        """Drop what is remembered about NTU ``key`` (e.g. removed from inventory)."""
        self._cache.pop(key, None)

    async def poll(self, targets: Sequence[SnmpTarget]) -> list[SnmpResult]:
        """Poll every target once; one result per target, in the order given."""
        started = self._wall_clock()
        max_rep = self._client.settings.max_repetitions
        empty = WanCache()
        jobs = [
            (t, poll_flow(t, self._cache.get(t.key, empty), max_repetitions=max_rep))
            for t in targets
        ]
        outcomes = await self._client.run_many(jobs)
        results: list[SnmpResult] = []
        for target, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, _Polled):
                self._cache[target.key] = outcome.cache
                results.append(
                    SnmpResult(
                        key=target.key,
                        address=target.address,
                        started_at=started,
                        reachable=True,
                        sys_uptime=outcome.sys_uptime,
                        if_index=outcome.if_index,
                        if_oper_status=outcome.oper,
                        if_admin_status=outcome.admin,
                        in_octets=outcome.in_octets,
                        out_octets=outcome.out_octets,
                        counters_64bit=outcome.hc and outcome.in_octets is not None,
                        in_errors=outcome.in_errors,
                        out_errors=outcome.out_errors,
                        in_discards=outcome.in_discards,
                    )
                )
                continue
            assert isinstance(outcome, ProbeError)
            # Only an agent that sent something (a bad or error-status Response) has
            # answered. A LocalProtocolError is our bug and proves nothing about the
            # NTU: counting it as an answer would mark a dead NTU "up, ICMP filtered".
            answered = isinstance(outcome, RemoteProtocolError)
            results.append(
                SnmpResult(
                    key=target.key,
                    address=target.address,
                    started_at=started,
                    reachable=answered,
                    error=error_name(outcome),
                )
            )
        return results
