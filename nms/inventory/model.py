"""What an inventory holds: customers, service profiles, upstream nodes and NTUs.

Validated pydantic specs (one per entry of the file) and the ``Inventory`` they make
up; ``nms.inventory.loader`` reads and checks files into it.

An NTU's or node's address must be one a device can have (``not_a_device``):
unspecified, "this network", broadcast, multicast, reserved and IPv4-mapped IPv6
addresses are refused. Loopback (127.0.0.0/8, ::1) is allowed, because the examples
and load tests probe it, and so is link-local (the lab's namespaces use 169.254/16).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from caseapi.inventory import (
    CONTACT_ROLES,
    DEFAULT_ROLES,
    check_email,
    check_zone,
    shipped_languages,
)
from caseapi.secrets import ENC_PREFIX, SecretBox, SecretDecryptError
from nms.app.settings import Duration, parse_duration
from probes.observation import IPAddress

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
#: Validation context key of the ``SecretBox`` that opens ``enc:`` credentials.
SECRETS_CONTEXT = "secrets"
#: Validation context key of the languages contacts may have (the template folders;
#: the shipped ones, ``en`` and ``it``, when not given).
LANGUAGES_CONTEXT = "languages"

# IPv4 blocks that are never a device's address (RFC 1122 3.2.1.3, RFC 1112 4).
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_RESERVED = ipaddress.IPv4Network("240.0.0.0/4")


def not_a_device(address: IPAddress) -> str | None:
    """Why ``address`` cannot be an NTU's or node's address (to follow "<address> is"),
    or None when it can be."""
    if address.is_unspecified:
        return "the unspecified address, never a device's"
    if address.is_multicast:
        return "a multicast address, never a device's"
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            # Probed as IPv6 it would never reach the device, and written so it
            # would slip past the duplicate-address check against its IPv4 form.
            return f"an IPv4-mapped IPv6 address: write it as {mapped}"
        return None
    if address == _LIMITED_BROADCAST:
        return "the broadcast address, never a device's"
    if address in _THIS_NETWORK:
        return "in 0.0.0.0/8 ('this network'), never a destination"
    if address in _RESERVED:
        return "in the reserved block 240.0.0.0/4, never a device's"
    return None


def _shown(value: object) -> str:
    """``value`` for an error message: short, whatever the file held."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class IcmpOverride(_Strict):
    enabled: bool = True


class ProbeOverride(_Strict):
    icmp: IcmpOverride = IcmpOverride()


class WanSelector(_Strict):
    """How the poller finds the WAN interface: exactly one of these."""

    index: int | None = Field(default=None, ge=1)
    name: str | None = None
    descr: str | None = None
    alias: str | None = None

    @model_validator(mode="after")
    def _one(self) -> WanSelector:
        given = [k for k in ("index", "name", "descr", "alias") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of index, name, descr, alias")
        return self


class SnmpSpec(_Strict):
    """SNMP access to one NTU. Secrets are ``SecretStr``: never printed or logged."""

    version: Literal["1", "2c", "3"] = "2c"
    port: int = Field(default=161, ge=1, le=65535)
    community: SecretStr | None = None
    user: str | None = None
    auth_protocol: Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5"] | None = None
    auth_key: SecretStr | None = None
    priv_protocol: Literal["AES", "AES192", "AES256", "DES"] | None = None
    priv_key: SecretStr | None = None
    wan: WanSelector | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("community", "auth_key", "priv_key", mode="before")
    @classmethod
    def _open(cls, value: object, info: ValidationInfo) -> object:
        # ``enc:...`` (``nms secrets encrypt``) opens with the configured keys.
        if not isinstance(value, str) or not value.startswith(ENC_PREFIX):
            return value
        context = info.context if isinstance(info.context, dict) else {}
        box = context.get(SECRETS_CONTEXT)
        if not isinstance(box, SecretBox):
            raise ValueError(
                "encrypted (enc:...) but no secret key is configured "
                "(secrets.key_file or NMS_SECRETS__KEY)"
            )
        try:
            return box.decrypt(value)
        except SecretDecryptError:
            raise ValueError("cannot decrypt: not made with any configured secret key") from None

    @model_validator(mode="after")
    def _credentials(self) -> SnmpSpec:
        if self.version in ("1", "2c"):
            if self.community is None:
                raise ValueError(f"SNMP v{self.version} needs a community")
            if self.user or self.auth_key or self.priv_key:
                raise ValueError("user, auth_key and priv_key are for SNMP v3 only")
            return self
        if not self.user:
            raise ValueError("SNMP v3 needs a user")
        if self.auth_key is None:
            raise ValueError("SNMP v3 needs auth_key (noAuthNoPriv is not supported)")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("priv_protocol and priv_key go together")
        if self.priv_key is not None and self.auth_key is None:
            raise ValueError("privacy (priv_key) needs authentication (auth_key) too")
        for key in (self.auth_key, self.priv_key):
            if key is not None and len(key.get_secret_value()) < 8:
                raise ValueError("SNMP v3 keys must be at least 8 characters (RFC 3414)")
        return self


class ProfileSpec(_Strict):
    """A service profile: P2 thresholds that differ from the defaults."""

    id: str = Field(pattern=_ID_PATTERN)
    window: Duration | None = None
    loss_open: float | None = Field(default=None, ge=0, le=1)
    loss_clear: float | None = Field(default=None, ge=0, le=1)
    latency_open: Duration | None = None
    latency_clear: Duration | None = None
    errors_open: float | None = Field(default=None, ge=0)
    errors_clear: float | None = Field(default=None, ge=0)
    flap_count: int | None = Field(default=None, ge=2)
    flap_window: Duration | None = None
    clear_after: Duration | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self if k != "id" and v is not None}


_PRIORITIES = ("P1", "P2", "P3")


def _repair_time(value: object) -> timedelta | dict[str, timedelta]:
    """``4h`` or ``{P1: 2h, P2: 6h}``, parsed, with one clear message when wrong."""
    if isinstance(value, dict):
        parsed = {}
        for key, item in value.items():
            if key not in _PRIORITIES:
                raise ValueError(f"unknown priority {_shown(key)}: one of P1, P2, P3")
            parsed[key] = _positive(item, f"{key}: ")
        if not parsed:
            raise ValueError("expected a duration or a mapping of P1/P2/P3 to durations")
        return parsed
    return _positive(value, "")


def _positive(value: object, where: str) -> timedelta:
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from None
    if duration <= timedelta(0):
        raise ValueError(f"{where}must be greater than zero")
    return duration


#: A time to repair: one duration for incidents (P1 and P2), or one per priority.
RepairTime = Annotated[timedelta | dict[str, timedelta], BeforeValidator(_repair_time)]


#: NTU attributes the inventory sync writes from ``services`` / ``sites``; an NTU
#: may not set them itself (``caseapi.cases.sla`` reads them, in that precedence).
REPAIR_TIME_ATTRIBUTES = ("ttr_service", "ttr_site")


class ServiceSpec(_Strict):
    """A service (an NTU's ``service_id``) with its own time to repair."""

    id: str = Field(min_length=1, max_length=64)
    ttr: RepairTime


class SiteSpec(_Strict):
    """A site (an NTU's or node's ``site``) with its own time to repair."""

    id: str = Field(min_length=1, max_length=200)
    ttr: RepairTime


def repair_time_text(ttr: RepairTime) -> str | dict[str, str]:
    """``ttr`` as the case service reads it from NTU attributes (``"14400s"``)."""
    if isinstance(ttr, dict):
        return {priority: _seconds(value) for priority, value in ttr.items()}
    return _seconds(ttr)


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


class ContactSpec(_Strict):
    """A person of a customer: who gets its mails, and whose mails open its cases."""

    email: str
    name: str = Field(default="", max_length=200)
    language: str = "en"
    roles: tuple[str, ...] = DEFAULT_ROLES
    timezone: str | None = None
    """IANA zone of the times this person reads; the customer's (else UTC) when unset."""

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected an e-mail address, got {_shown(value)}")
        return check_email(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str, info: ValidationInfo) -> str:
        context = info.context if isinstance(info.context, dict) else {}
        known = context.get(LANGUAGES_CONTEXT) or shipped_languages()
        code = value.lower()
        if code not in known:
            raise ValueError(
                f"unknown language {value!r}: one of {', '.join(sorted(known))} "
                "(a language is a folder of mail templates)"
            )
        return code

    @field_validator("roles", mode="before")
    @classmethod
    def _roles(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            for role in value:
                if role not in CONTACT_ROLES:
                    raise ValueError(
                        f"unknown role {_shown(role)}: one of {', '.join(CONTACT_ROLES)}"
                    )
            return tuple(dict.fromkeys(value))
        return value


class CustomerSpec(_Strict):
    id: str = Field(pattern=_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    contract_status: Literal["active", "expired", "unpaid"] = "active"
    timezone: str | None = None
    """IANA time zone of the customer's reports (month boundaries); UTC when unset."""
    attributes: dict[str, str | int | float | bool] = {}
    contacts: tuple[ContactSpec, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class NtuSpec(_Strict):
    id: str = Field(pattern=_ID_PATTERN)
    customer: str = Field(min_length=1)
    address: IPAddress
    service_id: str | None = None
    site: str | None = None
    parent: str | None = None
    probe: ProbeOverride = ProbeOverride()
    snmp: SnmpSpec | None = None
    profile: str | None = None
    attributes: dict[str, str | int | float | bool] = {}

    @field_validator("attributes")
    @classmethod
    def _attributes(
        cls, value: dict[str, str | int | float | bool]
    ) -> dict[str, str | int | float | bool]:
        for key in REPAIR_TIME_ATTRIBUTES:
            if key in value:
                kind = key.removeprefix("ttr_")
                raise ValueError(
                    f"{key} is set by the inventory: give the {kind} a ttr in '{kind}s'"
                )
        return value

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> IPAddress:
        if not isinstance(value, str):
            raise ValueError(f"expected an IPv4 or IPv6 address as text, got {_shown(value)}")
        text = value.strip()
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f"{_shown(value)} is not an IPv4 or IPv6 address") from None
        reason = not_a_device(address)
        if reason is not None:
            raise ValueError(f"{text} is {reason}")
        return address


NodeKind = Literal["pop", "aggregation", "supplier_circuit", "other"]


class NodeSpec(NtuSpec):
    """An upstream node (PoP router, aggregation switch, supplier circuit).

    Probed and tracked like an NTU (hence the subclass), but it belongs to no
    customer and carries no service: its outage opens an internal upstream incident.
    """

    kind: NodeKind
    customer: str = ""

    @field_validator("customer")
    @classmethod
    def _no_customer(cls, value: str) -> str:
        if value:
            raise ValueError("nodes belong to no customer")
        return value


@dataclass(frozen=True, slots=True)
class Inventory:
    customers: tuple[CustomerSpec, ...]
    ntus: tuple[NtuSpec, ...]
    source: str = ""
    profiles: tuple[ProfileSpec, ...] = ()
    nodes: tuple[NodeSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    sites: tuple[SiteSpec, ...] = ()
    by_id: dict[str, NtuSpec] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_id.update({n.id: n for n in self.ntus})

    def parents(self) -> dict[str, str | None]:
        """Entry id (NTU or node) -> its parent's id."""
        return {e.id: e.parent for e in (*self.nodes, *self.ntus)}
