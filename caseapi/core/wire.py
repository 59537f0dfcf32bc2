"""Request field types that take JSON as it is written, without Pydantic's coercions.

Pydantic's lax mode reads ``"true"`` or ``1`` as a boolean, ``"5"`` as an integer and
a number as Unix time; the OpenAPI document promises a boolean, an integer and an
ISO 8601 time. These types accept only what the document says.

Every free-text field a request writes says whether customers ever see it
(``shown_to_customers`` / ``internal``: ``x-customer-visible`` in the OpenAPI).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, BeforeValidator, Field, StrictBool, StrictInt

#: A date and a time of day: what an ISO 8601 / RFC 3339 timestamp starts with.
_ISO_DATE_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def iso_text(value: object) -> object:
    """Refuse anything but ISO 8601 text for a time (a number would mean Unix time).

    A ``datetime`` passes: JSON never makes one, Python callers of the schemas do.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_TIME.match(value):
        raise ValueError("expected an ISO 8601 time with a UTC offset, e.g. 2026-03-01T12:00:00Z")
    return value


#: A time in a JSON body: ISO 8601 text with an offset.
JsonTime = Annotated[AwareDatetime, BeforeValidator(iso_text)]
#: A JSON boolean (``true`` / ``false``), never ``"yes"`` or ``1``.
JsonBool = StrictBool
#: A JSON integer, never ``"5"`` or ``5.0``.
JsonInt = StrictInt

#: The OpenAPI extension that records whether a customer ever sees a text field.
CUSTOMER_VISIBLE: Final = "x-customer-visible"


def shown_to_customers(where: str) -> Any:
    """A field's marker: customers see it, verbatim, ``where`` (goes into its description)."""
    return Field(
        description=f"Customer-visible, verbatim: {where}.",
        json_schema_extra={CUSTOMER_VISIBLE: True},
    )


def internal(why: str) -> Any:
    """A field's marker: customers never see it (``why`` goes into its description)."""
    return Field(
        description=f"Internal, never shown to customers: {why}.",
        json_schema_extra={CUSTOMER_VISIBLE: False},
    )
