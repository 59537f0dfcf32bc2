"""The ``mail.*`` settings: the support mailbox, who is staff, templates and limits.

The mailbox address is what every mail we send answers to (``Reply-To``) and marks
itself with (``X-Loop``); staff addresses and domains tell the mail ingest that a
mail comes from us, not from a customer; ``templates_dir`` holds the provider's
edited copies of the customer mail templates (``caseapi.notifications.templating``),
checked when the settings load.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from pydantic import ByteSize, Field, field_validator, model_validator

from caseapi.core.config import Section
from caseapi.customers.contacts import check_email
from caseapi.mail.imap_config import ImapSettings
from caseapi.notifications.templating import TemplateError, TemplateSet, load_templates

#: A mail above this is refused unread (ingest), 10 MiB by default.
DEFAULT_MAX_SIZE: Final = 10 * 1024 * 1024
_RATE: Final = re.compile(r"^\s*([1-9][0-9]{0,6})\s*(?:/|per)\s*(second|minute|hour|day)s?\s*$")
_DOMAIN: Final = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class MailSettings(Section):
    """E-mail with customers (``mail.*``)."""

    address: str = "support@localhost"
    """The support mailbox: ``Reply-To`` and ``X-Loop`` of every mail we send."""
    name: str = Field(default="Support", min_length=1, max_length=200)
    """The display name that goes with ``address``."""
    staff_addresses: list[str] = Field(default_factory=list)
    """Addresses of staff: their mails are never taken for a customer's."""
    staff_domains: list[str] = Field(default_factory=list)
    """Domains whose every address is staff (``example.net``)."""
    templates_dir: Path | None = None
    """Folder of edited templates, ``<language>/<kind>.txt`` (each replaces the shipped one)."""
    max_size: ByteSize = Field(default=ByteSize(DEFAULT_MAX_SIZE), ge=1024, le=2**30)
    """Incoming mails above this size (``10MiB``, bytes) are refused."""
    rate_limit: str = "20/hour"
    """Incoming mails per sender (``N/second|minute|hour|day``); more are held."""
    imap: ImapSettings = ImapSettings()
    """The mailbox ``nms run`` / ``nms detector`` read (off until ``imap.host`` is set)."""

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        return check_email(value)

    @field_validator("staff_addresses")
    @classmethod
    def _check_staff(cls, values: list[str]) -> list[str]:
        return sorted({check_email(value) for value in values})

    @field_validator("staff_domains")
    @classmethod
    def _check_domains(cls, values: list[str]) -> list[str]:
        domains = set()
        for value in values:
            domain = value.strip().lower().removeprefix("@")
            if not _DOMAIN.match(domain):
                raise ValueError(f"{value[:80]!r} is not a domain such as example.net")
            domains.add(domain)
        return sorted(domains)

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        if not _RATE.match(value):
            raise ValueError(
                f"{value[:40]!r} is not a rate such as 20/hour (per second|minute|hour|day)"
            )
        return value.strip()

    @model_validator(mode="after")
    def _check_templates(self) -> MailSettings:
        # Loaded now so that a broken file stops the start with its path.
        self.templates()
        return self

    def rate(self) -> tuple[int, str]:
        """``rate_limit`` as ``(count, unit)``: ``(20, "hour")``."""
        match = _RATE.match(self.rate_limit)
        assert match is not None  # checked at validation
        return int(match.group(1)), match.group(2)

    def templates(self) -> TemplateSet:
        """The customer mail templates (shipped, with ``templates_dir``'s copies).

        Raises:
            ValueError: A broken template file (the message names it).
        """
        try:
            return load_templates(self.templates_dir)
        except TemplateError as exc:
            raise ValueError(f"templates_dir: {exc}") from None

    def is_staff(self, address: str) -> bool:
        """Whether ``address`` is staff (listed, or in a staff domain)."""
        key = address.strip().lower()
        return key in self.staff_addresses or key.rpartition("@")[2] in self.staff_domains
