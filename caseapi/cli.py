"""Public: the case service's command-line commands, to mount in a host CLI.

``add_apikey_commands(subparsers)`` adds ``apikey create|list|revoke``; dispatch
``args.command == "apikey"`` to ``run_apikey_command(args)``, which returns the exit
code.
"""

from __future__ import annotations

from caseapi.auth.cli import add_apikey_commands, apikey_main, run_apikey_command

__all__ = ["add_apikey_commands", "apikey_main", "run_apikey_command"]
