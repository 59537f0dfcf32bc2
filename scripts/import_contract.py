"""The import contract: imports run one way, probes <- nms -> caseapi.

1. ``probes`` imports nothing of ``nms`` or ``caseapi``.
2. ``caseapi`` imports nothing of ``nms``: it is a case service that can be used
   without our detector, and declares what it needs (a clock protocol, its settings,
   its inbound incident contract).
3. ``nms`` imports ``caseapi`` only through its public modules, the ones that
   ``caseapi/__init__.py`` names in ``__all__`` (``caseapi.incidents``,
   ``caseapi.app``, ``caseapi.settings``, ...): never a domain folder
   (``caseapi.cases.service``), ``caseapi.core`` or the ORM models.

Every ``import`` and ``from ... import`` statement is checked, at any depth (inside
functions and ``TYPE_CHECKING`` blocks too). Usage: ``python scripts/import_contract.py
[ROOT]``; prints each violation as ``file:line: rule`` and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Violation:
    path: Path
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported}: {self.rule}"


def _imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from caseapi import cases`` names the module ``caseapi.cases``.
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def public_modules(root: Path) -> frozenset[str]:
    """``caseapi.<name>`` for every name in ``__all__`` of ``caseapi/__init__.py``."""
    tree = ast.parse((root / "caseapi" / "__init__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            names = ast.literal_eval(node.value)
            return frozenset(f"caseapi.{name}" for name in names)
    return frozenset()


def _rule(package: str, imported: str, public: frozenset[str]) -> str | None:
    top = imported.split(".")[0]
    if package == "probes" and top in ("nms", "caseapi"):
        return "probes must not import nms or caseapi"
    if package == "caseapi" and top == "nms":
        return "caseapi must not import nms"
    if package == "nms" and top == "caseapi":
        parts = imported.split(".")
        if len(parts) < 2 or ".".join(parts[:2]) not in public:
            return (
                "nms may import only caseapi's public modules (" + ", ".join(sorted(public)) + ")"
            )
    return None


def check(root: Path) -> list[Violation]:
    """Every violation of the contract in the source tree at ``root``."""
    public = public_modules(root)
    violations = []
    for package in ("probes", "caseapi", "nms"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, imported in _imports(tree):
                # ``from caseapi.incidents import IncidentOpen`` yields
                # ``caseapi.incidents.IncidentOpen``: the module part decides.
                rule = _rule(package, imported, public)
                if rule is not None:
                    violations.append(Violation(path.relative_to(root), line, imported, rule))
    return violations


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    violations = check(root)
    for violation in violations:
        print(violation)
    if violations:
        print(f"import contract: {len(violations)} violation(s)", file=sys.stderr)
        return 1
    print("import contract: kept (probes <- nms -> caseapi public modules)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
