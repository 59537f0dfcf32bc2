"""Which text that staff write do customers see? Every free-text field says so.

Each free-text field of a request body (a string of 200 characters or more, or a
list of them) carries ``x-customer-visible`` in the OpenAPI document: ``true`` (with
where the customer sees it, verbatim) or ``false``. The customer-visible ones are
pinned here, so a new field needs a decision and a line in README's table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from fastapi import FastAPI

from caseapi.api.app import create_app
from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.core.wire import CUSTOMER_VISIBLE

#: (request schema, field) that customers see verbatim; README "Who sees what".
CUSTOMER_VISIBLE_FIELDS: Final = {
    ("CancelRequest", "reason"),
    ("CaseCreate", "description"),
    ("CaseCreate", "site"),
    ("CaseCreate", "summary"),
    ("CaseUpdate", "reason"),
    ("ClassificationRequest", "reason"),
    ("CommentCreate", "body"),
    ("CommitmentCreate", "note"),
    ("EtrRequest", "note"),
    ("MaintenanceComplete", "actual_impact"),
    ("MaintenanceCreate", "description"),
    ("MaintenanceCreate", "title"),
    ("MaintenanceUpdate", "actual_impact"),
    ("MaintenanceUpdate", "description"),
    ("MaintenanceUpdate", "title"),
    ("ReasonRequest", "reason"),
    ("ReplyCreate", "body"),
    ("ReplyUpdate", "body"),
    ("RfoUpdate", "corrective_actions"),
    ("RfoUpdate", "preventive_actions"),
    ("RfoUpdate", "preventive_not_applicable"),
    ("RfoUpdate", "root_cause"),
    ("TransitionRequest", "reason"),
    ("TransitionRequest", "resolution"),
    ("TransitionRequest", "resolution_method"),
    ("WebhookCreate", "description"),
    ("WebhookUpdate", "description"),
}
#: Shorter strings are names, ids and references, not prose.
FREE_TEXT_LENGTH: Final = 200


def _document(tmp_path: Any) -> dict[str, Any]:
    # The document needs no database; the app only wants a session factory.
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    app: FastAPI = create_app(sessionmaker=make_sessionmaker(engine))
    return app.openapi()


def _refs(schema: dict[str, Any]) -> Iterator[str]:
    if "$ref" in schema:
        yield schema["$ref"].rsplit("/", 1)[-1]
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from _refs(option)
    if "items" in schema:
        yield from _refs(schema["items"])
    for value in schema.get("properties", {}).values():
        yield from _refs(value)


def request_schemas(document: dict[str, Any]) -> set[str]:
    """Every component schema a request body uses, nested ones too."""
    components = document["components"]["schemas"]
    pending = [
        name
        for item in document["paths"].values()
        for operation in item.values()
        for content in operation.get("requestBody", {}).get("content", {}).values()
        for name in _refs(content["schema"])
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_refs(components[name]))
    return seen


def _is_free_text(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    for option in options:
        if option.get("type") == "array":
            option = option.get("items", {})
        if (
            option.get("type") == "string"
            and "enum" not in option
            and "format" not in option
            and option.get("maxLength", FREE_TEXT_LENGTH) >= FREE_TEXT_LENGTH
        ):
            return True
    return False


def test_every_free_text_field_says_whether_customers_see_it(tmp_path: Any) -> None:
    document = _document(tmp_path)
    components = document["components"]["schemas"]
    undecided = sorted(
        f"{name}.{field}"
        for name in request_schemas(document)
        for field, schema in components[name].get("properties", {}).items()
        if _is_free_text(schema) and CUSTOMER_VISIBLE not in schema
    )
    assert not undecided, f"mark each with shown_to_customers() or internal(): {undecided}"


def test_the_customer_visible_fields_are_the_pinned_ones(tmp_path: Any) -> None:
    components = _document(tmp_path)["components"]["schemas"]
    visible = {
        (name, field)
        for name, component in components.items()
        for field, schema in component.get("properties", {}).items()
        if schema.get(CUSTOMER_VISIBLE) is True
    }
    assert visible == CUSTOMER_VISIBLE_FIELDS
    for name, field in visible:
        description = components[name]["properties"][field]["description"]
        assert description.startswith("Customer-visible, verbatim: "), (name, field)
