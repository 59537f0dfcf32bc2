"""The import contract that ``scripts/check`` runs: probes <- nms -> caseapi's public modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import_contract.py"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    base = {
        "probes/__init__.py": "",
        "nms/__init__.py": "",
        "caseapi/__init__.py": '__all__ = ["incidents"]\n',
        "caseapi/incidents.py": "",
        "caseapi/models.py": "",
        "caseapi/cases/__init__.py": "",
        "caseapi/cases/service.py": "",
    }
    for name, text in (base | files).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False
    )


def test_the_project_keeps_the_contract() -> None:
    result = _run(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept" in result.stdout


@pytest.mark.parametrize(
    ("path", "source", "rule"),
    [
        (
            "caseapi/cases/service.py",
            "from nms.clock import Clock\n",
            "caseapi must not import nms",
        ),
        ("caseapi/x.py", "def f():\n    import nms.app.cli\n", "caseapi must not import nms"),
        ("probes/icmp.py", "from nms import clock\n", "probes must not import nms or caseapi"),
        ("probes/snmp.py", "import caseapi.incidents\n", "probes must not import nms or caseapi"),
        (
            "nms/run.py",
            "from caseapi.cases.service import CaseService\n",
            "nms may import only caseapi's public modules",
        ),
        ("nms/run.py", "from caseapi import cases\n", "nms may import only caseapi's public"),
        ("nms/run.py", "from caseapi.models import Case\n", "nms may import only caseapi's public"),
        (
            "nms/run.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import caseapi.core.base\n",
            "nms may import only caseapi's public modules",
        ),
    ],
)
def test_a_wrong_way_import_fails_the_check(
    tmp_path: Path, path: str, source: str, rule: str
) -> None:
    result = _run(_tree(tmp_path, {path: source}))
    assert result.returncode == 1
    assert f"{path}:" in result.stdout
    assert rule in result.stdout


def test_public_modules_and_same_package_imports_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "nms/run.py": (
                "from caseapi.incidents import IncidentOpen\nfrom caseapi import incidents\n"
            ),
            "caseapi/cases/service.py": "from caseapi.incidents import IncidentOpen\n",
            "probes/icmp.py": "import asyncio\nfrom probes import errors\n",
        },
    )
    result = _run(root)
    assert result.returncode == 0, result.stdout
