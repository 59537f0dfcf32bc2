"""nms.bus.mqtt over TLS with client certificates, against the production ACL file.

The broker is ``tests.mosquitto``'s TLS set-up: certificates of a CA made by the test
(``tests.pki``), ``require_certificate``, the certificate's common name as the user
name and the committed ``deploy/mosquitto/acl``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nms.bus.batch import PingBatch
from nms.bus.mqtt import MqttBus, MqttBusSettings
from nms.bus.mqtt.settings import Broker
from nms.bus.mqtt.tls import TlsError, TlsFiles, client_context
from nms.bus.wire import CaseChange, Heartbeat, NtuStateChange, Payload, SkipSet
from tests.conftest import require
from tests.mosquitto import Mosquitto, tls_fixture  # noqa: F401 - fixture "mosquitto_tls"
from tests.nms.bus.test_mqtt import T0, eventually, nothing_more, ping, running, take
from tests.pki import Pki

EVERYTHING = ["probes/#", "control/#", "detector/#", "cases/#"]
FAST: dict[str, Any] = {"reconnect_base": 0.05, "reconnect_cap": 0.2, "timeout": 3.0}


def files(pki: Pki, name: str | None) -> TlsFiles:
    if name is None:
        return TlsFiles(ca=pki.ca)
    pair = pki.client(name)
    return TlsFiles(ca=pki.ca, cert=pair.cert, key=pair.key)


def bus(
    broker: Mosquitto, name: str | None, *, tls: TlsFiles | None = None, **options: Any
) -> MqttBus:
    assert broker.pki is not None
    settings = MqttBusSettings(
        url=broker.url,
        tls=tls or files(broker.pki, name),
        reconnect_base=0.05,
        reconnect_cap=0.2,
        timeout=3.0,
    )
    source = f"{name or 'anonymous'}-{os.urandom(2).hex()}"
    return MqttBus(settings, client_id=source, source=source, **options)


def beat() -> Heartbeat:
    return Heartbeat("1/2", True, 0, 0, 0, 0, 0, 0)


async def test_workers_and_the_detector_talk_over_tls(mosquitto_tls: Mosquitto) -> None:
    broker = mosquitto_tls
    assert broker.url.startswith("mqtts://")
    worker = bus(broker, "probe-1of2", sender="probe-1of2", subscribe=["control/skip"])
    detector = bus(broker, "detector", subscribe=["probes/+/ping", "probes/+/heartbeat"])
    async with running(worker, detector):
        await eventually(lambda: worker.stats.connected and detector.stats.connected)
        await worker.publish(PingBatch((ping(),)))
        await worker.send(beat())
        got = await take(detector, 2)
        skip = SkipSet(frozenset({"ntu-9"}), T0)
        await detector.send(skip, retain=True)
        control = await take(worker, 1)
    assert [m.kind for m in got] == ["ping", "heartbeat"]
    assert control[0].payload == skip


async def test_the_detector_writes_states_cases_and_the_skip_set(
    mosquitto_tls: Mosquitto,
) -> None:
    broker = mosquitto_tls
    leader = bus(broker, "detector")
    follower = bus(broker, "detector", subscribe=["detector/#", "cases/#", "control/#"])
    payloads: list[Payload] = [
        NtuStateChange("ntu-1", "down", "suspect", T0, T0, "CASE-2026-000001"),
        CaseChange("CASE-2026-000001", 1, "opened", "open", "P1", "ntu-1", "acme", T0),
        SkipSet(frozenset({"ntu-3"}), T0),
    ]
    async with running(leader, follower):
        await eventually(lambda: leader.stats.connected and follower.stats.connected)
        for payload in payloads:
            await leader.send(payload)
        got = await take(follower, 3)
    assert [m.payload for m in got] == payloads
    assert leader.stats.refused == 0


async def test_a_worker_may_not_read_other_workers_observations(
    mosquitto_tls: Mosquitto,
) -> None:
    broker = mosquitto_tls
    # Mosquitto grants the subscription and checks each message against the ACL.
    snoop = bus(broker, "probe-1of2", subscribe=["probes/#"])
    other = bus(broker, "probe-2of2", sender="probe-2of2")
    detector = bus(broker, "detector", subscribe=["probes/#"])
    async with running(snoop, other, detector):
        await eventually(
            lambda: snoop.stats.connected and other.stats.connected and detector.stats.connected
        )
        await other.publish(PingBatch((ping(),)))
        await take(detector, 1)
        await nothing_more(snoop, 0.2)


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        ("none", "certificate required"),
        ("another CA", "unknown ca"),
    ],
)
async def test_a_worker_without_a_valid_certificate_is_refused_and_retries(
    mosquitto_tls: Mosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    certificate: str,
    reason: str,
) -> None:
    broker = mosquitto_tls
    assert broker.pki is not None
    if certificate == "none":
        tls = files(broker.pki, None)
    else:
        # Signed by a CA the broker does not trust; the broker itself is still checked.
        rogue = Pki(tmp_path / "rogue").client("probe-1of2")
        tls = TlsFiles(ca=broker.pki.ca, cert=rogue.cert, key=rogue.key)
    worker = bus(broker, None, tls=tls, sender="probe-1of2")
    detector = bus(broker, "detector", subscribe=["probes/#"])
    caplog.set_level(logging.DEBUG, logger="nms.bus")
    async with running(worker, detector):
        await eventually(lambda: detector.stats.connected)
        await worker.publish(PingBatch((ping(),)))
        retries = "bus: still no broker: the broker closed the connection before CONNACK"
        await eventually(lambda: sum(retries in r.message for r in caplog.records) >= 3)
        await nothing_more(detector, 0.2)
    assert worker.stats.connects == 0
    assert worker.stats.buffered == 1  # kept for when it is let in, never delivered
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    refusals = [w for w in warnings if f"cannot reach the broker 127.0.0.1:{broker.port}" in w]
    assert len(refusals) == 1, warnings  # once per outage, not once per retry
    assert reason in refusals[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_broker_is_checked_against_the_ca(
    mosquitto_tls: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_tls
    assert broker.pki is not None
    pair = broker.pki.client("probe-1of2")
    other = Pki(tmp_path / "other")
    worker = bus(broker, None, tls=TlsFiles(ca=other.ca, cert=pair.cert, key=pair.key))
    async with running(worker):
        await eventually(lambda: any("verify failed" in r.message for r in caplog.records))
    assert worker.stats.connects == 0


async def test_the_acl_drops_what_a_worker_writes_outside_its_own_prefix(
    mosquitto_tls: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_tls
    # Shard 1/2's certificate, posing as shard 2/2, and writing what only the detector may.
    impostor = bus(broker, "probe-1of2", sender="probe-2of2")
    honest = bus(broker, "probe-1of2", sender="probe-1of2")
    detector = bus(broker, "detector", subscribe=EVERYTHING)
    async with running(impostor, honest, detector):
        await eventually(
            lambda: impostor.stats.connected and honest.stats.connected and detector.stats.connected
        )
        await impostor.publish(PingBatch((ping("forged"),)))
        await impostor.send(SkipSet(frozenset({"ntu-1"}), T0), retain=True)
        state = NtuStateChange("ntu-1", "down", "up", T0, T0, None)
        await impostor.send(state, retain=True)
        async with asyncio.timeout(5):
            await impostor.flush()  # acknowledged: the broker has decided on each of them
        await honest.publish(PingBatch((ping("genuine"),)))
        got = await take(detector, 1)
        await nothing_more(detector, 0.2)
    # Had the broker passed any forged message on, it would have come first.
    assert [m.payload for m in got] == [PingBatch((ping("genuine"),))]
    assert impostor.stats.connects == 1  # dropped, not disconnected
    assert broker.log.read_text().count("Denied PUBLISH from") >= 3
    # The impostor is told (QoS 1: PUBACK "Not authorized"), once per connection.
    assert impostor.stats.refused == 3 and honest.stats.refused == 0
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    refused = [w for w in warnings if "the broker refused a message" in w]
    assert len(refused) == 1, warnings
    assert "nms/v1/probes/probe-2of2/ping (Not authorized)" in refused[0]


# -- settings and files ------------------------------------------------------------------


def test_mqtts_means_tls_on_port_8883() -> None:
    assert Broker.parse("mqtts://broker.example") == Broker(
        "broker.example", 8883, None, None, tls=True
    )
    assert Broker.parse("mqtt://broker.example").port == 1883
    assert Broker.parse("mqtts://broker.example:18883").port == 18883


def test_the_password_is_never_shown() -> None:
    url = "mqtts://probe-1of2:s3cret@broker.example"
    broker = Broker.parse(url)
    assert broker.password == "s3cret"
    assert "s3cret" not in repr(broker)
    settings = MqttBusSettings(url="mqtts://broker.example", username="u", password="s3cret")
    assert "s3cret" not in repr(settings)
    with pytest.raises(ValueError, match="out of range") as bad:
        Broker.parse("mqtts://u:s3cret@broker.example:99999")
    assert "s3cret" not in str(bad.value) and "u:***@" in str(bad.value)


def test_tls_files_need_mqtts(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    with pytest.raises(ValueError, match="need an mqtts:// url"):
        MqttBusSettings(url="mqtt://127.0.0.1", tls=TlsFiles(ca=pki.ca))


def test_tls_files_are_checked(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    pair = pki.client("probe-1of2")
    with pytest.raises(TlsError, match=r"bus.tls_key: needed too"):
        TlsFiles(ca=pki.ca, cert=pair.cert)
    with pytest.raises(TlsError, match=r"bus.tls_cert: needed too"):
        TlsFiles(ca=pki.ca, key=pair.key)
    with pytest.raises(TlsError, match=r"bus.tls_ca: .*missing.pem: No such file"):
        client_context(TlsFiles(ca=tmp_path / "missing.pem"))
    with pytest.raises(TlsError, match=r"bus.tls_ca: .*: not a file"):
        client_context(TlsFiles(ca=tmp_path))
    os.chmod(pair.key, 0o640)
    with pytest.raises(TlsError, match=r"bus.tls_key: .* is open to other users \(mode 0640\)"):
        client_context(TlsFiles(ca=pki.ca, cert=pair.cert, key=pair.key))
    os.chmod(pair.key, 0o600)
    with pytest.raises(TlsError, match=r"bus.tls_ca: .*: not a PEM CA certificate"):
        client_context(TlsFiles(ca=pair.key))
    other = pki.client("detector")
    with pytest.raises(TlsError, match=r"bus.tls_cert, bus.tls_key: .* not a PEM certificate"):
        client_context(TlsFiles(ca=pki.ca, cert=pair.cert, key=other.key))
    context = client_context(TlsFiles(ca=pki.ca, cert=pair.cert, key=pair.key))
    assert context.check_hostname
    assert context.minimum_version.name == "TLSv1_2"


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker with a ``password_file`` (user probe-1of2, password s3cret), no anonymous."""
    passwd = shutil.which("mosquitto_passwd")
    require(passwd is not None, "needs mosquitto_passwd (Debian package mosquitto)")
    assert passwd is not None
    passwords = tmp_path / "passwords"
    subprocess.run([passwd, "-b", "-c", str(passwords), "probe-1of2", "s3cret"], check=True)
    broker = Mosquitto(tmp_path, extra_config=f"password_file {passwords}\n")
    text = broker.config.read_text()
    broker.config.write_text(text.replace("allow_anonymous true\n", "allow_anonymous false\n"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_a_password_file_broker_takes_username_and_password(
    password_broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The alternative to client certificates (here in clear on loopback; over
    ``mqtts://`` the same settings travel encrypted)."""

    def login(password: str) -> MqttBus:
        settings = MqttBusSettings(
            url=password_broker.url, username="probe-1of2", password=password, **FAST
        )
        return MqttBus(settings, client_id=f"c-{password}", source=f"s-{password}")

    good, bad = login("s3cret"), login("wrong")
    async with running(good, bad):
        await eventually(lambda: good.stats.connected)
        await eventually(lambda: any("retrying" in r.message for r in caplog.records))
    assert bad.stats.connects == 0
    refusal = next(r.message for r in caplog.records if "retrying" in r.message)
    assert "cannot reach the broker" in refusal and "Not authorized" in refusal
    assert "s3cret" not in caplog.text and "wrong" not in caplog.text
