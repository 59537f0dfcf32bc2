"""The database fixtures of tests/caseapi (SQLite and PostgreSQL), for detector tests."""

from tests.caseapi.conftest import (  # noqa: F401 - re-exported fixtures
    database,
    pg_server,
    sqlite_sessionmaker,
    sqlite_template,
)
