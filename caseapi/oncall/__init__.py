"""On-call rotations, the escalation matrix and staff alerts (issue 16, items 2 and 3)."""
