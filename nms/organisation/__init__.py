"""The support organisation file: teams, members, routing (and on-call, escalation)."""
