"""TEMPORARY re-export for ``nms``: the ticker lives in ``caseapi.cases.ticker``.

Delete once ``nms`` runs the case loops through ``caseapi.app.CaseWorkers``.
"""

from __future__ import annotations

from caseapi.cases.ticker import TICKER_ACTOR, CaseTicker

__all__ = ["TICKER_ACTOR", "CaseTicker"]
