"""The README's promises: two set-up commands that work, examples that stay true."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from nms.app.settings import Settings, load_settings
from nms.inventory.loader import load_inventory

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def setup_block() -> list[str]:
    section = README.split("## Set-up: two commands", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("#")[0].strip() for line in block.group(1).strip().splitlines()]


def test_set_up_is_two_commands_and_ci_runs_the_test_one():
    commands = setup_block()
    assert commands == ["scripts/nms run --inventory examples/inventory.yaml", "scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nscripts/test" in ci


def test_the_run_command_works_from_a_shell():
    # The wrapper sets itself up; a broken wrapper fails here, not in a newcomer's hands.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    result = subprocess.run(
        [str(ROOT / "scripts" / "nms"), "--help"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout
    check = subprocess.run(
        [str(ROOT / "scripts" / "nms"), "inventory", "check", "examples/inventory.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert check.returncode == 0, check.stderr


def test_example_settings_file_lists_exactly_the_defaults(monkeypatch):
    for name in list(os.environ):
        if name.startswith("NMS_"):
            monkeypatch.delenv(name)
    assert load_settings(ROOT / "examples" / "nms.yaml") == Settings()


def test_example_inventory_is_valid():
    inventory = load_inventory(ROOT / "examples" / "inventory.yaml")
    assert len(inventory.ntus) == 6


def test_readme_inventory_example_is_valid():
    from nms.inventory.loader import parse_inventory

    section = README.split("## Your fleet", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    inventory = parse_inventory(block.group(1), source="README.md", fmt="yaml")
    assert [n.id for n in inventory.ntus] == ["acme-hq", "acme-depot"]
    assert inventory.ntus[1].snmp is not None


def test_readme_organisation_example_is_valid():
    from nms.organisation.loader import parse_organisation

    section = README.split("## Support organisation", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    organisation = parse_organisation(
        block.group(1), source="README.md", calendars=frozenset({"office-rome"})
    )
    assert [t.id for t in organisation.teams] == ["l1-noc"]
    assert organisation.routing[-1].catch_all
