"""``nms probe`` / ``nms detector`` / ``nms api``: help, and exit 2 before starting anything.

Most cases call ``nms.app.cli.main`` in this process (the failures come before any task,
socket or database exists, and the heavy imports are paid once). The one failure that
comes after the status socket is bound runs as a subprocess, through the entry point.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nms.app.cli import main
from tests.nms.nms_process import free_port

INVENTORY = """\
customers:
  - {id: acme, name: ACME}
ntus:
  - {id: acme-hq, customer: acme, address: 127.0.10.1}
  - {id: acme-depot, customer: acme, address: 127.0.10.2}
"""
BROKER = "mqtt://127.0.0.1:1"  # never reached: these commands stop before connecting


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NMS_ variables from outside; nothing written to the checkout; logging restored."""
    for name in list(os.environ):
        if name.startswith("NMS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # `nms` sets UTC log timestamps process-wide; keep that out of the other tests.
    monkeypatch.setattr(logging.Formatter, "converter", logging.Formatter.converter)


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        yield int(busy.getsockname()[1])


def nms(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """``nms ARGS`` in this process."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def nms_process(*args: str, env: dict[str, str] | None = None) -> Result:
    """``python -m nms.app.cli ARGS`` as a subprocess, with only ``env`` as NMS_ settings."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "nms.app.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def assert_not_started(result: Result, *expected: str) -> None:
    assert result.code == 2, result
    assert "not started" in result.err, result.err
    for text in expected:
        assert text in result.err, result.err
    assert "Traceback" not in result.err


# -- help ---------------------------------------------------------------------------------


def test_top_level_help_lists_the_distributed_commands(capsys: pytest.CaptureFixture[str]) -> None:
    result = nms(capsys, "--help")
    assert result.code == 0
    for command in ("probe", "detector", "api"):
        assert f"    {command} " in result.out
    assert "distributed:" in result.out


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("probe", ["--shard I/N", "shard I of N", "hashmod", "bus.url", "/metrics", "/healthz"]),
        ("detector", ["leader", "stand by", "--database", "cluster.leader_check", "/healthz"]),
        ("api", ["503", "Retry-After", "--database", "--listen", "--workers N", "storage_url"]),
    ],
)
def test_help_reads_well(
    capsys: pytest.CaptureFixture[str], command: str, words: list[str]
) -> None:
    result = nms(capsys, command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: nms {command} ")
    for word in words:
        assert word in result.out, word


# -- nms probe: the shard ------------------------------------------------------------------


def test_probe_needs_a_shard(capsys: pytest.CaptureFixture[str], inventory: Path) -> None:
    result = nms(capsys, "probe", "--inventory", str(inventory))
    assert result.code == 2
    assert "required: --shard" in result.err


@pytest.mark.parametrize(
    ("shard", "problem"),
    [
        ("3/2", "shard 3/2: I must be 1 to 2"),
        ("0/2", "shard 0/2: I must be 1 to 2"),
        ("1/0", "the shard count must be 1 to 1024, not 0"),
        ("two", "'two' is not I/N"),
    ],
)
def test_bad_shard_exit_2_names_the_option(
    capsys: pytest.CaptureFixture[str], inventory: Path, shard: str, problem: str
) -> None:
    result = nms(capsys, "probe", "--shard", shard, "--inventory", str(inventory))
    assert_not_started(result, f"command line: --shard: {problem}")


# -- missing or bad settings -----------------------------------------------------------------


@pytest.mark.parametrize("command", [["probe", "--shard", "1/2"], ["detector"]])
def test_no_inventory_exit_2_names_inventory_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("NMS_BUS__URL", BROKER)
    result = nms(capsys, *command)
    assert_not_started(result, "inventory.path: needed by this command (--inventory FILE)")


def test_probe_without_bus_url_exit_2_names_bus_url(inventory: Path) -> None:
    # A subprocess: the status socket is already bound when the bus settings are read
    # (and it is not closed on this path, which in-process would warn about).
    result = nms_process(
        "probe",
        "--shard",
        "1/2",
        "--inventory",
        str(inventory),
        "--listen",
        f"127.0.0.1:{free_port()}",
    )
    assert_not_started(result, "bus.url: needed by this command", "NMS_BUS__URL=")


def test_detector_without_bus_url_exit_2_names_bus_url(
    capsys: pytest.CaptureFixture[str], inventory: Path
) -> None:
    result = nms(capsys, "detector", "--inventory", str(inventory))
    assert_not_started(result, "bus.url: needed by this command", "NMS_BUS__URL=")


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://host:99999", "broker:1883"])
def test_bad_bus_url_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inventory: Path,
    url: str,
) -> None:
    monkeypatch.setenv("NMS_BUS__URL", url)
    result = nms(capsys, "probe", "--shard", "1/2", "--inventory", str(inventory))
    assert_not_started(result, repr(url))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("NMS_BUS__URL", "http://x", "bus.url: 'http://x' is not an MQTT URL"),
        ("NMS_BUS__TOPIC_PREFIX", "/nms", "bus.topic_prefix:"),
        ("NMS_BUS__HEARTBEAT", "0s", "bus.heartbeat:"),
        ("NMS_CLUSTER__SHARD_STALE_AFTER", "0s", "cluster.shard_stale_after:"),
    ],
)
def test_bad_setting_names_the_variable_and_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inventory: Path,
    name: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(name, value)
    result = nms(capsys, "probe", "--shard", "1/2", "--inventory", str(inventory))
    assert_not_started(result, f"environment {name}: {expected}")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"NMS_CLUSTER__PROBE_LISTEN": "nowhere"},
            "NMS_CLUSTER__PROBE_LISTEN: cluster.probe_listen",
        ),
        ({"NMS_CLUSTER__SHARD_STALE_AFTER": "0s"}, "must be greater than zero"),
        ({"NMS_BUS__BUFFER_BATCHES": "0"}, "NMS_BUS__BUFFER_BATCHES: bus.buffer_batches"),
        ({"NMS_BUS__HEARTBEAT": "5"}, "NMS_BUS__HEARTBEAT: bus.heartbeat: '5' is not a duration"),
    ],
)
def test_bad_cluster_settings_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inventory: Path,
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = nms(capsys, "probe", "--shard", "1/2", "--inventory", str(inventory))
    assert_not_started(result, expected)


@pytest.mark.parametrize("command", [["probe", "--shard", "1/2"], ["detector"]])
def test_bad_listen_names_the_option(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    result = nms(capsys, *command, "--listen", "nowhere")
    assert_not_started(result, "command line: --listen: 'nowhere' is not host:port")


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        ("0", "command line: --workers: must be at least 1 (the process itself serves), not 0"),
        ("-3", "command line: --workers: must be at least 1 (the process itself serves), not -3"),
        ("500", "command line: --workers: at most 64, not 500 (one per core is the useful most)"),
    ],
)
def test_bad_workers_names_the_option(
    capsys: pytest.CaptureFixture[str], workers: str, expected: str
) -> None:
    assert_not_started(nms(capsys, "api", "--workers", workers), expected)


def test_bad_api_workers_of_nms_run_names_its_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert_not_started(
        nms(capsys, "run", "--api-workers", "0"),
        "command line: --api-workers: must be at least 1 (the process itself serves), not 0",
    )


def test_bad_workers_setting_names_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NMS_API__WORKERS", "0")
    result = nms(capsys, "api")
    assert_not_started(result, "api.workers", "must be at least 1")


# -- busy ports -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["probe", "--shard", "1/2"], ["detector"], ["api"], ["api", "--workers", "2"]]
)
def test_busy_listen_port_exit_2_names_the_address(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    inventory: Path,
    busy_port: int,
    command: list[str],
) -> None:
    monkeypatch.setenv("NMS_BUS__URL", BROKER)
    database = tmp_path / "nms.db"
    args = [*command, "--listen", f"127.0.0.1:{busy_port}"]
    if command[0] != "api":
        args += ["--inventory", str(inventory)]
    if command[0] != "probe":
        args += ["--database", f"sqlite+aiosqlite:///{database}"]
    result = nms(capsys, *args)
    assert_not_started(result, f"cannot listen on 127.0.0.1:{busy_port}: Address already in use")
    assert not database.exists()  # nothing started: no database was created


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (["probe", "--shard", "1/2"], "cluster.probe_listen"),
        (["detector"], "cluster.detector_listen"),
    ],
)
def test_busy_listen_port_names_the_setting(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    inventory: Path,
    busy_port: int,
    command: list[str],
    key: str,
) -> None:
    monkeypatch.setenv("NMS_BUS__URL", BROKER)
    args = [*command, "--inventory", str(inventory), "--listen", f"127.0.0.1:{busy_port}"]
    result = nms(capsys, *args)
    assert_not_started(result, f"{key}: cannot listen on 127.0.0.1:{busy_port}")


# -- nms config show ------------------------------------------------------------------------


def test_config_show_lists_bus_and_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    result = nms(capsys, "config", "show")
    assert result.code == 0, result.err
    assert (
        "bus:\n"
        "  url: null\n"
        "  username: null\n"
        "  password: null\n"
        "  tls_ca: null\n"
        "  tls_cert: null\n"
        "  tls_key: null\n"
        "  topic_prefix: nms/v1\n"
        "  session_expiry: 1h\n"
        "  buffer_batches: 2000\n"
        "  heartbeat: 5s\n"
        "cluster:\n"
        "  probe_listen: 127.0.0.1:9101\n"
        "  detector_listen: 127.0.0.1:9102\n"
        "  leader_check: 1s\n"
        "  shard_stale_after: 15s\n"
    ) in result.out


def test_config_show_applies_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NMS_BUS__URL", "mqtt://broker.example:1883")
    monkeypatch.setenv("NMS_CLUSTER__SHARD_STALE_AFTER", "30s")
    result = nms(capsys, "config", "show")
    assert result.code == 0, result.err
    assert "  url: mqtt://broker.example:1883\n" in result.out
    assert "  shard_stale_after: 30s\n" in result.out


# -- broker credentials and TLS files ------------------------------------------------------


def test_the_bus_password_is_never_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nms.app.settings import load_settings
    from nms.app.wiring import bus_settings

    monkeypatch.setenv("NMS_BUS__URL", "mqtts://probe-1of2:s3cr%3At@broker.example")
    result = nms(capsys, "config", "show")
    assert result.code == 0, result.err
    assert "  url: mqtts://broker.example\n" in result.out
    assert "  username: probe-1of2\n  password: **********\n" in result.out
    assert "s3cr" not in result.out
    settings = load_settings()
    assert "s3cr" not in repr(settings) and "s3cr" not in str(settings)
    bus = bus_settings(settings)
    assert (bus.username, bus.password) == ("probe-1of2", "s3cr:t")
    assert "s3cr" not in repr(bus)
    # Nor in an error about the URL.
    monkeypatch.setenv("NMS_BUS__URL", "mqtt://probe-1of2:s3cret@broker.example:99999")
    result = nms(capsys, "config", "show")
    assert result.code == 2
    assert "bus.url: 'mqtt://broker.example:99999'" in result.err
    assert "s3cr" not in result.err + result.out


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"NMS_BUS__URL": "mqtt://u:s3cret@h", "NMS_BUS__USERNAME": "v"},
            "NMS_BUS__URL: bus.url: 'mqtt://u:***@h': a user in the url and in bus.username",
        ),
        (
            {"NMS_BUS__URL": "mqtt://u@h", "NMS_BUS__PASSWORD": "p"},
            "NMS_BUS__URL: bus.url: 'mqtt://u@h': a user in the url and in bus.username",
        ),
        ({"NMS_BUS__URL": "mqtts://h", "NMS_BUS__PASSWORD": "p"}, "password: needs username"),
        (
            {"NMS_BUS__URL": "mqtt://h", "NMS_BUS__TLS_CA": "{ca}"},
            "tls_ca, tls_cert, tls_key: only for an mqtts:// url",
        ),
        (
            {"NMS_BUS__URL": "mqtts://h", "NMS_BUS__TLS_CERT": "{ca}"},
            "tls_cert and tls_key: give both or neither",
        ),
        (
            {"NMS_BUS__URL": "mqtts://h", "NMS_BUS__TLS_CA": "{missing}"},
            "NMS_BUS__TLS_CA: bus.tls_ca: {missing}: No such file or directory",
        ),
        (
            {
                "NMS_BUS__URL": "mqtts://h",
                "NMS_BUS__TLS_CERT": "{ca}",
                "NMS_BUS__TLS_KEY": "{open}",
            },
            "NMS_BUS__TLS_KEY: bus.tls_key: {open} is open to other users (mode 0644): chmod 600",
        ),
    ],
)
def test_bad_bus_credentials_or_tls_files_exit_2_naming_the_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    inventory: Path,
    env: dict[str, str],
    expected: str,
) -> None:
    paths = {"ca": tmp_path / "ca.pem", "missing": tmp_path / "no.pem", "open": tmp_path / "k.key"}
    paths["ca"].write_text("x")
    paths["open"].write_text("x")
    paths["open"].chmod(0o644)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**paths))
    result = nms(capsys, "probe", "--shard", "1/2", "--inventory", str(inventory))
    assert_not_started(result, expected.format(**paths))


def test_tls_files_that_are_not_pem_exit_2_naming_the_keys(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    inventory: Path,
) -> None:
    from tests.pki import Pki

    pki = Pki(tmp_path / "pki")
    pair, other = pki.client("probe-1of2"), pki.client("detector")
    monkeypatch.setenv("NMS_BUS__URL", "mqtts://127.0.0.1:1")
    monkeypatch.setenv("NMS_BUS__TLS_CA", str(pki.ca))
    monkeypatch.setenv("NMS_BUS__TLS_CERT", str(pair.cert))
    monkeypatch.setenv("NMS_BUS__TLS_KEY", str(other.key))  # not this certificate's key
    result = nms(capsys, "detector", "--inventory", str(inventory))
    assert_not_started(result, "bus.tls_cert, bus.tls_key:", "not a PEM certificate and its")
