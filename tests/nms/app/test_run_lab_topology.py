"""End to end: an upstream node and 50 NTUs behind it, through ``nms run`` over the lab.

The node is the lab host's first address and the 50 NTUs (of 50 customers) its other
addresses; ``link_down`` takes them all down in the same probe cycle. Time is
compressed as in ``test_run_lab`` (``down_after`` 4 s, 1 s probe interval).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from nms.lab import LabFleet
from tests.caseapi.rfo_checks import assert_rfo_tells_the_case
from tests.lab_fixtures import LabFleetFactory, lab_fleet  # noqa: F401 - fixture
from tests.nms.nms_process import NmsProcess, running, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]

DOWN_AFTER = 4.0
NTUS = 50
CUSTOMERS = NTUS  # one NTU per customer: 50 linked customer cases, as the issue asks


@pytest.fixture
def fleet(lab_fleet: LabFleetFactory) -> LabFleet:  # noqa: F811
    return lab_fleet(hosts=1, ntus_per_host=NTUS + 1)


@pytest.fixture
def nms(tmp_path: Path, fleet: LabFleet) -> NmsProcess:
    node, *ntus = fleet.addresses
    lines = ["customers:"]
    lines += [f"  - {{id: c{i}, name: Customer {i}}}" for i in range(CUSTOMERS)]
    lines += ["nodes:", f'  - {{id: pop1, kind: pop, address: "{node}"}}', "ntus:"]
    lines += [
        f'  - {{id: ntu-{i:03d}, customer: c{i % CUSTOMERS}, address: "{a}", parent: pop1}}'
        for i, a in enumerate(ntus)
    ]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("\n".join(lines) + "\n")
    return NmsProcess(workdir=tmp_path, inventory=inventory, database=tmp_path / "nms.db")


def _split(cases: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    parents = [c for c in cases if c["dedup_key"] == "node:pop1:down"]
    return parents, [c for c in cases if c not in parents]


def test_node_down_opens_one_upstream_case_and_linked_customer_cases(
    fleet: LabFleet, nms: NmsProcess
) -> None:
    ids = [f"ntu-{i:03d}" for i in range(NTUS)]
    with running(nms):
        for ntu_id in ids:
            nms.wait_status(ntu_id, "up", timeout=20)
        fleet.link_down(fleet.hosts[0])
        cases = wait_for(
            "the upstream case and its linked cases",
            lambda: c if len(c := nms.cases()) >= 1 + CUSTOMERS else None,
            timeout=DOWN_AFTER + 10,
        )
        time.sleep(2)  # a few more cycles: nothing more opens
        cases = nms.cases()
        parents, linked = _split(cases)
        assert len(parents) == 1
        assert len(linked) == CUSTOMERS  # no unlinked P1 for any of the 50 NTUs
        parent = nms.get(f"/v1/cases/{parents[0]['ref']}")
        assert parent["customer_id"] is None
        assert len(parent["affected"]) == NTUS
        assert sorted(parent["linked"]) == sorted(c["ref"] for c in linked)
        for case in linked:
            assert nms.get(f"/v1/cases/{case['ref']}")["parent"] == parent["ref"]
        assert {c["customer_id"] for c in linked} == {f"c{i}" for i in range(CUSTOMERS)}
        assert nms.status("ntu-000")["status"] == "unreachable"

        # One NTU stays down after the node comes back: its own P1 after down_after.
        # The address goes before the link comes back: a probe in between would see
        # ntu-000 up (no case of its own: straight to up), and its P1 would lose the
        # parent the test expects.
        fleet.drop_address(fleet.addresses[1])  # ntu-000
        fleet.link_up(fleet.hosts[0])
        wait_for(
            "the upstream and linked cases solved",
            lambda: all(c["status"] == "solved" for c in nms.cases()),
            timeout=15,
        )
        own = wait_for(
            "ntu-000's own case",
            lambda: [c for c in nms.cases() if c["dedup_key"] == "ntu:ntu-000:down"],
            timeout=DOWN_AFTER + 10,
        )[0]
        assert nms.get(f"/v1/cases/{own['ref']}")["parent"] == parent["ref"]
        assert own["status"] == "new"
        assert len(nms.cases()) == 2 + CUSTOMERS
        fleet.restore_address(fleet.addresses[1])
        wait_for(
            "everything solved",
            lambda: all(c["status"] == "solved" for c in nms.cases()),
            timeout=15,
        )
        # The incident's RFO reaches every linked customer, each seeing only its own.
        cause = {
            "root_cause_category": "hardware",
            "root_cause": "The line card of pop1 failed.",
            "corrective_actions": "The line card was replaced.",
            "preventive_actions": "Spare line cards are kept at the PoP.",
        }
        assert nms.call("PUT", f"/v1/cases/{parent['ref']}/rfo", json=cause).is_success
        published = nms.call("POST", f"/v1/cases/{parent['ref']}/rfo/publish")
        assert published.status_code == 200, published.text
        by_customer = {c["customer_id"]: c["ref"] for c in linked}
        for customer, other in (("c1", "c2"), ("c2", "c1")):
            key = nms.make_key("customer", customer)
            ref = by_customer[customer]
            rfo = nms.call("GET", f"/v1/cases/{ref}/rfo", key=key).json()
            assert (rfo["status"], rfo["root_cause"]) == ("published", cause["root_cause"])
            assert rfo["facts"]["incident_ref"] == parent["ref"]
            markdown = nms.call("GET", f"/v1/cases/{ref}/rfo?format=md", key=key).text
            case = nms.call("GET", f"/v1/cases/{ref}", key=key).json()
            assert_rfo_tells_the_case(case, rfo, markdown)
            theirs = by_customer[other]
            assert theirs not in str(rfo) and theirs not in markdown
            assert nms.call("GET", f"/v1/cases/{theirs}/rfo", key=key).status_code == 404
