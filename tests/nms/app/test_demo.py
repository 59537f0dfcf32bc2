"""``nms demo`` plays its scenario to the end; the cases it reports are in the API."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nms.app import demo
from tests.conftest import require_root
from tests.nms.nms_process import NmsProcess, running


def test_without_root_it_says_so_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    parser = argparse.ArgumentParser()
    demo.add_demo_command(parser.add_subparsers(dest="command"))
    assert demo.run_demo(parser.parse_args(["demo", "--fast"])) == 2
    assert "needs root" in capsys.readouterr().err


def test_paces_compress_time_into_settings_nms_accepts():
    from nms.app.settings import load_settings

    for pace in (demo.DEFAULT, demo.FAST):
        env = pace.env()
        assert env["NMS_DETECTOR__DOWN_AFTER"] == pace.down_after
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            settings = load_settings(None)
        assert settings.detector.down_after.total_seconds() < 60


@pytest.mark.lab
@pytest.mark.slow
def test_the_demo_runs_to_the_end_and_its_cases_are_in_the_api(tmp_path: Path):
    require_root()
    workdir = tmp_path / "demo"
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "nms.app.demo", "--fast", "--workdir", str(workdir),
         "--report", str(report)],
        capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in ("P1", "opened", "solved", "monitoring window", "RFO", "closed", "Lab torn down"):
        assert step in out, out
    assert str(workdir / "nms.db") in out

    data = json.loads(report.read_text())
    by_priority = {c["priority"]: c for c in data["cases"]}
    assert set(by_priority) == {"P1", "P2"}, data
    assert by_priority["P1"]["ntu_id"] == "ntu-0"
    assert by_priority["P2"]["ntu_id"] == "ntu-1"

    # The demo's database, served again (no probes: the lab is gone), agrees.
    nms = NmsProcess(
        workdir=workdir,
        inventory=Path(data["inventory"]),
        database=Path(data["database"]),
        env={"NMS_PROBES__ICMP__ENABLED": "false", "NMS_PROBES__SNMP__ENABLED": "false"},
    )
    with running(nms):
        for priority, reported in by_priority.items():
            case = nms.get(f"/v1/cases/{reported['ref']}")
            assert case["priority"] == priority
            assert case["status"] == "closed", case
            assert case["restored_at"] is not None
            assert case["rfo_published_at"] is not None
            rfo = nms.get(f"/v1/cases/{reported['ref']}/rfo")
            assert rfo["status"] == "published"
            assert rfo["root_cause"]
        p1 = nms.get(f"/v1/cases/{by_priority['P1']['ref']}")
        assert p1["first_responded_at"] is not None  # the engineer answered in public
        assert len(nms.cases()) == 2
        # What the demo printed is what the database and /metrics said.
        p2 = nms.get(f"/v1/cases/{by_priority['P2']['ref']}")
        assert f"P2 {p2['ref']} opened: {p2['summary']}" in out
        assert f"drops {demo.LOSS_PERCENT} % of the echoes" in out
        assert 'nms_detector_cases_opened_total{priority="P1"} 1.0' in out
        assert 'nms_detection_latency_seconds_count{priority="P1"} 1.0' in out
        # The counters count openings: on a loaded machine late echoes can look like
        # loss again inside the P2's monitoring window and reopen the same case.
        for family in ("nms_detector_cases_opened_total", "nms_detection_latency_seconds_count"):
            assert re.search(family + r'\{priority="P2"\} [1-9]', out), out
        rfo = nms.get(f"/v1/cases/{p1['ref']}/rfo")
        assert rfo["root_cause"] in out
    # Nothing printed at the end points at a URL that is gone with the demo.
    tail = out.split("The published RFO of", 1)[1]
    assert "http://" not in tail
    assert "--keep" in tail
