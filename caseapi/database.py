"""Public: the case database's engine, sessions, migrations and errors.

``make_engine`` accepts ``sqlite+aiosqlite:///path`` and ``postgresql+asyncpg://...``;
``migrate`` brings the schema to the newest revision (safe to run from several
processes at once on PostgreSQL). Every error raised on purpose derives from
``CaseApiError``. ``RowUpsert`` is the upsert for rows written by the thousand every
second (the detector's states).
"""

from __future__ import annotations

from caseapi.core.database import make_engine, make_sessionmaker, migrate, session_scope
from caseapi.core.errors import (
    CaseApiError,
    DatabaseConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    mask_url,
)
from caseapi.core.upsert import RowUpsert

__all__ = [
    "CaseApiError",
    "DatabaseConfigError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "RowUpsert",
    "make_engine",
    "make_sessionmaker",
    "mask_url",
    "migrate",
    "session_scope",
]
