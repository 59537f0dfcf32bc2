"""SNMPv3 (USM authNoPriv / authPriv) requests through pysnmp.

Our codec covers v1 / v2c; for v3 the security model (key localisation, engine-ID
discovery, time windows, HMAC, AES / DES) is pysnmp's, which is well tested against
real agents. This module runs one :class:`~probes.snmp.flows.Request` with pysnmp's
asyncio API and converts the answer into our :class:`~probes.snmp.pdu.Pdu`, so the
same flows (GET, walks, the poller's cycle) run over every version.

pysnmp is imported lazily: v1 / v2c polling never loads it. Its error indications
are translated into ours; credentials are never part of a message.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from probes.errors import (
    LocalProtocolError,
    ProbeAuthError,
    ProbeTimeoutError,
    RemoteProtocolError,
)
from probes.snmp import ber
from probes.snmp.flows import Request
from probes.snmp.pdu import Pdu, PduType, VarBind
from probes.snmp.target import AuthProtocol, PrivProtocol, SnmpTarget, UsmCredentials

# pysnmp error-indication classes (pysnmp.proto.errind) that mean "credentials
# rejected" (RFC 3414 section 3.2, usmStats* reports). Matched by class name, which
# is CamelCase ("WrongDigest"); the module-level instances are camelCase.
_AUTH_INDICATIONS = frozenset(
    {
        "UnknownUserName",
        "UnknownSecurityName",
        "WrongDigest",
        "DecryptionError",
        "UnsupportedSecurityLevel",
        "AuthenticationFailure",
        "AuthenticationError",
    }
)
# Indications that mean our side could not build or protect the message.
_LOCAL_INDICATIONS = frozenset(
    {
        "SerializationError",
        "EncryptionError",
        "NoEncryption",
        "NoAuthentication",
        "UnsupportedAuthProtocol",
        "UnsupportedPrivProtocol",
        "UnsupportedSecurityModel",
        "UnsupportedMsgProcessingModel",
        "TooBig",
    }
)
# Idle engines kept (one per distinct credential set, see UsmRequester).
_IDLE_ENGINES = 32


class _Engine:
    """One pysnmp ``SnmpEngine`` and how many requests are using it."""

    __slots__ = ("engine", "users")

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.users = 0


def _value(obj: Any) -> ber.Value:
    """A pysnmp / pyasn1 value -> ours (by SMI type name, which pysnmp keeps stable)."""
    name = type(obj).__name__
    if name in ("Integer32", "Integer"):
        return ber.Integer(int(obj))
    if name == "OctetString":
        return ber.OctetString(bytes(obj))
    if name in ("Counter32",):
        return ber.Counter32(int(obj))
    if name in ("Gauge32", "Unsigned32"):
        return ber.Gauge32(int(obj))
    if name == "TimeTicks":
        return ber.TimeTicks(int(obj))
    if name == "Counter64":
        return ber.Counter64(int(obj))
    if name == "IpAddress":
        return ber.IpAddress(bytes(obj.asOctets()))
    if name in ("ObjectIdentifier", "ObjectName"):
        return ber.ObjectIdentifier(tuple(obj))
    if name == "Opaque":
        return ber.Opaque(bytes(obj))
    if name == "NoSuchObject":
        return ber.NO_SUCH_OBJECT_VALUE
    if name == "NoSuchInstance":
        return ber.NO_SUCH_INSTANCE_VALUE
    if name == "EndOfMibView":
        return ber.END_OF_MIB_VIEW_VALUE
    if name == "Null":
        return ber.NULL_VALUE
    if name == "Bits":
        return ber.OctetString(bytes(obj))
    raise RemoteProtocolError(f"unsupported value type {name} in an SNMPv3 response")


class UsmRequester:
    """Runs requests for v3 targets through pysnmp, one ``SnmpEngine`` per credential set.

    Why not one engine for everything: pysnmp keeps USM users in the engine's
    ``usmUserTable`` keyed by (user name, security engine-ID), and the high-level
    API reconfigures that row whenever a request arrives with the same user name
    but other keys. Two NTUs sharing a user name with different pass phrases (or one
    NTU with a mistyped key) would then overwrite each other's keys while their
    requests are in flight, and both fail with wrongDigest. With one engine per
    :class:`UsmCredentials` value, a fleet-wide user costs one engine; idle engines
    beyond ``_IDLE_ENGINES`` are closed, least recently used first.
    """

    def __init__(self, *, timeout: float, retries: int) -> None:
        """Args:
        timeout: seconds per attempt (pysnmp's own retransmission timer).
        retries: retransmissions after the first attempt.
        """
        from pysnmp.hlapi.v3arch import asyncio as hlapi

        self._hlapi = hlapi
        self._engines: OrderedDict[UsmCredentials, _Engine] = OrderedDict()
        self._timeout = timeout
        self._retries = retries
        self._auth = {
            AuthProtocol.MD5: hlapi.usmHMACMD5AuthProtocol,
            AuthProtocol.SHA: hlapi.usmHMACSHAAuthProtocol,
            AuthProtocol.SHA224: hlapi.usmHMAC128SHA224AuthProtocol,
            AuthProtocol.SHA256: hlapi.usmHMAC192SHA256AuthProtocol,
            AuthProtocol.SHA384: hlapi.usmHMAC256SHA384AuthProtocol,
            AuthProtocol.SHA512: hlapi.usmHMAC384SHA512AuthProtocol,
        }
        self._priv = {
            PrivProtocol.DES: hlapi.usmDESPrivProtocol,
            PrivProtocol.AES: hlapi.usmAesCfb128Protocol,
            PrivProtocol.AES192: hlapi.usmAesCfb192Protocol,
            PrivProtocol.AES256: hlapi.usmAesCfb256Protocol,
        }

    @property
    def engines(self) -> int:
        """pysnmp engines currently open (one per credential set in use or kept)."""
        return len(self._engines)

    def close(self) -> None:
        """Release pysnmp's transport sockets."""
        for slot in self._engines.values():
            slot.engine.close_dispatcher()
        self._engines.clear()

    def _acquire(self, usm: UsmCredentials) -> _Engine:
        slot = self._engines.get(usm)
        if slot is None:
            slot = self._engines[usm] = _Engine(self._hlapi.SnmpEngine())
        self._engines.move_to_end(usm)
        slot.users += 1
        return slot

    def _release(self, slot: _Engine) -> None:
        slot.users -= 1
        excess = len(self._engines) - _IDLE_ENGINES
        if excess <= 0:
            return
        for usm, other in list(self._engines.items()):  # least recently used first
            if excess <= 0:
                break
            if other.users == 0:
                del self._engines[usm]
                other.engine.close_dispatcher()
                excess -= 1

    async def execute(self, target: SnmpTarget, request: Request) -> Pdu:
        """Send ``request`` to ``target`` and return the Response as our ``Pdu``.

        Raises:
            ProbeTimeoutError: no (authentic) answer within the timeouts.
            ProbeAuthError: the agent rejected the USM credentials.
            LocalProtocolError: pysnmp could not build or protect the request.
            RemoteProtocolError: any other error indication.
        """
        usm = target.usm
        assert usm is not None
        slot = self._acquire(usm)
        try:
            result = await self._send(slot.engine, target, usm, request)
        finally:
            self._release(slot)
        indication, status, index, answer = result
        if indication is not None:
            # Messages name the agent and the indication class only: pysnmp's own
            # text is not formatted here, so nothing it might echo can leak.
            name = type(indication).__name__
            if name == "RequestTimedOut":
                raise ProbeTimeoutError("timeout", target=target.host)
            if name in _AUTH_INDICATIONS:
                raise ProbeAuthError("auth", target=target.host)
            if name in _LOCAL_INDICATIONS:
                raise LocalProtocolError(f"SNMPv3 error indication {name} for {target.host}")
            raise RemoteProtocolError(f"SNMPv3 error indication {name} from {target.host}")
        varbinds: list[VarBind] = [(tuple(vb[0]), _value(vb[1])) for vb in answer]
        return Pdu(
            type=PduType.RESPONSE,
            request_id=0,
            error_status=int(status),
            error_index=int(index),
            varbinds=tuple(varbinds),
        )

    async def _send(
        self, engine: Any, target: SnmpTarget, usm: UsmCredentials, request: Request
    ) -> Any:
        h = self._hlapi
        user = h.UsmUserData(
            usm.user,
            authKey=usm.auth_key,
            privKey=usm.priv_key,
            authProtocol=self._auth[usm.auth_protocol],
            privProtocol=(
                self._priv[usm.priv_protocol]
                if usm.priv_protocol is not None
                else h.usmNoPrivProtocol
            ),
        )
        address = (target.host, target.port)
        if target.address.version == 6:
            transport: Any = await h.Udp6TransportTarget.create(
                address, timeout=self._timeout, retries=self._retries
            )
        else:
            transport = await h.UdpTransportTarget.create(
                address, timeout=self._timeout, retries=self._retries
            )
        var_binds = [h.ObjectType(h.ObjectIdentity(ber.format_oid(oid))) for oid in request.oids]
        context = h.ContextData()
        if request.type == PduType.GET:
            return await h.get_cmd(engine, user, transport, context, *var_binds, lookupMib=False)
        if request.type == PduType.GET_NEXT:
            return await h.next_cmd(engine, user, transport, context, *var_binds, lookupMib=False)
        return await h.bulk_cmd(
            engine,
            user,
            transport,
            context,
            request.non_repeaters,
            request.max_repetitions,
            *var_binds,
            lookupMib=False,
        )
