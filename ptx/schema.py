"""The journal's SQLite schema: its tables and version, and creating or migrating them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

SCHEMA_VERSION = 3

_SCHEMA = (
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL,
        tag TEXT NOT NULL, jobs INTEGER NOT NULL, tasks_file TEXT NOT NULL, argv TEXT NOT NULL,
        resumed_from TEXT REFERENCES runs (run_id),
        owner_pid INTEGER NOT NULL, owner_create_time REAL NOT NULL,
        report TEXT
    )""",
    "CREATE INDEX runs_by_start ON runs (started_at)",
    "CREATE INDEX runs_open ON runs (run_id) WHERE ended_at IS NULL",
    """CREATE TABLE attempts (
        run_id TEXT NOT NULL REFERENCES runs (run_id), task TEXT NOT NULL,
        attempt INTEGER NOT NULL, command_hash TEXT NOT NULL,
        pgid INTEGER, pgid_create_time REAL, started_at REAL NOT NULL, ended_at REAL,
        exit_code INTEGER, status TEXT NOT NULL, log_path TEXT NOT NULL,
        PRIMARY KEY (run_id, task, attempt)
    ) WITHOUT ROWID""",
    """CREATE INDEX attempts_history ON attempts (task, command_hash, ended_at)
        WHERE status = 'succeeded'""",
)
# Schema 2 added the finished run's report (JSON), so `ptx report` prints it again exactly.
_MIGRATE_1_TO_2 = "ALTER TABLE runs ADD COLUMN report TEXT"
# Schema 3 dropped the index of open attempts: every attempt's start and end paid a page of
# it in the WAL, and open runs (runs_open) lead to open attempts just as fast.
_MIGRATE_2_TO_3 = "DROP INDEX IF EXISTS attempts_open"


def ensure_schema(conn: sqlite3.Connection) -> int | None:
    """Create the schema in an empty store or migrate an older one, inside the caller's
    transaction; return the version found when this ptx cannot use the store, else None."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return None
    if version in (1, 2):
        for migration in (_MIGRATE_1_TO_2, _MIGRATE_2_TO_3)[version - 1 :]:
            conn.execute(migration)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return None
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return None
    # A newer ptx's schema, or foreign data: refusing beats guessing.
    return version
