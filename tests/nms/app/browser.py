"""Browser-test harness: Debian's Chromium through Playwright, over ``nms run``.

- ``launch_chromium``: ``/usr/bin/chromium`` (installed by scripts/setup; never a
  downloaded browser), headless, ``--no-sandbox`` only when running as root.
- ``ConsoleRun``: one ``nms run`` over the lab with console users made by
  ``nms user create``, compressed timers, and a short P1 monitoring window.
- ``Recorder``: every response a browser context received, with its body, so a test
  can assert on what reached a customer's browser, not only on what was rendered.
- ``screenshot``: a page at 1280x800 into ``docs/screenshots/`` (CI keeps the folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response

from tests.nms.nms_process import NmsProcess

CHROMIUM: Final = Path("/usr/bin/chromium")
VIEWPORT: Final = {"width": 1280, "height": 800}
SCREENSHOTS: Final = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PASSWORD: Final = "lab-console-password-1"


def launch_chromium(playwright: object) -> Browser:
    """Debian's Chromium, headless (a missing package is a failure under CI)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs the chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium, or scripts/setup)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses root otherwise
    browser: Browser = playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=str(CHROMIUM), headless=True, args=args
    )
    return browser


def new_context(browser: Browser, base_url: str) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, timezone_id="UTC")  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context


def make_users(
    nms: NmsProcess, users: list[tuple[str, str, str | None]], *, password: str = PASSWORD
) -> None:
    """Console accounts ``(email, role, customer)`` made with ``nms user create`` (the
    password on stdin), all at once: each command is a Python start-up of its own."""
    runs = []
    for email, role, customer in users:
        command = [
            sys.executable, "-m", "nms.app.cli", "user", "create",
            "--email", email, "--name", email.split("@")[0], "--role", role,
            *(["--customer", customer] if customer else []),
            "--password-stdin", "--database", f"sqlite+aiosqlite:///{nms.database}",
        ]  # fmt: skip
        runs.append(
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=nms.workdir,
            )
        )
    for run in runs:
        _, err = run.communicate(password + "\n", timeout=60)
        assert run.returncode == 0, err


def set_password(nms: NmsProcess, email: str, password: str) -> None:
    """``nms user passwd`` (which also ends every session of the account)."""
    done = subprocess.run(
        [
            sys.executable, "-m", "nms.app.cli", "user", "passwd", email,
            "--password-stdin", "--database", f"sqlite+aiosqlite:///{nms.database}",
        ],
        input=password + "\n", capture_output=True, text=True, timeout=60, cwd=nms.workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Fill the login form the page is on and submit it."""
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@dataclass
class Recorder:
    """Every response a browser context received, with its body, read as it arrives
    (a page that navigated on may no longer hold the bodies of its past responses)."""

    bodies: list[tuple[str, int, str]] = field(default_factory=list)
    #: Responses without a body to read: redirects, the event stream (never ends).
    skipped: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        def record(response: Response) -> None:
            kind = response.headers.get("content-type", "")
            if 300 <= response.status < 400 or kind.startswith("text/event-stream"):
                self.skipped.append(response.url)
                return
            body = response.body()
            self.bodies.append((response.url, response.status, body.decode("utf-8", "replace")))

        context.on("response", record)


def screenshot(page: Page, name: str) -> Path:
    """``docs/screenshots/<name>.png`` of what ``page`` shows at 1280x800."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    page.evaluate("window.scrollTo(0, 0)")  # the page's head, whatever a click scrolled to
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")
    return path
