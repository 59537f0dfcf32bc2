"""The web console in a real browser (Debian's Chromium via Playwright) over ``nms run``.

One ``nms run`` over the simulated lab serves both tests (module fixtures): the
incident's whole life as the engineer and the customer see it, then bad input. The
timers are compressed (``nms_process.FAST``; the P1 monitoring window is seconds),
the accounts are made with ``nms user create``, and the screenshots of the queue,
case, portal case and NOC board pages are written to ``docs/screenshots/`` on every
run (the README shows them; CI keeps the folder).
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from nms.lab import LabFleet
from tests.conftest import require_root
from tests.nms.app.browser import (
    PASSWORD,
    Recorder,
    launch_chromium,
    make_users,
    new_context,
    screenshot,
    set_password,
    sign_in,
)
from tests.nms.nms_process import NmsProcess, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]

WINDOW = 12  # seconds of P1 monitoring window (24 h in production)
ENGINEER = "eng@noc.example"
SECOND_ENGINEER = "eng2@noc.example"  # the bad-input test changes its password
CUSTOMER = "contact@cust1.example"
PUBLIC_REPLY = "We see your line down and are on it."
INTERNAL_NOTE = "Supplier ticket 4711 - do not tell the customer yet."
COMMITMENT = "Next update from the field engineer"
LIVE_WITHIN = 6.0  # seconds from the case's creation to it showing, without a reload


@dataclass
class Console:
    nms: NmsProcess
    fleet: LabFleet
    down_address: str
    other_ref: str


def _inventory(path: Path, fleet: LabFleet) -> None:
    first, second = fleet.addresses[:2]
    path.write_text(
        f"""\
customers:
  - {{id: cust1, name: Customer One}}
  - {{id: cust2, name: Customer Two}}
ntus:
  - {{id: ntu-000, customer: cust1, service_id: SVC-000, site: "Site 0", address: "{first}"}}
  - {{id: ntu-001, customer: cust2, service_id: SVC-001, site: "Site 1", address: "{second}"}}
""",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    require_root()
    workdir = tmp_path_factory.mktemp("console")
    fleet = LabFleet(hosts=1, ntus_per_host=2)
    fleet.up()
    try:
        inventory = workdir / "inventory.yaml"
        _inventory(inventory, fleet)
        nms = NmsProcess(
            workdir=workdir,
            inventory=inventory,
            database=workdir / "nms.db",
            env={
                "NMS_CASES__TICKER_INTERVAL": "500ms",
                "NMS_CASES__MONITORING_WINDOW__P1": f"{WINDOW}s",
                "NMS_BOARD__EVENTS_POLL": "500ms",
                "NMS_BOARD__GRAFANA_URL": "http://127.0.0.1:3000",
            },
        )
        nms.start()
        try:
            # The API key (for the other customer's case) while the accounts are made.
            keyed = threading.Thread(target=lambda: nms.key, name="api-key")
            keyed.start()
            make_users(
                nms,
                [
                    (ENGINEER, "engineer", None),
                    (SECOND_ENGINEER, "engineer", None),
                    (CUSTOMER, "customer", "cust1"),
                ],
            )
            keyed.join()
            other = nms.call(
                "POST",
                "/v1/cases",
                json={"type": "general_request", "summary": "Cust2's question",
                      "customer_id": "cust2", "priority": "P3", "subject": "other"},
            )  # fmt: skip
            assert other.status_code == 201, other.text
            yield Console(nms, fleet, str(fleet.addresses[0]), other.json()["ref"])
        finally:
            if nms.proc is not None and nms.proc.poll() is None:
                assert nms.stop() == 0, nms.log()
    finally:
        fleet.down()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        try:
            yield launched
        finally:
            launched.close()


def _no_traceback(page: Page) -> None:
    assert "Traceback" not in page.content()


def _status(page: Page) -> str:
    return page.locator('[data-test="case-status"]').first.inner_text().strip().lower()


def _reload_until(page: Page, what: str, check: object, timeout: float) -> None:
    def probe() -> bool:
        page.reload()
        return bool(check())  # type: ignore[operator]

    wait_for(what, probe, timeout=timeout, interval=0.5)


def test_an_outage_from_detection_to_closure_in_the_browser(
    console: Console, browser: Browser
) -> None:
    nms, base = console.nms, console.nms.url
    engineer = new_context(browser, base)
    staff_seen = Recorder()
    staff_seen.attach(engineer)
    queue = engineer.new_page()
    # Asked for the queue, sent to the login, and back to the queue.
    queue.goto("/cases?queue=unassigned")
    expect(queue).to_have_url(re.compile(r"/login\?next="))
    sign_in(queue, ENGINEER)
    expect(queue).to_have_url(re.compile(r"/cases\?queue=unassigned$"))
    board = engineer.new_page()
    board.goto("/noc")
    nms.wait_status("ntu-000", "up", timeout=20)
    expect(board.locator('[data-test="count-up"] .number')).to_have_text("2", timeout=10_000)
    for page in (queue, board):
        page.evaluate("window.__notReloaded = true")

    # The NTU goes down: the P1 shows on the board and in the queue by itself.
    console.fleet.drop_address(console.down_address)
    case = wait_for("the P1", lambda: nms.cases(priority="P1"), timeout=30)[0]
    ref = case["ref"]
    opened = datetime.fromisoformat(case["created_at"])
    board.locator(f'[data-test="noc-case"][data-ref="{ref}"]').wait_for(timeout=LIVE_WITHIN * 1000)
    queue.locator(f'[data-test="case-row"][data-ref="{ref}"]').wait_for(timeout=LIVE_WITHIN * 1000)
    shown_after = datetime.now(UTC) - opened
    assert shown_after < timedelta(seconds=LIVE_WITHIN), shown_after
    for page in (queue, board):
        assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
    expect(board.locator('[data-test="count-down"] .number')).to_have_text("1")
    expect(board.locator('[data-test="shard"]')).to_contain_text("up")  # nms run's probes
    screenshot(board, "noc-board")
    screenshot(queue, "queue")

    # The engineer takes it, answers, notes, commits.
    queue.locator(f'[data-test="case-row"][data-ref="{ref}"] a').first.click()
    expect(queue).to_have_url(re.compile(f"/cases/{ref}$"))
    page = queue
    page.get_by_role("button", name="Take", exact=True).click()
    page.get_by_label("Message").fill(PUBLIC_REPLY)
    page.get_by_role("button", name="Post public reply").click()
    page.get_by_label("Message").fill(INTERNAL_NOTE)
    page.get_by_role("button", name="Add internal note").click()
    form = page.locator('[data-test="commitment-form"]')
    form.get_by_label("Description").fill(COMMITMENT)
    due = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    form.locator('input[name="due"]').fill(due)
    form.get_by_role("button", name="Set commitment").click()
    timeline = page.locator('[data-test="timeline"]')
    expect(timeline).to_contain_text(PUBLIC_REPLY)
    expect(timeline.locator(".internal", has_text=INTERNAL_NOTE)).to_have_count(1)
    expect(timeline.locator(".internal", has_text=INTERNAL_NOTE)).to_contain_text("Internal note")
    _no_traceback(page)
    screenshot(page, "case")

    # The customer's contact, in a browser of their own.
    customer = new_context(browser, base)
    seen = Recorder()
    seen.attach(customer)
    mine = customer.new_page()
    mine.goto(f"/portal/cases/{ref}")
    sign_in(mine, CUSTOMER)
    expect(mine).to_have_url(re.compile(f"/portal/cases/{ref}$"))
    expect(mine.locator('[data-test="timeline"]')).to_contain_text(PUBLIC_REPLY)
    expect(mine.locator('[data-test="commitment"]')).to_contain_text(COMMITMENT)
    assert INTERNAL_NOTE not in mine.content()
    screenshot(mine, "portal-case")
    # Another customer's case is the page of a case that does not exist.
    others = mine.goto(f"/portal/cases/{console.other_ref}")
    assert others is not None and others.status == 404
    theirs = mine.content()
    missing = mine.goto("/portal/cases/CS-1999-999999")
    assert missing is not None and missing.status == 404
    assert "does not exist" in theirs and console.other_ref not in theirs.split("<main", 1)[1]

    # The NTU recovers: solved, with its monitoring window.
    console.fleet.restore_address(console.down_address)
    _reload_until(page, "the case solved", lambda: _status(page) == "solved", timeout=30)
    expect(page.locator('[data-test="monitoring-window"]')).to_be_visible()
    # The engineer completes and publishes the RFO.
    editor = page.locator('[data-test="rfo-editor"]')
    category = editor.locator('select[name="root_cause_category"]')
    category.select_option(index=1)
    editor.get_by_label("Root cause", exact=True).fill("Fibre cut by road works.")
    editor.get_by_label("Corrective actions").fill("The supplier spliced the fibre.")
    editor.get_by_label("Preventive actions").fill("Route diversity on the access.")
    editor.get_by_role("button", name="Save draft").click()
    page.locator('[data-test="rfo-editor"]').get_by_role("button", name="Publish RFO").click()
    _no_traceback(page)
    errors = page.locator('[data-test="form-error"]')
    assert errors.count() == 0, errors.first.inner_text()

    # The customer reads and downloads it.
    mine.goto(f"/portal/cases/{ref}")
    expect(mine.locator('[data-test="monitoring-window"]')).to_be_visible()
    link = mine.get_by_role("link", name="Download RFO (PDF)")
    with mine.expect_download() as download_info:
        link.click()
    pdf = Path(download_info.value.path())
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    assert ref in text.stdout
    mine.goto(f"/portal/cases/{ref}/rfo")
    expect(mine.locator('[data-test="rfo"]')).to_contain_text("Fibre cut")

    # After the window: closed.
    mine.goto(f"/portal/cases/{ref}")
    _reload_until(mine, "the case closed", lambda: "closed" in _status(mine), timeout=WINDOW + 20)

    # Nothing internal reached the customer's browser, in any response.
    bodies = seen.bodies
    assert len(bodies) > 5
    for url, _code, body in bodies:
        assert INTERNAL_NOTE not in body, url
        assert "Traceback" not in body, url
    # And no page or fragment the engineer's browser got showed a traceback either.
    assert staff_seen.bodies and not [u for u, _, b in staff_seen.bodies if "Traceback" in b]
    engineer.close()
    customer.close()


def test_bad_input_in_the_browser(console: Console, browser: Browser) -> None:
    nms, base = console.nms, console.nms.url
    seen = Recorder()
    visitor = new_context(browser, base)
    seen.attach(visitor)
    page = visitor.new_page()
    # A wrong password, then the backoff.
    page.goto("/login")
    # Per account: 5 a minute by default (api.rate_limits.login_failures_per_account),
    # whether the account exists or not.
    sign_in(page, "nobody@noc.example", "not-the-password")
    expect(page.locator('[data-test="login-error"]')).to_be_visible()
    messages = []
    for _ in range(6):
        sign_in(page, "nobody@noc.example", "not-the-password")
        messages.append(page.locator('[data-test="login-error"]').inner_text())
        if "Too many attempts" in messages[-1]:
            break
    assert "Too many attempts" in messages[-1], messages
    _no_traceback(page)
    visitor.close()

    # A session ended elsewhere: the login, then back to the page asked for.
    engineer = new_context(browser, base)
    seen.attach(engineer)
    page = engineer.new_page()
    page.goto("/noc")
    sign_in(page, SECOND_ENGINEER)
    expect(page).to_have_url(re.compile("/noc$"))
    set_password(nms, SECOND_ENGINEER, PASSWORD + "-new")  # ends the account's sessions
    page.goto(f"/cases?queue=all&q={console.other_ref}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    sign_in(page, SECOND_ENGINEER, PASSWORD + "-new")
    expect(page).to_have_url(re.compile(rf"/cases\?queue=all&q={console.other_ref}$"))

    # Forms without or with a wrong CSRF token: 403, nothing changed.
    ref = console.other_ref
    page.goto(f"/cases/{ref}")
    before = nms.get(f"/v1/cases/{ref}")["version"]
    url = f"{base}/cases/{ref}/comment"
    missing = page.request.post(
        url, form={"body": "forged", "visibility": "public"}, max_redirects=0
    )
    wrong = page.request.post(
        url,
        form={"body": "forged", "visibility": "public", "csrf_token": "x" * 43},
        max_redirects=0,
    )
    assert (missing.status, wrong.status) == (403, 403), (missing.headers, wrong.headers)
    assert "Traceback" not in missing.text()
    page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'forged')"
    )
    page.get_by_role("button", name="Take", exact=True).click()
    assert page.locator("h1").first.inner_text().startswith("403")
    assert nms.get(f"/v1/cases/{ref}")["version"] == before
    assert all(c["body"] != "forged" for c in nms.get(f"/v1/cases/{ref}/comments")["data"])

    # A reply over the size limit: the error, the text kept.
    page.goto(f"/cases/{ref}")
    long = "long " * 4100 + "end"
    page.get_by_label("Message").fill(long)
    page.get_by_role("button", name="Post public reply").click()
    expect(page.locator('[role="alert"]').first).to_contain_text("20000 characters")
    assert page.get_by_label("Message").input_value().endswith("end")

    # A planned maintenance with two days' notice: the rule, on the form.
    page.goto("/maintenance/new")
    soon = datetime.now(UTC) + timedelta(days=2)
    page.locator('input[name="title"]').fill("Router swap")
    page.locator('select[name="kind"]').select_option("planned")
    page.locator('input[name="starts_at"]').fill(soon.strftime("%Y-%m-%dT%H:%M"))
    page.locator('input[name="ends_at"]').fill(
        (soon + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    )
    page.locator('input[name="scope_ntus"]').fill("ntu-001")
    page.get_by_role("button", name="Announce").click()
    expect(page.locator('[role="alert"]').first).to_contain_text("14 days")
    _no_traceback(page)
    assert httpx.get(base + "/healthz", timeout=5).status_code == 200
    engineer.close()
    # No page the browsers got - refusals, errors, the login - showed a traceback.
    assert seen.bodies and not [url for url, _, body in seen.bodies if "Traceback" in body]
