"""The ``nms`` command.

Exit codes: 0 success; 1 a runtime failure (e.g. the database is unreachable);
2 something to fix before it can start (configuration, inventory, permissions).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from caseapi.database import CaseApiError, mask_url
from caseapi.secrets import SecretDecryptError, SecretKeyError
from nms.app.settings import DatabaseSettings, Settings, format_duration, load_settings
from nms.clock import SystemClock
from nms.errors import (
    ApiWorkersError,
    ConfigError,
    InventoryError,
    ListenError,
    OrganisationError,
)
from nms.inventory.loader import load_inventory
from probes.errors import IcmpPermissionError

EXIT_RUNTIME = 1
EXIT_USAGE = 2

log = logging.getLogger("nms")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nms",
        description="Network monitoring for NTU fleets, with proactive support cases.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run probes, detector, case service, API and /metrics in one process",
        description=(
            "Run everything in one process on the embedded default: SQLite, in-process "
            "bus. Sweeps every NTU of the inventory by ICMP, opens a P1 case for an NTU "
            "down for detector.down_after (10m), solves it on restoration, and serves "
            "the API and Prometheus /metrics. SIGHUP (or editing the file) reloads the "
            "inventory; SIGTERM / Ctrl-C stops cleanly. With --api-workers N the API is "
            "served by N worker processes, so API load does not take the probes' core."
        ),
    )
    _add_config(run)
    run.add_argument("--inventory", type=Path, metavar="FILE", help="inventory YAML or CSV")
    run.add_argument("--listen", metavar="HOST:PORT", help="API address (default 127.0.0.1:8080)")
    run.add_argument("--database", metavar="URL", help="SQLAlchemy URL (default SQLite ./nms.db)")
    run.add_argument(
        "--api-workers",
        dest="workers",
        type=int,
        metavar="N",
        help="serve the API from N worker processes, off the probes' core (api.workers; "
        "default 1: this process serves it)",
    )

    probe = sub.add_parser(
        "probe",
        help="distributed: probe one shard of the NTUs, publish to the MQTT bus",
        description=(
            "Probe the NTUs of shard I of N (an NTU belongs to shard hashmod(id, N) + 1, "
            "as Prometheus' hashmod computes it) and publish the results to the MQTT "
            "broker of bus.url. Needs no database. Serves /metrics and /healthz on "
            "cluster.probe_listen. Keeps a bounded buffer while the broker is away."
        ),
    )
    probe.add_argument(
        "--shard", required=True, metavar="I/N", help="this worker's shard, e.g. 1/2"
    )
    _add_config(probe)
    probe.add_argument("--inventory", type=Path, metavar="FILE", help="inventory YAML or CSV")
    probe.add_argument(
        "--listen", metavar="HOST:PORT", help="/metrics and /healthz (default 127.0.0.1:9101)"
    )

    detector = sub.add_parser(
        "detector",
        help="distributed: the detector (one leads, others stand by)",
        description=(
            "Consume the probe shards' results from the MQTT bus, keep every NTU's state "
            "and open and solve cases. Run two or more: the one holding the database's "
            "leader lock works, the others stand by and take over within "
            "cluster.leader_check when it goes. Also runs the case ticker, notifications "
            "and maintenance. /metrics and /healthz on cluster.detector_listen."
        ),
    )
    _add_config(detector)
    detector.add_argument("--inventory", type=Path, metavar="FILE", help="inventory YAML or CSV")
    detector.add_argument("--database", metavar="URL", help="SQLAlchemy URL (PostgreSQL)")
    detector.add_argument(
        "--listen", metavar="HOST:PORT", help="/metrics and /healthz (default 127.0.0.1:9102)"
    )

    api = sub.add_parser(
        "api",
        help="distributed: serve the case API (stateless; run as many as needed)",
        description="Serve the case API on the shared database. Answers 503 with "
        "Retry-After while the database is unreachable; /metrics serves its rate limit "
        "counters (share the limits between replicas with api.rate_limits.storage_url). "
        "With --workers N, N processes serve the address (one per core uses them all); "
        "each keeps its own in-memory rate limits unless api.rate_limits.storage_url "
        "is set, and /metrics sums the workers' counters.",
    )
    _add_config(api)
    api.add_argument("--database", metavar="URL", help="SQLAlchemy URL (PostgreSQL)")
    api.add_argument("--listen", metavar="HOST:PORT", help="API address (default 127.0.0.1:8080)")
    api.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes serving the API (api.workers; default 1: this process)",
    )

    inventory = sub.add_parser("inventory", help="inventory tools")
    inv_sub = inventory.add_subparsers(dest="inventory_command", required=True, metavar="ACTION")
    check = inv_sub.add_parser(
        "check",
        help="validate an inventory file",
        description="Validate an inventory file; print every problem with file, line "
        "and field. Exit 0 when valid, 2 when not.",
    )
    check.add_argument("file", type=Path, metavar="FILE")

    organisation = sub.add_parser("organisation", help="support organisation tools")
    org_sub = organisation.add_subparsers(
        dest="organisation_command", required=True, metavar="ACTION"
    )
    org_check = org_sub.add_parser(
        "check",
        help="validate an organisation file",
        description="Validate an organisation file (teams, members, routing, on-call, "
        "escalation); print every problem with file, line and field. Calendars are "
        "checked against cases.calendars of --config. Exit 0 when valid, 2 when not.",
    )
    org_check.add_argument("file", type=Path, metavar="FILE")
    _add_config(org_check)

    config = sub.add_parser("config", help="configuration tools")
    cfg_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = cfg_sub.add_parser(
        "show",
        help="validate and print the effective configuration",
        description="Merge defaults, the YAML file and NMS_ variables; print the result.",
    )
    _add_config(show)

    # The web stack is imported lazily elsewhere; key management is light enough.
    from caseapi.cli import add_apikey_commands, add_report_commands, add_user_commands

    add_apikey_commands(sub, default_database=DatabaseSettings().url)
    add_user_commands(sub, default_database=DatabaseSettings().url)
    add_report_commands(sub, default_database=DatabaseSettings().url)

    from nms.app.secrets import add_secrets_commands

    add_secrets_commands(sub, _add_config)

    from nms.app.demo import add_demo_command

    add_demo_command(sub)

    from nms.app.mail import add_mail_commands

    add_mail_commands(sub, _add_config)
    return parser


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML settings file; NMS_ environment variables override it "
        "(e.g. NMS_DETECTOR__DOWN_AFTER=5m)",
    )


def _override(
    settings: Settings, section: str, *, flag: str | None = None, **values: Any
) -> Settings:
    current: BaseModel = getattr(settings, section)
    try:
        updated = type(current).model_validate(current.model_dump() | values)
    except ValidationError as exc:
        option = flag or next(iter(values))
        problems = [
            f"command line: --{option}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ConfigError(problems) from None
    return settings.model_copy(update={section: updated})


def _settings_for_run(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "inventory", None) is not None:
        settings = _override(settings, "inventory", path=args.inventory)
    if args.listen is not None:
        if args.command == "probe":
            settings = _override(settings, "cluster", flag="listen", probe_listen=args.listen)
        elif args.command == "detector":
            settings = _override(settings, "cluster", flag="listen", detector_listen=args.listen)
        else:
            settings = _override(settings, "api", listen=args.listen)
    if getattr(args, "database", None) is not None:
        settings = _override(settings, "database", url=args.database)
    if getattr(args, "workers", None) is not None:
        flag = "api-workers" if args.command == "run" else "workers"
        settings = _override(settings, "api", flag=flag, workers=args.workers)
    return settings


def _settings_for_secrets(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "database", None) is not None:
        settings = _override(settings, "database", url=args.database)
    return settings


def setup_logging(level: str, *, tag: str = "") -> None:
    """Log to stderr in UTC; ``tag`` (e.g. ``worker 2``) goes in front of each logger name."""
    logging.Formatter.converter = time.gmtime
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)sZ %(levelname)-7s "
        + (f"[{tag}] " if tag else "")
        + "%(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    # Alembic narrates every migration step at INFO; the runtime logs the outcome.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request at INFO (an API worker's every scrape of nms run's
    # metrics, every webhook sent); the callers log what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _print_problems(title: str, problems: Sequence[str]) -> None:
    print(f"nms: {title}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    # The web stack is imported here, not at the top: keep --help fast.
    from nms.app.loop import run, tune_collector

    settings = _settings_for_run(args)
    setup_logging(settings.log.level)
    tune_collector(settings.runtime.gc_threshold)
    clock = SystemClock()
    event_loop = settings.runtime.event_loop
    try:
        if args.command == "run":
            from nms.app.embedded import run_embedded

            run(run_embedded(settings, clock=clock), event_loop=event_loop)
        elif args.command == "probe":
            from nms.app.probe import run_probe
            from nms.probing.shard import Shard

            try:
                shard = Shard.parse(args.shard)
            except ValueError as exc:
                raise ConfigError([f"command line: --shard: {exc}"]) from None
            run(run_probe(settings, shard, clock=clock), event_loop=event_loop)
        elif args.command == "detector":
            from nms.app.detector import run_detector

            run(run_detector(settings, clock=clock), event_loop=event_loop)
        else:
            from nms.app.api import run_api

            run(run_api(settings, clock=clock), event_loop=event_loop)
    except Exception as exc:
        known = _startup_error(exc)
        if isinstance(known, InventoryError):
            _print_problems("invalid inventory, not started", known.problems)
            return EXIT_USAGE
        if isinstance(known, OrganisationError):
            _print_problems("invalid organisation file, not started", known.problems)
            return EXIT_USAGE
        if isinstance(known, ListenError):
            _print_problems("cannot listen, not started", known.problems)
            return EXIT_USAGE
        if isinstance(known, IcmpPermissionError):
            _print_problems("cannot probe, not started", [str(known)])
            return EXIT_USAGE
        if isinstance(known, SecretKeyError | SecretDecryptError):
            _print_problems("secret key problem, not started", [str(known)])
            return EXIT_USAGE
        if isinstance(known, CaseApiError):
            _print_problems("database problem", [str(known)])
            return EXIT_RUNTIME
        if isinstance(known, ApiWorkersError):
            _print_problems("API workers failed", known.problems)
            return EXIT_RUNTIME
        raise
    return 0


def _startup_error(exc: BaseException) -> BaseException | None:
    """The first error we explain to the user, inside task groups too."""
    if isinstance(
        exc,
        InventoryError
        | OrganisationError
        | ListenError
        | IcmpPermissionError
        | CaseApiError
        | ApiWorkersError,
    ):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _startup_error(inner)
            if found is not None:
                return found
    return None


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _cmd_inventory_check(args: argparse.Namespace) -> int:
    from nms.app.secrets import settings_box

    # enc: credentials open with the keys of the environment (NMS_SECRETS__*).
    inventory = load_inventory(args.file, secrets=settings_box(load_settings(None)))
    counts = ", ".join(
        (
            _count(len(inventory.customers), "customer", "customers"),
            _count(len(inventory.ntus), "NTU", "NTUs"),
            _count(len(inventory.nodes), "upstream node", "upstream nodes"),
        )
    )
    print(f"{args.file}: valid: {counts}")
    return 0


def _cmd_organisation_check(args: argparse.Namespace) -> int:
    from nms.app.wiring import load_checked_organisation

    settings = load_settings(args.config)
    settings = _override(settings, "organisation", file=args.file)
    organisation = load_checked_organisation(settings)
    counts = ", ".join(
        (
            _count(len(organisation.teams), "team", "teams"),
            _count(len(organisation.members), "member", "members"),
            _count(len(organisation.routing), "routing rule", "routing rules"),
        )
    )
    print(f"{args.file}: valid: {counts}")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    for section, model in settings:
        _print_section(section, model, indent=0)
    return 0


def _print_section(name: str, value: object, indent: int) -> None:
    pad = "  " * indent
    if isinstance(value, BaseModel):
        print(f"{pad}{name}:")
        for key, item in value:
            _print_section(key, item, indent + 1)
        return
    if isinstance(value, dict) and value:
        # A mapping of named entries (cases.calendars), shown like a section.
        print(f"{pad}{name}:")
        for key, item in value.items():
            _print_section(str(key), item, indent + 1)
        return
    shown: object = value
    if isinstance(value, dict):
        shown = "{}"
    elif isinstance(value, timedelta):
        shown = format_duration(value)
    elif isinstance(value, bool):
        shown = str(value).lower()
    elif isinstance(value, str) and "://" in value:
        shown = mask_url(value)  # database, bus and MQTT URLs may carry a password
    elif isinstance(value, tuple | list):
        # As YAML writes a list (api.trusted_proxies), not as Python's repr.
        shown = "[" + ", ".join(str(item) for item in value) + "]"
    print(f"{pad}{name}: {'null' if shown is None else shown}")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``nms config show | head``): not an error of ours.
        # Point stdout at /dev/null so that the interpreter's final flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("run", "probe", "detector", "api"):
            return _cmd_run(args)
        if args.command == "inventory":
            return _cmd_inventory_check(args)
        if args.command == "organisation":
            return _cmd_organisation_check(args)
        if args.command == "demo":
            from nms.app.demo import run_demo

            return run_demo(args)
        if args.command == "apikey":
            from caseapi.cli import run_apikey_command

            return run_apikey_command(args)
        if args.command == "user":
            from caseapi.cli import run_user_command

            return run_user_command(args)
        if args.command == "mail":
            from nms.app.mail import run_mail_command

            return run_mail_command(args, _settings_for_secrets)
        if args.command == "secrets":
            from nms.app.secrets import run_secrets_command

            return run_secrets_command(args, _settings_for_secrets)
        if args.command == "report":
            from caseapi.cli import run_report_command

            return run_report_command(args)
        return _cmd_config_show(args)
    except ConfigError as exc:
        _print_problems("invalid configuration, not started", exc.problems)
        return EXIT_USAGE
    except InventoryError as exc:
        _print_problems("invalid inventory", exc.problems)
        return EXIT_USAGE
    except OrganisationError as exc:
        _print_problems("invalid organisation file", exc.problems)
        return EXIT_USAGE
    except (SecretKeyError, SecretDecryptError) as exc:
        _print_problems("secret key problem", [str(exc)])
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
