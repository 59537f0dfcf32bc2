"""``nms report``: a customer's (or the fleet's) report from the command line.

``nms report --customer ID --month 2026-11 --format pdf|csv|json [--report
availability|sla] [--output FILE]``: the same reports as ``GET /v1/reports/...``,
read straight from the database (the operator sees every customer). Without
``--output`` the report goes to stdout. Exit codes: 0 success, 1 the database is
unreachable, 2 a bad parameter (unknown customer, bad month or range), named.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Final

from caseapi.clock import Clock, SystemClock
from caseapi.core.config import DatabaseSettings
from caseapi.core.errors import DatabaseError
from caseapi.reports.errors import CustomerNotFoundError, ReportParameterError

# The formats: what ``--format`` offers, without importing the report stack (fpdf2,
# the ORM) just to build the parser of every ``nms`` command.
FORMATS: Final = ("json", "csv", "pdf")

EXIT_RUNTIME: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_DATABASE_URL: Final = DatabaseSettings().url


def _timestamp(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected ISO 8601 with a UTC offset, got {value!r}"
        ) from None


def add_report_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    default_database: str = DEFAULT_DATABASE_URL,
) -> None:
    """Add ``report``.

    Args:
        subparsers: The object returned by ``parser.add_subparsers()``.
        default_database: ``--database`` default (the settings' ``database.url``).
    """
    report = subparsers.add_parser(
        "report",
        help="availability / SLA report (JSON, CSV) or a customer's monthly PDF",
        description="A customer's (or, without --customer, the fleet's) availability or "
        "SLA report for a calendar month (in the customer's time zone) or a range; "
        "--format pdf is the customer's monthly service report.",
    )
    report.add_argument("--customer", metavar="ID", help="customer id (default: the fleet)")
    report.add_argument("--month", metavar="YYYY-MM", help="calendar month (default: this one)")
    report.add_argument("--start", type=_timestamp, metavar="ISO", help="range start")
    report.add_argument("--end", type=_timestamp, metavar="ISO", help="range end (exclusive)")
    report.add_argument("--format", choices=FORMATS, default="json")
    report.add_argument(
        "--report",
        choices=("availability", "sla"),
        default="availability",
        help="which report for json/csv (default availability)",
    )
    report.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    report.add_argument(
        "--database",
        default=default_database,
        metavar="URL",
        help=f"SQLAlchemy URL (default {default_database})",
    )


def run_report_command(args: argparse.Namespace, *, clock: Clock | None = None) -> int:
    """Run a parsed ``report`` command; return the exit code."""
    try:
        data = asyncio.run(_run(args, clock or SystemClock()))
    except ReportParameterError as exc:
        print(f"nms: --{exc.field}: {str(exc).split(': ', 1)[-1]}", file=sys.stderr)
        return EXIT_USAGE
    except CustomerNotFoundError as exc:
        print(f"nms: --customer: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseError as exc:
        print(f"nms: database problem: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    if args.output is not None:
        args.output.write_bytes(data)
        print(f"wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


async def _run(args: argparse.Namespace, clock: Clock) -> bytes:
    from caseapi.core.database import make_engine, make_sessionmaker, migrate
    from caseapi.reports.document import monthly_pdf
    from caseapi.reports.render import availability_csv, sla_csv
    from caseapi.reports.schemas import ReportFormat, availability_public, sla_public
    from caseapi.reports.service import ReportQuery, ReportService

    engine = make_engine(args.database)
    try:
        await migrate(engine)
        service = ReportService(sessionmaker=make_sessionmaker(engine), clock=clock)
        query = ReportQuery(
            customer=args.customer, month=args.month, start=args.start, end=args.end
        )
        fmt = ReportFormat(args.format)
        if fmt is ReportFormat.PDF:
            if args.customer is None:
                raise ReportParameterError("customer", "the PDF service report is per customer")
            availability = await service.availability(principal=None, query=query)
            sla = await service.sla(principal=None, query=query)
            return monthly_pdf(availability, sla)
        if args.report == "sla":
            sla = await service.sla(principal=None, query=query)
            if fmt is ReportFormat.CSV:
                return sla_csv(sla).encode()
            return sla_public(sla).model_dump_json(indent=2).encode() + b"\n"
        availability = await service.availability(principal=None, query=query)
        if fmt is ReportFormat.CSV:
            return availability_csv(availability).encode()
        return availability_public(availability).model_dump_json(indent=2).encode() + b"\n"
    finally:
        await engine.dispose()
