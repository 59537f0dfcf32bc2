"""Every console page is usable with a keyboard and a screen reader, and obeys the CSP.

Checked on the rendered HTML of each page, as each kind of person sees it: every form
field has a label (``<label for>``, an enclosing ``<label>`` or ``aria-label``), every
button says what it does, the page has a language and one ``<h1>``, and nothing
relies on what the Content-Security-Policy blocks (inline ``<script>`` code, ``style``
attributes, ``on...`` handlers, ``javascript:`` links).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx
from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from tests.caseapi.web.pages import anonymous, login_as
from tests.caseapi.web.workspace_fixtures import open_case

FIELDS = frozenset({"input", "select", "textarea"})
UNLABELLED_INPUTS = frozenset({"hidden", "submit", "button", "reset", "image"})


@dataclass
class _Page(HTMLParser):
    labelled_ids: set[str] = field(default_factory=set)
    fields: list[tuple[str, dict[str, str], bool]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    h1: int = 0
    lang: str | None = None
    _label_depth: int = 0
    _button: dict[str, str] | None = None
    _button_text: str = ""
    _script_open: bool = False

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "h1":
            self.h1 += 1
        if tag == "label":
            self._label_depth += 1
            if values.get("for"):
                self.labelled_ids.add(values["for"])
        if tag in FIELDS:
            self.fields.append((tag, values, self._label_depth > 0))
        if tag == "button":
            self._button, self._button_text = values, ""
        if tag == "script":
            self._script_open = True
            if not values.get("src"):
                self.problems.append("an inline <script> (blocked by the CSP)")
        if "style" in values:
            self.problems.append(f"a style attribute on <{tag}> (blocked by the CSP)")
        for name, value in values.items():
            if name.startswith("on"):
                self.problems.append(f"an inline {name} handler on <{tag}>")
            if name in ("href", "action", "formaction") and value.lower().startswith("javascript:"):
                self.problems.append(f"a javascript: URL on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1
        if tag == "script":
            self._script_open = False
        if tag == "button" and self._button is not None:
            if not (self._button_text.strip() or self._button.get("aria-label")):
                self.problems.append("a button without text or aria-label")
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button_text += data

    def check(self) -> list[str]:
        problems = list(self.problems)
        if not self.lang:
            problems.append("<html> without lang")
        if self.h1 != 1:
            problems.append(f"{self.h1} <h1> elements (one expected)")
        for tag, attrs, enclosed in self.fields:
            if tag == "input" and attrs.get("type", "text") in UNLABELLED_INPUTS:
                continue
            named = attrs.get("id") in self.labelled_ids
            if not (named or enclosed or attrs.get("aria-label") or attrs.get("aria-labelledby")):
                problems.append(f"<{tag} name={attrs.get('name')!r}> without a label")
        return problems


def _problems(html: str) -> list[str]:
    page = _Page()
    page.feed(html)
    page.close()
    return page.check()


async def test_every_page_labels_its_fields_and_obeys_the_csp(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service, customer="cust-1", ntu="ntu-1")
    solved = await open_case(service, customer="cust-1", ntu="ntu-1", summary="Fixed")
    failures: list[str] = []

    async def visit(
        client_get: Callable[[str], Awaitable[httpx.Response]], who: str, paths: list[str]
    ) -> None:
        for path in paths:
            response = await client_get(path)
            assert response.status_code == 200, f"{who} {path}: {response.status_code}"
            failures.extend(f"{who} {path}: {p}" for p in _problems(response.text))

    async with login_as(app, role=Role.ADMIN) as admin:
        await admin.post(
            f"/cases/{solved}/transition",
            {"to": "solved", "resolution_method": "remote", "root_cause_category": "hardware"},
        )
        await visit(
            admin.get,
            "admin",
            [
                "/cases",
                "/cases?queue=all",
                f"/cases/{ref}",
                f"/cases/{solved}",  # with the RFO editor
                "/cases/new",
                "/cases/new?customer=cust-1",
                "/ntus",
                "/ntus/ntu-1",
                "/maintenance",
                "/maintenance/new",
                "/noc",
                "/account",
                "/admin/users",
            ],
        )
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        await visit(
            customer.get,
            "customer",
            [
                "/portal",
                f"/portal/cases/{ref}",
                f"/portal/cases/{solved}",
                "/portal/cases/new",
                "/portal/maintenance",
                "/portal/ntus",
                "/account",
            ],
        )
    async with anonymous(app) as visitor:
        await visit(visitor.get, "visitor", ["/login"])
        missing = await visitor.get("/no/such/page")
        failures.extend(f"visitor 404 page: {p}" for p in _problems(missing.text))
    assert not failures, "\n".join(failures)


def test_the_checker_finds_what_it_looks_for() -> None:
    page = (
        '<html><body><h1>x</h1><input name="a"><button></button>'
        '<p style="color:red" onclick="x()">y</p><script>alert(1)</script>'
        '<label>B <input name="b"></label><label for="c">C</label><input id="c" name="c">'
        "</body></html>"
    )
    assert _problems(page) == [
        "a button without text or aria-label",
        "a style attribute on <p> (blocked by the CSP)",
        "an inline onclick handler on <p>",
        "an inline <script> (blocked by the CSP)",
        "<html> without lang",
        "<input name='a'> without a label",
    ]
