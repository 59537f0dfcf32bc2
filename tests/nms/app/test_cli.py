"""The ``nms`` command: clear errors with exit code 2, and nothing stored is touched.

What needs a process of its own runs ``python -m nms.app.cli`` (``nms()``): ``--help``,
a closed pipe, every ``nms run`` (it refuses before starting, or fails to start), the
umask of a new database. The file and settings checks run the same ``main()`` in this
process (``nms_here``): a Python start-up per case cost more than the checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from caseapi.core.database import make_engine, make_sessionmaker, migrate
from nms.app.cli import main
from nms.inventory.loader import load_inventory
from nms.inventory.sync import sync_inventory
from tests.conftest import require_root
from tests.nms.nms_process import NmsProcess, free_port, running, wait_for

GOOD = """\
customers:
  - id: acme
    name: ACME
ntus:
  - id: acme-hq
    customer: acme
    address: 127.0.10.1
  - id: acme-depot
    customer: acme
    address: 127.0.10.2
"""

BAD_INVENTORIES = {
    "missing field": (
        GOOD.replace("    address: 127.0.10.2\n", ""),
        ":8: ntus[1].address (id acme-depot): missing",
    ),
    "bad address": (
        GOOD.replace("127.0.10.2", "127.0.10.256"),
        ":10: ntus[1].address (id acme-depot): '127.0.10.256' is not an IPv4 or IPv6",
    ),
    "duplicate id": (GOOD.replace("acme-depot", "acme-hq"), ":8: ntus[1].id: duplicate id"),
    "unknown key": (
        GOOD.replace("    address: 127.0.10.2\n", "    address: 127.0.10.2\n    vlan: 7\n"),
        ":11: ntus[1].vlan (id acme-depot): unknown key",
    ),
    "wrong type": (
        GOOD.replace("    name: ACME", "    name: [A, C]"),
        ":3: customers[0].name (id acme): Input should be a valid string",
    ),
    "not yaml": ("ntus: [ {id: x\n", ":2: not valid YAML: did not find expected ',' or '}'"),
    "not an inventory": ("hello\n", ":1: expected a mapping with 'customers' and 'ntus'"),
    "empty": ("", ":1: empty: expected a mapping with 'customers' and 'ntus'"),
    "not a device's address": (
        GOOD.replace("127.0.10.2", "224.0.0.1"),
        ":10: ntus[1].address (id acme-depot): 224.0.0.1 is a multicast address",
    ),
    "nested 10,000 lists deep": (
        "ntus: " + "[" * 10_000 + "]" * 10_000 + "\n",
        ":1: too deeply nested (more than 32 levels)",
    ),
    "nested 10,000 mappings deep": (
        "ntus: " + "{a: " * 10_000 + "x" + "}" * 10_000 + "\n",
        ":1: too deeply nested (more than 32 levels)",
    ),
    "alias bomb": (
        "customers:\n  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(
            f"  - &{b} [{', '.join([f'*{a}'] * 9)}]\n"
            for a, b in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "ntus:\n  - {id: x, customer: acme, address: *i}\n",
        ":8: too large: more than 5,000,000 values once aliases are expanded",
    ),
}


def nms(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, umask: int = -1):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "nms.app.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=60,
        umask=umask,
    )


@dataclass(frozen=True)
class Ran:
    """What ``main()`` returned and printed, shaped like ``subprocess.run``'s result."""

    returncode: int
    stdout: str
    stderr: str


NmsHere = Callable[..., Ran]


@pytest.fixture
def nms_here(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> NmsHere:
    """``nms ARGS`` as ``main(ARGS)`` in this process, with no ``NMS_*`` variable but
    ``env``'s (as ``nms()`` gives the subprocess)."""
    for name in list(os.environ):
        if name.startswith("NMS_"):
            monkeypatch.delenv(name)

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors, as the command exits
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Ran(returncode=code, stdout=out, stderr=err)

    return run


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def stored_db(tmp_path: Path) -> Path:
    """A database that already holds the good inventory."""
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    db = tmp_path / "nms.db"

    async def fill() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        try:
            await migrate(engine)
            await sync_inventory(make_sessionmaker(engine), load_inventory(good))
        finally:
            await engine.dispose()

    asyncio.run(fill())
    return db


def test_help_reads_well():
    result = nms("--help")
    assert result.returncode == 0
    for word in ("run", "inventory", "config"):
        assert word in result.stdout
    run_help = nms("run", "--help").stdout
    assert "--inventory" in run_help and "SIGHUP" in run_help


def test_inventory_check_good(tmp_path: Path, nms_here: NmsHere):
    path = tmp_path / "inv.yaml"
    path.write_text(GOOD)
    result = nms_here("inventory", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert "valid: 1 customer, 2 NTUs, 0 upstream nodes" in result.stdout


def test_inventory_problems_are_listed_top_to_bottom(tmp_path: Path, nms_here: NmsHere):
    path = tmp_path / "inv.yaml"
    path.write_text(
        "customers:\n"
        "  - {id: acme, name: ACME}\n"
        "ntus:\n"
        "  - {id: a, customer: acme, address: 192.0.2.1, parent: nowhere}\n"
        "  - {id: b, customer: nobody, address: 192.0.2.2}\n"
        "  - {id: c, customer: acme, address: not-an-address}\n"
        "  - {id: a, customer: acme, address: 192.0.2.1}\n"
    )
    result = nms_here("inventory", "check", str(path))
    assert result.returncode == 2
    lines = [int(x.split(":")[1]) for x in result.stderr.splitlines() if str(path) in x]
    assert len(lines) >= 4, result.stderr
    assert lines == sorted(lines), result.stderr


def test_a_closed_pipe_ends_quietly(tmp_path: Path):
    """``nms config show | head``: no traceback, no BrokenPipeError noise.

    The reader here (``true``) exits before nms has started, so the first write of
    ``config show`` always meets a closed pipe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    shell = f"{sys.executable} -m nms.app.cli config show | true; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.stderr == ""
    assert done.returncode == 0


#: ``nms run`` reads the file with the same loader as ``inventory check``: one case of
#: each kind of failure (a field, the YAML, the nesting, an alias bomb) is enough there.
THROUGH_RUN = frozenset(
    {"missing field", "duplicate id", "not yaml", "nested 10,000 lists deep", "alias bomb"}
)


@pytest.mark.parametrize("case", list(BAD_INVENTORIES))
def test_bad_inventory_exit_2_names_file_line_field(
    tmp_path: Path, request: pytest.FixtureRequest, nms_here: NmsHere, case: str
):
    text, expected = BAD_INVENTORIES[case]
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    check = nms_here("inventory", "check", str(path))
    assert check.returncode == 2
    assert f"{path}{expected}" in check.stderr, check.stderr
    assert "Traceback" not in check.stderr

    if case not in THROUGH_RUN:
        return
    stored_db: Path = request.getfixturevalue("stored_db")
    before = digest(stored_db)
    run = nms("run", "--inventory", str(path), "--database", f"sqlite+aiosqlite:///{stored_db}")
    assert run.returncode == 2, run.stderr
    assert expected in run.stderr and "not started" in run.stderr
    assert "Traceback" not in run.stderr
    assert digest(stored_db) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"ntus: []\n\x00\x01\x02\x7f", ":2: not valid YAML: character #x00 is not allowed"),
        (bytes(range(256)) * 16, ": not UTF-8 text"),
    ],
    ids=["control characters", "not UTF-8"],
)
def test_binary_garbage_exit_2(tmp_path: Path, nms_here: NmsHere, content: bytes, expected: str):
    path = tmp_path / "inv.yaml"
    path.write_bytes(content)
    check = nms_here("inventory", "check", str(path))
    assert check.returncode == 2
    assert f"{path}{expected}" in check.stderr, check.stderr
    assert "Traceback" not in check.stderr


def test_a_huge_file_exit_2(tmp_path: Path, nms_here: NmsHere):
    path = tmp_path / "inv.yaml"
    with path.open("wb") as file:
        file.truncate(64 * 2**20 + 1)  # sparse: costs no disk
    check = nms_here("inventory", "check", str(path))
    assert check.returncode == 2
    assert f"{path}: too large: more than 64 MiB" in check.stderr, check.stderr
    assert "Traceback" not in check.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"NMS_DETECTOR__DOWN_AFTER": "banana"}, "NMS_DETECTOR__DOWN_AFTER: detector.down_after"),
        ({"NMS_PROBES__ICMP__COUNT": "-1"}, "probes.icmp.count"),
        ({"NMS_DETECTOR__DOWNAFTER": "5s"}, "NMS_DETECTOR__DOWNAFTER: unknown setting"),
        ({"NMS_API__LISTEN": "nowhere"}, "api.listen"),
        (
            {"NMS_RUNTIME__EVENT_LOOP": "tokio"},
            "NMS_RUNTIME__EVENT_LOOP: runtime.event_loop: Input should be 'uvloop' or 'asyncio'",
        ),
    ],
)
def test_bad_config_exit_2_names_the_key(tmp_path: Path, stored_db: Path, env, expected):
    inv = tmp_path / "inv.yaml"
    inv.write_text(GOOD)
    before = digest(stored_db)
    result = nms(
        "run", "--inventory", str(inv), "--database", f"sqlite+aiosqlite:///{stored_db}", env=env
    )
    assert result.returncode == 2
    assert expected in result.stderr and "not started" in result.stderr
    assert "Traceback" not in result.stderr
    assert digest(stored_db) == before


def test_bad_config_file(tmp_path: Path, nms_here: NmsHere):
    cfg = tmp_path / "nms.yaml"
    cfg.write_text("probes:\n  icmp:\n    timeout: 3\n")
    result = nms_here("config", "show", "--config", str(cfg))
    assert result.returncode == 2
    assert f"{cfg}: probes.icmp.timeout: 3 has no unit" in result.stderr


def test_bad_command_line_value(tmp_path: Path):
    result = nms("run", "--listen", "8080")
    assert result.returncode == 2
    assert "--listen" in result.stderr


def test_config_show_prints_effective_values(nms_here: NmsHere):
    result = nms_here("config", "show", env={"NMS_DETECTOR__DOWN_AFTER": "5m"})
    assert result.returncode == 0, result.stderr
    assert "down_after: 5m" in result.stdout
    assert "p2: 3d" in result.stdout


def test_busy_port_exit_2(tmp_path: Path, stored_db: Path):
    import socket

    inv = tmp_path / "inv.yaml"
    inv.write_text(GOOD)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = nms(
            "run",
            "--inventory",
            str(inv),
            "--listen",
            f"127.0.0.1:{port}",
            "--database",
            f"sqlite+aiosqlite:///{stored_db}",
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_exit_1(tmp_path: Path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(GOOD)
    # A password no log line could contain by chance ("secret" is in the key warning).
    url = "postgresql+asyncpg://nms:pw-7Hq2xZ@127.0.0.1:1/nms"
    listen = f"127.0.0.1:{free_port()}"
    result = nms("run", "--inventory", str(inv), "--listen", listen, "--database", url)
    assert result.returncode == 1
    assert "database problem" in result.stderr
    assert "127.0.0.1:1" in result.stderr
    assert "pw-7Hq2xZ" not in result.stderr
    assert "Traceback" not in result.stderr


# --- the database file is private ----------------------------------------------------


def modes(directory: Path, prefix: str) -> dict[str, int]:
    return {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in directory.iterdir()
        if p.name.startswith(prefix)
    }


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_apikey_create_makes_a_private_database(tmp_path: Path, umask: int):
    db = tmp_path / "keys.db"
    url = f"sqlite+aiosqlite:///{db}"
    made = nms("apikey", "create", "--role", "noc", "--name", "t", "--database", url, umask=umask)
    assert made.returncode == 0, made.stderr
    # The process has ended: SQLite removed -wal and -shm on the last close.
    assert modes(tmp_path, "keys.db") == {"keys.db": 0o600}


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o000], ids=["umask-000"])  # 022 etc.: in-process tests
def test_nms_run_makes_private_files_and_can_serve_the_api_from_workers(tmp_path: Path, umask: int):
    require_root()  # nms run opens ICMP sockets (it probes the loopback NTUs of GOOD)
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(GOOD)
    db = tmp_path / "nms.db"
    process = NmsProcess(workdir=tmp_path, inventory=inventory, database=db, umask=umask)
    # On the way back to the standard loop (runtime.event_loop), which must work as well;
    # with the collector's threshold of the settings (runtime.gc_threshold), and the API
    # served by two worker processes (api.workers) on the same SQLite file.
    settings = {
        "NMS_RUNTIME__EVENT_LOOP": "asyncio",
        "NMS_RUNTIME__GC_THRESHOLD": "5000",
        "NMS_API__WORKERS": "2",
    }
    with running(process, **settings):
        assert "event loop: asyncio" in process.log()
        assert "garbage collector: the youngest objects every 5000 new ones" in process.log()
        # Running, it has migrated and synced the inventory: written, WAL open.
        names = {"nms.db", "nms.db-wal", "nms.db-shm"}
        wait_for("the WAL files", lambda: names <= set(modes(tmp_path, "nms.db")), timeout=10)
        process.make_key("engineer")  # a second process writing to the same files
        # With the secret key file the first start made beside the database.
        assert modes(tmp_path, "nms.db") == dict.fromkeys({*names, "nms.db.key"}, 0o600)

        # The API comes from two workers (children of nms run, serving its address);
        # what the probes and the detector wrote, they read from the database.
        assert process.proc is not None
        parent = process.proc.pid
        workers = wait_for("two API workers", lambda: _api_workers(parent), timeout=20)
        assert len(workers) == 2
        assert "(2 API worker processes)" in process.log()
        assert "each worker keeps its own rate limits" in process.log()
        ntus = wait_for("the NTUs up", lambda: _all_up(process), timeout=20)
        assert ntus == ["acme-depot", "acme-hq"]
        # A worker writes while nms run's detector does: a case opened over the API.
        opened = process.call("POST", "/v1/cases", json=_reactive_case("acme-hq"))
        assert opened.status_code == 201, opened.text
        # /metrics, answered by a worker, is nms run's page: probes, detector, cases, and
        # the CPU of nms run with its workers.
        page = httpx.get(process.url + "/metrics", timeout=10).text
        assert 'nms_probe_cycles_total{probe="icmp"}' in page
        assert 'nms_ntus{state="up"} 2.0' in page
        assert "nms_api_rate_limited_total" in page
        cpu = float(page.split("\nprocess_cpu_seconds_total ")[1].split()[0])
        assert cpu > _cpu_seconds(parent) + 0.2  # the workers' start-up among it
        assert httpx.get(process.url + "/metrics?per_ntu=bad", timeout=10).status_code == 400
        # SIGTERM: the workers stop, then nms run, cleanly.
        assert process.stop() == 0
        assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        assert "stopped cleanly" in process.log().rstrip().rsplit("\n", 1)[-1]


def _api_workers(parent: int) -> list[int]:
    """The pids of ``parent``'s children that are API workers."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if b"nms.app.api_workers" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _all_up(process: NmsProcess) -> list[str] | None:
    ntus = process.get("/v1/ntus", limit=10)["data"]
    statuses = [process.status(ntu["id"])["status"] for ntu in ntus]
    return sorted(ntu["id"] for ntu in ntus) if set(statuses) == {"up"} else None


def _reactive_case(ntu: str) -> dict[str, str]:
    return {
        "ntu_id": ntu,
        "customer_id": "acme",
        "summary": "Slow browsing at the depot",
        "type": "incident",
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
