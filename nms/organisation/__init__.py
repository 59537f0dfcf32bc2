"""The support organisation file: teams, members, routing (and on-call, escalation)."""

# The on-call and escalation sections register their parser and writer on import.
from nms.organisation import oncall as _oncall  # noqa: F401
