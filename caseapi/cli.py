"""Public: the case service's command-line commands, to mount in a host CLI.

``add_apikey_commands(subparsers)`` adds ``apikey create|list|revoke``; dispatch
``args.command == "apikey"`` to ``run_apikey_command(args)``, which returns the exit
code. ``add_report_commands`` / ``run_report_command`` do the same for ``report``,
``add_user_commands`` / ``run_user_command`` for ``user`` (web console accounts).
"""

from __future__ import annotations

from caseapi.auth.cli import add_apikey_commands, apikey_main, run_apikey_command
from caseapi.reports.cli import add_report_commands, run_report_command
from caseapi.users.cli import add_user_commands, run_user_command, user_main

__all__ = [
    "add_apikey_commands",
    "add_report_commands",
    "add_user_commands",
    "apikey_main",
    "run_apikey_command",
    "run_report_command",
    "run_user_command",
    "user_main",
]
