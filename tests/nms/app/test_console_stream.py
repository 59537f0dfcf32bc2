"""``/events`` over a real socket from ``nms run``: a change arrives within seconds,
and stopping nms ends the open streams as responses (no cancelled request logged)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.nms.app.browser import PASSWORD, make_users
from tests.nms.nms_process import NmsProcess, write_inventory

pytestmark = pytest.mark.slow


def _sign_in(client: httpx.Client, email: str) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    done = client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": email, "password": PASSWORD, "next": "/noc"},
    )
    assert done.status_code == 303, done.text


def _follow_then_stop(nms: NmsProcess, client: httpx.Client) -> None:
    """Open the stream, create a case, see the change arrive, stop nms: the stream ends."""
    lines: list[tuple[float, str]] = []
    with client.stream("GET", "/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        assert "content-length" not in stream.headers

        def read() -> None:
            for line in stream.iter_lines():
                lines.append((time.monotonic(), line))

        reader = threading.Thread(target=read, name="sse-reader", daemon=True)
        reader.start()
        created = nms.call(
            "POST",
            "/v1/cases",
            json={"type": "general_request", "summary": "A question",
                  "customer_id": "cust1", "priority": "P3", "subject": "other"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        at = time.monotonic()
        while not any(line == "event: change" for _, line in lines):
            assert time.monotonic() < at + 5, lines
            time.sleep(0.05)
        arrived = next(t for t, line in lines if line == "event: change")
        assert arrived - at < 2.0
        assert 'data: {"topics": ["cases"]}' in [line for _, line in lines]
        assert nms.stop() == 0
        reader.join(5)
        assert not reader.is_alive(), "the stream did not end when nms stopped"


def test_a_new_case_reaches_an_open_stream_and_a_stop_ends_it(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    write_inventory(inventory, ["127.0.0.1"])
    nms = NmsProcess(
        workdir=tmp_path,
        inventory=inventory,
        database=tmp_path / "nms.db",
        env={"NMS_BOARD__EVENTS_POLL": "200ms"},
    )
    nms.start()
    try:
        make_users(nms, [("noc@noc.example", "noc", None)])
        with httpx.Client(base_url=nms.url, timeout=10) as client:
            _sign_in(client, "noc@noc.example")
            _follow_then_stop(nms, client)
    finally:
        if nms.proc is not None and nms.proc.poll() is None:
            nms.stop()
    log = nms.log()
    assert "event loop: uvloop" in log  # nms.app.loop: what production runs on
    assert "stopped cleanly" in log
    assert "Traceback" not in log and "ERROR" not in log, log
