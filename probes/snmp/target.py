"""What the SNMP poller is told about one NTU: address, version, credentials, WAN port.

Credentials are secrets: every field that holds one is left out of ``repr`` (and so
out of any log line or exception message that formats a target), and no code in
``probes.snmp`` ever formats them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from probes.errors import ProbeConfigError
from probes.observation import IPAddress


class SnmpVersion(StrEnum):
    """Protocol version of a target."""

    V1 = "v1"
    V2C = "v2c"
    V3 = "v3"


class AuthProtocol(StrEnum):
    """USM authentication protocols (RFC 3414, RFC 7860)."""

    MD5 = "md5"
    SHA = "sha"
    SHA224 = "sha224"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"


class PrivProtocol(StrEnum):
    """USM privacy protocols (RFC 3414, RFC 3826)."""

    DES = "des"
    AES = "aes"  # AES-128-CFB
    AES192 = "aes192"
    AES256 = "aes256"


@dataclass(frozen=True, slots=True, kw_only=True)
class UsmCredentials:
    """An SNMPv3 USM user: authNoPriv without ``priv_*``, authPriv with them."""

    user: str
    auth_protocol: AuthProtocol = AuthProtocol.SHA
    auth_key: str = field(repr=False)
    priv_protocol: PrivProtocol | None = None
    priv_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.user, str) or not self.user:
            raise ProbeConfigError("usm.user", "must be a non-empty string")
        if not isinstance(self.auth_protocol, AuthProtocol):
            raise ProbeConfigError("usm.auth_protocol", "must be an AuthProtocol")
        # RFC 3414 section 11.2: pass phrases shorter than 8 characters are refused.
        if not isinstance(self.auth_key, str) or len(self.auth_key) < 8:
            raise ProbeConfigError("usm.auth_key", "must be a string of at least 8 characters")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ProbeConfigError("usm.priv_key", "priv_protocol and priv_key go together")
        if self.priv_protocol is not None and not isinstance(self.priv_protocol, PrivProtocol):
            raise ProbeConfigError("usm.priv_protocol", "must be a PrivProtocol")
        if self.priv_key is not None and (
            not isinstance(self.priv_key, str) or len(self.priv_key) < 8
        ):
            raise ProbeConfigError("usm.priv_key", "must be a string of at least 8 characters")

    @property
    def level(self) -> str:
        """``"authNoPriv"`` or ``"authPriv"``."""
        return "authPriv" if self.priv_protocol is not None else "authNoPriv"


WanBy = Literal["index", "name", "descr", "alias"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WanSelector:
    """How to find the WAN interface: by ifIndex, or by ifName / ifDescr / ifAlias text."""

    by: WanBy
    value: int | str

    def __post_init__(self) -> None:
        if self.by == "index":
            if isinstance(self.value, bool) or not isinstance(self.value, int):
                raise ProbeConfigError("wan.value", "must be an int ifIndex when by='index'")
            if not 1 <= self.value <= 2**31 - 1:
                raise ProbeConfigError("wan.value", f"ifIndex must be >= 1, not {self.value}")
        elif self.by in ("name", "descr", "alias"):
            if not isinstance(self.value, str) or not self.value:
                raise ProbeConfigError(
                    "wan.value", f"must be a non-empty string when by={self.by!r}"
                )
        else:
            raise ProbeConfigError(
                "wan.by", f"must be index, name, descr or alias, not {self.by!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class SnmpTarget:
    """One NTU's SNMP agent.

    Attributes:
        key: the NTU id, echoed in every result and event.
        address: the agent's IP address.
        port: the agent's UDP port.
        version: v1, v2c (``community`` required) or v3 (``usm`` required).
        community: v1 / v2c community (secret; never in ``repr``).
        usm: v3 USM credentials (secret keys; never in ``repr``).
        wan: the WAN interface; None polls only sysUpTime.
    """

    key: str
    address: IPAddress
    port: int = 161
    version: SnmpVersion = SnmpVersion.V2C
    community: str | None = field(default=None, repr=False)
    usm: UsmCredentials | None = field(default=None, repr=False)
    wan: WanSelector | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ProbeConfigError("key", "must be a non-empty string")
        if not isinstance(self.address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise ProbeConfigError("address", "must be an IPv4Address or IPv6Address")
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 1 <= self.port <= 65535
        ):
            raise ProbeConfigError("port", "must be an int within 1..65535")
        if not isinstance(self.version, SnmpVersion):
            raise ProbeConfigError("version", "must be an SnmpVersion")
        if self.version is SnmpVersion.V3:
            if self.usm is None:
                raise ProbeConfigError("usm", "is required for SNMPv3")
            if self.community is not None:
                raise ProbeConfigError("community", "is not used with SNMPv3")
        else:
            if not isinstance(self.community, str) or not self.community:
                raise ProbeConfigError("community", f"is required for SNMP{self.version.value}")
            if self.usm is not None:
                raise ProbeConfigError("usm", f"is not used with SNMP{self.version.value}")
        if self.wan is not None and not isinstance(self.wan, WanSelector):
            raise ProbeConfigError("wan", "must be a WanSelector")

    @property
    def host(self) -> str:
        return str(self.address)
