"""Reading the committed dashboards and rules: their PromQL, variables and metric names."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2] / "dashboards"
GRAFANA = ROOT / "grafana"
PROMETHEUS = ROOT / "prometheus"

#: Exported only by ``nms probe`` / ``nms detector`` (the queries that use them fall back
#: to ``or vector(0)`` in the embedded wiring); a real Prometheus scrapes them in
#: ``tests/distributed/test_cluster.py``.
DISTRIBUTED_ONLY = frozenset(
    {
        "nms_probe_shard_up",
        "nms_bus_observation_delay_seconds_bucket",
        "nms_bus_buffered_batches",
        "nms_bus_messages_rejected_total",
    }
)

#: What Grafana would put in for its built-in variables, for a test Prometheus that
#: scrapes every second and has a few minutes of data.
BUILTINS = {
    "__rate_interval": "15s",
    "__interval": "1s",
    "__range": "10m",
    "datasource": "prometheus",
}

_COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*[-+]?[0-9.e]+\s*$")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_NUMBERS = re.compile(r"(?<![A-Za-z0-9_:])[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "e"}


@dataclass(frozen=True)
class Query:
    where: str
    expr: str


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GRAFANA.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows
    return found


def dashboard_queries() -> list[Query]:
    queries = []
    for name, board in dashboards().items():
        for panel in panels(board):
            for target in panel.get("targets", []):
                where = f"{name}: panel {panel['title']!r} target {target.get('refId')}"
                queries.append(Query(where, target["expr"]))
    return queries


def rules() -> list[dict[str, Any]]:
    found = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append({**rule, "file": path.name, "group": group["name"]})
    return found


def rule_queries() -> list[Query]:
    """Recording rules as they are; alerts without their threshold (the value part)."""
    queries = []
    for rule in rules():
        expr = " ".join(str(rule["expr"]).split())
        if "alert" in rule:
            value = _COMPARISON.sub("", expr)
            assert value != expr, f"alert {rule['alert']}: expected '<value> <op> <number>'"
            queries.append(Query(f"{rule['file']}: alert {rule['alert']} (value)", value))
        else:
            queries.append(Query(f"{rule['file']}: record {rule['record']}", expr))
    return queries


def substitute(expr: str, variables: dict[str, str]) -> str:
    values = {**BUILTINS, **variables}

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"no value for variable ${name} in {expr!r}")
        return values[name]

    result = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)
    return result


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (functions, keywords and labels removed)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    functions = set(_CALL.findall(text))
    names = set()
    for ident in _IDENT.findall(text):
        if ident in functions or ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names
