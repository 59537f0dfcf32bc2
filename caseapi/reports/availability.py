"""Availability from outage intervals: pure interval arithmetic, no I/O, time passed in.

How it counts, per NTU and period ``[start, end)`` (``end`` is cut to ``now`` while
the period is still running):

1. Excluded time: the maintenance windows covering the NTU and its periods of no
   data, clipped to the period and merged. It is reported separately and never
   counted as up or down.
2. Measured time: the period minus the excluded time.
3. Counted downtime: the NTU's counted outage intervals (its contract's rules
   decided ``counted`` when the interval was written), clipped to the period,
   merged (overlaps are counted once), minus the excluded time.
4. ``availability = 100 * (1 - downtime / measured)``; ``None`` when nothing was
   measured. Outages are the merged counted intervals with downtime left after the
   exclusion; MTTR is downtime per outage, MTBF measured uptime per outage.

Groups (service, site, customer, fleet) add their NTUs' seconds: availability over
NTU-time, so a site with ten NTUs and one of them down for an hour has lost one
NTU-hour out of ten.

Intervals are half-open ``[start, end)``; every datetime is timezone-aware.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

Span = tuple[datetime, datetime]

ZERO = timedelta(0)


class OutageKind(StrEnum):
    DOWN = "down"
    DEGRADED = "degraded"


class OutageCause(StrEnum):
    """Why the NTU was out (or why its time is excluded)."""

    OWN = "own"
    """The NTU's own outage (its own P1/P2)."""
    UPSTREAM = "upstream"
    """Unreachable behind an upstream node's outage."""
    MAINTENANCE = "maintenance"
    """Covered by a maintenance window (mute or skip): excluded, never counted."""
    NO_DATA = "no_data"
    """No probe data (``unknown``): excluded, never counted as up or down."""


@dataclass(frozen=True, slots=True)
class Outage:
    """One outage or degradation interval of one NTU (``end`` ``None``: still open)."""

    ntu_id: str
    kind: OutageKind
    cause: OutageCause
    start: datetime
    end: datetime | None
    counted: bool
    case_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Figures:
    """The availability figures of one NTU or group over a period (seconds)."""

    ntus: int
    period: float
    maintenance: float
    no_data: float
    measured: float
    downtime: float
    degraded: float
    outages: int
    longest_outage: float
    p1_refs: frozenset[str]
    p2_refs: frozenset[str]

    @property
    def p1(self) -> int:
        """P1 cases (distinct) with an interval in the period."""
        return len(self.p1_refs)

    @property
    def p2(self) -> int:
        """P2 cases (distinct) with an interval in the period."""
        return len(self.p2_refs)

    @property
    def availability(self) -> float | None:
        """Percent of the measured time the service was up; ``None``: nothing measured."""
        if self.measured <= 0:
            return None
        return 100.0 * (1.0 - self.downtime / self.measured)

    @property
    def mttr(self) -> float | None:
        """Mean time to repair: counted downtime per outage (seconds)."""
        return self.downtime / self.outages if self.outages else None

    @property
    def mtbf(self) -> float | None:
        """Mean time between failures: measured uptime per outage (seconds)."""
        return (self.measured - self.downtime) / self.outages if self.outages else None


EMPTY = Figures(
    ntus=0,
    period=0.0,
    maintenance=0.0,
    no_data=0.0,
    measured=0.0,
    downtime=0.0,
    degraded=0.0,
    outages=0,
    longest_outage=0.0,
    p1_refs=frozenset(),
    p2_refs=frozenset(),
)


# -- interval arithmetic ------------------------------------------------------------------


def clip(spans: Iterable[Span], start: datetime, end: datetime) -> list[Span]:
    """The parts of ``spans`` inside ``[start, end)`` (empty ones dropped)."""
    out = []
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s < e:
            out.append((s, e))
    return out


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, with overlapping and touching spans joined."""
    out: list[Span] = []
    for s, e in sorted(spans):
        if s >= e:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def subtract(spans: Iterable[Span], holes: Iterable[Span]) -> list[Span]:
    """``spans`` minus every hole (both merged first)."""
    cut = merge(holes)
    out: list[Span] = []
    for s, e in merge(spans):
        for hs, he in cut:
            if he <= s:
                continue
            if hs >= e:
                break
            if hs > s:
                out.append((s, hs))
            s = max(s, he)
            if s >= e:
                break
        if s < e:
            out.append((s, e))
    return out


def total(spans: Iterable[Span]) -> timedelta:
    """The summed length of ``spans`` (assumed disjoint)."""
    return sum((e - s for s, e in spans), ZERO)


# -- figures --------------------------------------------------------------------------------


def ntu_figures(
    outages: Sequence[Outage],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    maintenance: Sequence[Span] = (),
) -> Figures:
    """The figures of one NTU over ``[start, end)`` from its intervals.

    Args:
        outages: The NTU's intervals (any period; clipped here). Open ones run to
            ``now``. ``cause`` ``no_data`` intervals are excluded time.
        start: Period start (aware).
        end: Period end (aware); cut to ``now`` when later.
        now: The current time.
        maintenance: The spans of maintenance windows covering the NTU.

    Raises:
        ValueError: ``end`` is not after ``start``.
    """
    if end <= start:
        raise ValueError("the period must end after it starts")
    stop = max(start, min(end, now))

    def span(outage: Outage) -> Span:
        return (outage.start, outage.end if outage.end is not None else now)

    maint = merge(clip(maintenance, start, stop))
    gaps = subtract(
        clip((span(o) for o in outages if o.cause is OutageCause.NO_DATA), start, stop), maint
    )
    excluded = merge([*maint, *gaps])
    period = stop - start
    measured = period - total(excluded)
    down_segments = merge(
        clip(
            (
                span(o)
                for o in outages
                if o.counted and o.kind is OutageKind.DOWN and o.cause is not OutageCause.NO_DATA
            ),
            start,
            stop,
        )
    )
    downtime = ZERO
    count = 0
    longest = ZERO
    for segment in down_segments:
        left = total(subtract([segment], excluded))
        if left > ZERO:
            count += 1
            downtime += left
            longest = max(longest, left)
    degraded = total(
        subtract(
            clip(
                (span(o) for o in outages if o.kind is OutageKind.DEGRADED),
                start,
                stop,
            ),
            excluded,
        )
    )
    in_period = [
        o for o in outages if o.cause is not OutageCause.NO_DATA and _touches(o, start, stop, now)
    ]
    return Figures(
        ntus=1,
        period=period.total_seconds(),
        maintenance=total(maint).total_seconds(),
        no_data=total(gaps).total_seconds(),
        measured=measured.total_seconds(),
        downtime=downtime.total_seconds(),
        degraded=degraded.total_seconds(),
        outages=count,
        longest_outage=longest.total_seconds(),
        p1_refs=frozenset(
            o.case_ref for o in in_period if o.kind is OutageKind.DOWN and o.case_ref
        ),
        p2_refs=frozenset(
            o.case_ref for o in in_period if o.kind is OutageKind.DEGRADED and o.case_ref
        ),
    )


def _touches(outage: Outage, start: datetime, stop: datetime, now: datetime) -> bool:
    end = outage.end if outage.end is not None else now
    return outage.start < stop and end > start


def combine(parts: Iterable[Figures]) -> Figures:
    """The figures of a group: its members' seconds and counts added (NTU-time)."""
    result = EMPTY
    for f in parts:
        result = Figures(
            ntus=result.ntus + f.ntus,
            period=result.period + f.period,
            maintenance=result.maintenance + f.maintenance,
            no_data=result.no_data + f.no_data,
            measured=result.measured + f.measured,
            downtime=result.downtime + f.downtime,
            degraded=result.degraded + f.degraded,
            outages=result.outages + f.outages,
            longest_outage=max(result.longest_outage, f.longest_outage),
            p1_refs=result.p1_refs | f.p1_refs,
            p2_refs=result.p2_refs | f.p2_refs,
        )
    return result
