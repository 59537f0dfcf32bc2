"""The ``mail.imap.*`` settings: which mailbox the IMAP poller reads, and how.

Composed into ``MailSettings`` as ``imap`` (``caseapi.mail.config``). Nothing polls
while ``host`` is unset. The password is given inline (``password``, may be an
``enc:`` value opened by the settings' secret keys) or as a file (``password_file``,
one line, read at each connection so that a rotated password needs no restart).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from caseapi.core.config import Section
from caseapi.core.durations import Duration, positive

_DEFAULT_PORTS = {"tls": 993, "starttls": 143, "none": 143}


class ImapSettings(Section):
    """The mailbox the mail channel reads (``mail.imap.*``)."""

    host: str | None = None
    """IMAP server; unset: no polling (mail may still come in by ``nms mail deliver``)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 993 with ``security: tls``, 143 otherwise."""
    security: Literal["tls", "starttls", "none"] = "tls"
    """``tls`` (implicit, port 993), ``starttls`` (upgrade on 143) or ``none`` (local only)."""
    ca_file: Path | None = None
    """PEM file of the CAs to trust for the server's certificate (default: the system's)."""
    user: str = ""
    password: SecretStr | None = Field(default=None, repr=False)
    """The password (``enc:...`` accepted); or ``password_file``."""
    password_file: Path | None = None
    """File whose first line is the password (read at every connection)."""
    folder: str = Field(default="INBOX", min_length=1, max_length=200)
    after: Literal["move", "flag"] = "move"
    """After the commit: ``move`` the mail to ``move_to``, or ``flag`` it ``$NmsIngested``."""
    move_to: str = Field(default="Processed", min_length=1, max_length=200)
    poll_interval: Duration = timedelta(seconds=60)
    """Between polls when IDLE is off or unsupported (and the longest IDLE wait)."""
    idle: bool = True
    """Wait with IMAP IDLE where the server supports it (new mail is read at once)."""
    timeout: Duration = timedelta(seconds=30)
    """Each network step (connect, login, one command, one fetch)."""
    max_failures: int = Field(default=5, ge=1, le=1000)
    """A mail whose ingest fails this often is flagged ``$NmsFailed`` and left alone."""

    @field_validator("poll_interval", "timeout")
    @classmethod
    def _check_positive(cls, value: timedelta) -> timedelta:
        return positive(value)

    @field_validator("folder", "move_to")
    @classmethod
    def _check_folder(cls, value: str) -> str:
        if any(c in value for c in '\r\n"\\') or value != value.strip():
            raise ValueError(
                f"{value[:80]!r}: a folder name without quotes, backslashes or newlines"
            )
        return value

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError(f"{value[:80]!r} is not a host name or address")
        return value

    @model_validator(mode="after")
    def _check_complete(self) -> ImapSettings:
        if self.host is None:
            return self
        if not self.user:
            raise ValueError("user: needed when mail.imap.host is set")
        if (self.password is None) == (self.password_file is None):
            raise ValueError("give exactly one of password and password_file")
        if self.after == "move" and self.move_to == self.folder:
            raise ValueError(f"move_to: {self.move_to!r} is the folder that is read")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file: {self.ca_file} is not a readable file")
        return self

    @property
    def enabled(self) -> bool:
        return self.host is not None

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.security]

    @property
    def mailbox_name(self) -> str:
        """``user@host/folder``: the mailbox the ingest is told a mail came from."""
        return f"{self.user}@{self.host}/{self.folder}"

    def secret(self) -> str:
        """The password, from ``password`` or the first line of ``password_file``.

        Raises:
            OSError: ``password_file`` cannot be read (the message names it).
        """
        if self.password is not None:
            return self.password.get_secret_value()
        assert self.password_file is not None  # checked at validation
        text = self.password_file.read_text(encoding="utf-8")
        return text.splitlines()[0] if text else ""
