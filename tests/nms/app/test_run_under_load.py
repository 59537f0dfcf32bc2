"""End to end: the API and the probe loop share ``nms run``'s event loop; neither
starves the other.

Concurrent clients read the API back to back (as many requests as one process
answers: far more than a NOC, a portal and a Prometheus ask) while a lab NTU goes
down: its P1 still opens within down_after + one probe interval (+ the slack every
lab test allows), no other NTU is judged down, no probe cycle overruns its
interval, and the readers keep getting answers throughout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from nms.lab import LabFleet
from tests.lab_fixtures import LabFleetFactory, lab_fleet  # noqa: F401 - fixture
from tests.nms.app.test_run_lab import ts
from tests.nms.nms_process import NmsProcess, running, wait_for, write_inventory

pytestmark = [pytest.mark.lab, pytest.mark.slow]

DOWN_AFTER = 4.0
INTERVAL = 1.0
SLACK = 1.5  # as in test_run_lab.py: probe time, batching, one tick, HTTP polling
READERS = 8


class Readers:
    """``READERS`` clients reading the API back to back in a thread of their own."""

    def __init__(self, nms: NmsProcess, paths: list[str]) -> None:
        self._nms = nms
        self._paths = paths
        self._stop = threading.Event()
        self.answers: Counter[int] = Counter()
        self.errors: list[str] = []
        #: The longest a reader waited for one answer (seconds).
        self.slowest = 0.0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Readers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self._nms.key}"}
        async with httpx.AsyncClient(base_url=self._nms.url, headers=headers, timeout=30) as http:
            await asyncio.gather(*(self._read(http, n) for n in range(READERS)))

    async def _read(self, http: httpx.AsyncClient, number: int) -> None:
        turn = number
        while not self._stop.is_set():
            path = self._paths[turn % len(self._paths)]
            turn += 1
            started = time.monotonic()
            try:
                response = await http.get(path)
            except httpx.HTTPError as exc:
                self.errors.append(f"{path}: {exc!r}")
                continue
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.answers[response.status_code] += 1


def _overruns(nms: NmsProcess) -> float:
    text = httpx.get(f"{nms.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("nms_probe_cycle_overruns_total")
    )


@pytest.fixture
def fleet(lab_fleet: LabFleetFactory) -> LabFleet:  # noqa: F811
    return lab_fleet(hosts=1, ntus_per_host=4)


def test_api_reads_do_not_delay_detection(tmp_path: Path, fleet: LabFleet) -> None:
    inventory = tmp_path / "inventory.yaml"
    ids = write_inventory(inventory, fleet.addresses)
    nms = NmsProcess(workdir=tmp_path, inventory=inventory, database=tmp_path / "nms.db")
    with running(nms):
        for ntu_id in ids:
            nms.wait_status(ntu_id, "up", timeout=15)
        paths = ["/v1/cases?limit=50", *(f"/v1/ntus/{ntu_id}/status" for ntu_id in ids)]
        overruns_before = _overruns(nms)
        with Readers(nms, paths) as readers:
            time.sleep(2)  # the readers at full speed before the fault
            fault_at = datetime.now(UTC)
            fleet.drop_address(fleet.addresses[1])
            cases = wait_for(
                "the P1", lambda: nms.cases(), timeout=DOWN_AFTER + INTERVAL + SLACK + 10
            )
            # When the detector judged, not when our polling saw it.
            detected_in = (ts(cases[0]["detected_at"]) - fault_at).total_seconds()
            answered = sum(readers.answers.values())
            time.sleep(1)
        assert readers.errors == []
        assert set(readers.answers) == {200}
        # Eight requests always in flight: the API was busy throughout (a few hundred
        # answers a second on an idle machine), each answered within about a probe
        # interval even at the fault.
        assert answered >= 100, readers.answers
        assert readers.slowest < 2.0
        assert detected_in <= DOWN_AFTER + INTERVAL + SLACK, f"P1 after {detected_in:.1f} s"
        assert [(c["ntu_id"], c["priority"]) for c in cases] == [(ids[1], "P1")]
        assert {nms.status(ntu_id)["status"] for ntu_id in ids if ntu_id != ids[1]} == {"up"}
        assert _overruns(nms) == overruns_before
        assert nms.stop() == 0
