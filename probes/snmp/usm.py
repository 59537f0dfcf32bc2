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

from typing import Any

from probes.errors import (
    ProbeAuthError,
    ProbeTimeoutError,
    RemoteProtocolError,
)
from probes.snmp import ber
from probes.snmp.flows import Request
from probes.snmp.pdu import Pdu, PduType, VarBind
from probes.snmp.target import AuthProtocol, PrivProtocol, SnmpTarget

# pysnmp error indications that mean "credentials rejected" (RFC 3414 section 3.2).
_AUTH_INDICATIONS = frozenset(
    {
        "unknownUserName",
        "unknownSecurityName",
        "wrongDigest",
        "wrongDigests",
        "decryptionError",
        "unsupportedSecurityLevel",
        "unsupportedAuthProtocol",
        "unsupportedPrivProtocol",
        "authenticationFailure",
        "authenticationError",
    }
)


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
    """Runs requests for v3 targets through one pysnmp ``SnmpEngine``."""

    def __init__(self, *, timeout: float, retries: int) -> None:
        """Args:
        timeout: seconds per attempt (pysnmp's own retransmission timer).
        retries: retransmissions after the first attempt.
        """
        from pysnmp.hlapi.v3arch import asyncio as hlapi

        self._hlapi = hlapi
        self._engine = hlapi.SnmpEngine()
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

    def close(self) -> None:
        """Release pysnmp's transport sockets."""
        self._engine.close_dispatcher()

    async def execute(self, target: SnmpTarget, request: Request) -> Pdu:
        """Send ``request`` to ``target`` and return the Response as our ``Pdu``.

        Raises:
            ProbeTimeoutError: no (authentic) answer within the timeouts.
            ProbeAuthError: the agent rejected the USM credentials.
            RemoteProtocolError: any other error indication.
        """
        h = self._hlapi
        usm = target.usm
        assert usm is not None
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
            result = await h.get_cmd(
                self._engine, user, transport, context, *var_binds, lookupMib=False
            )
        elif request.type == PduType.GET_NEXT:
            result = await h.next_cmd(
                self._engine, user, transport, context, *var_binds, lookupMib=False
            )
        else:
            result = await h.bulk_cmd(
                self._engine,
                user,
                transport,
                context,
                request.non_repeaters,
                request.max_repetitions,
                *var_binds,
                lookupMib=False,
            )
        indication, status, index, answer = result
        if indication is not None:
            text = type(indication).__name__
            if text in ("RequestTimedOut",) or "timed out" in str(indication).lower():
                raise ProbeTimeoutError("timeout", target=target.host)
            if text in _AUTH_INDICATIONS or any(a in str(indication) for a in _AUTH_INDICATIONS):
                raise ProbeAuthError("auth", target=target.host)
            raise RemoteProtocolError(f"SNMPv3 error indication {text} from {target.host}")
        varbinds: list[VarBind] = [(tuple(vb[0]), _value(vb[1])) for vb in answer]
        return Pdu(
            type=PduType.RESPONSE,
            request_id=0,
            error_status=int(status),
            error_index=int(index),
            varbinds=tuple(varbinds),
        )
