"""``deliver`` (the MTA pipe's core): exit codes and bounded reading, with a stand-in ingest.

The command itself, over the real ingest and database, runs in
``tests/nms/app/test_mail_e2e.py``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from caseapi.database import DatabaseUnavailableError
from caseapi.mailbox import EX_DATAERR, EX_OK, EX_TEMPFAIL, deliver, read_bounded

GOOD = b"From: a@customer.test\r\nSubject: Hello\r\nMessage-ID: <1@customer.test>\r\n\r\nHi\r\n"


@dataclass(frozen=True)
class Result:
    outcome: str


@dataclass
class StandIn:
    calls: list[tuple[int, str, int | None]] = field(default_factory=list)
    error: Exception | None = None

    async def ingest(self, raw: bytes, *, mailbox: str, uid: int | None) -> Result:
        self.calls.append((len(raw), mailbox, uid))
        if self.error is not None:
            raise self.error
        return Result("held")


async def test_a_mail_is_accepted_with_its_outcome() -> None:
    ingest = StandIn()
    done = await deliver(GOOD, ingest=ingest.ingest, mailbox="mta", max_size=4096)
    assert (done.code, done.message) == (EX_OK, "accepted: held")
    assert ingest.calls == [(len(GOOD), "mta", None)]


async def test_not_a_mail_is_a_data_error_and_nothing_is_ingested() -> None:
    ingest = StandIn()
    done = await deliver(b"Foo: bar\r\n\r\nbody", ingest=ingest.ingest, mailbox="m", max_size=4096)
    assert done.code == EX_DATAERR
    assert "no mail header fields" in done.message
    assert ingest.calls == []


async def test_database_unavailable_and_any_failure_are_temporary() -> None:
    down = StandIn(error=DatabaseUnavailableError("refused", url="sqlite+aiosqlite:///x.db"))
    broken = StandIn(error=RuntimeError("bug"))
    for ingest in (down, broken):
        done = await deliver(GOOD, ingest=ingest.ingest, mailbox="m", max_size=4096)
        assert done.code == EX_TEMPFAIL, done


async def test_an_oversized_mail_goes_to_the_ingest_cut_at_max_size_plus_one() -> None:
    ingest = StandIn()
    stream = io.BytesIO(GOOD + b"x" * 10_000)
    raw, total = read_bounded(stream, 2048)
    done = await deliver(raw, ingest=ingest.ingest, mailbox="m", max_size=2048)
    assert (len(raw), total, stream.read()) == (2049, len(GOOD) + 10_000, b"")
    assert done.code == EX_OK
    assert ingest.calls[0][0] == 2049
