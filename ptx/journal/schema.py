"""The journal's SQLite schema: its tables and version, creating or migrating them, the
connection settings the journal relies on, and the records its rows are read into."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    from ptx.core.model import Reported

SCHEMA_VERSION = 6
# "ptx\0" in SQLite's header (offset 68), so ptx knows its journal from another program's
# database before writing anything; journals from before it are known by their tables.
APPLICATION_ID = int.from_bytes(b"ptx\0", "big")
_PTX_COLUMNS = {
    "runs": {"run_id", "started_at", "status", "tag", "owner_pid", "owner_create_time"},
    "attempts": {"run_id", "task", "attempt", "command_hash", "started_at", "status"},
}
_PAGE_SIZE = 1024
_CHECKPOINT_BYTES = 80 * 2**20  # of WAL at most between checkpoints

_SCHEMA = (
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL,
        tag TEXT NOT NULL, jobs INTEGER NOT NULL, tasks_file TEXT NOT NULL, argv TEXT NOT NULL,
        resumed_from TEXT REFERENCES runs (run_id),
        owner_pid INTEGER NOT NULL, owner_create_time REAL NOT NULL,
        report TEXT, units INTEGER, options TEXT, integration_branch TEXT, integration_base TEXT
    )""",
    "CREATE INDEX runs_by_start ON runs (started_at)",
    "CREATE INDEX runs_open ON runs (run_id) WHERE ended_at IS NULL",
    """CREATE TABLE attempts (
        run_id TEXT NOT NULL REFERENCES runs (run_id), task TEXT NOT NULL,
        attempt INTEGER NOT NULL, command_hash TEXT NOT NULL,
        pgid INTEGER, pgid_create_time REAL, started_at REAL NOT NULL, ended_at REAL,
        exit_code INTEGER, status TEXT NOT NULL, log_path TEXT NOT NULL,
        branch TEXT, commit_sha TEXT, integration TEXT,
        cost_usd REAL, input_tokens INTEGER, output_tokens INTEGER, session_id TEXT,
        reported TEXT,
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
# Schema 4 added how many units a run selected (a run with none never becomes what --resume
# or `ptx report` pick) and the options a --resume keeps (JSON, see run/resume.py).
_MIGRATE_3_TO_4 = (
    "ALTER TABLE runs ADD COLUMN units INTEGER",
    "ALTER TABLE runs ADD COLUMN options TEXT",
)
# Schema 5 records isolated runs: the integration branch and its base per run, and per
# attempt the task branch, its commit and what integration made of it.
_MIGRATE_4_TO_5 = (
    "ALTER TABLE runs ADD COLUMN integration_branch TEXT",
    "ALTER TABLE runs ADD COLUMN integration_base TEXT",
    "ALTER TABLE attempts ADD COLUMN branch TEXT",
    "ALTER TABLE attempts ADD COLUMN commit_sha TEXT",
    "ALTER TABLE attempts ADD COLUMN integration TEXT",
)
# Schema 6 added what an attempt reports back (PTX_RESULT, claude-json): its cost, tokens and
# agent session, and the whole document as reported (JSON).
_MIGRATE_5_TO_6 = (
    "ALTER TABLE attempts ADD COLUMN cost_usd REAL",
    "ALTER TABLE attempts ADD COLUMN input_tokens INTEGER",
    "ALTER TABLE attempts ADD COLUMN output_tokens INTEGER",
    "ALTER TABLE attempts ADD COLUMN session_id TEXT",
    "ALTER TABLE attempts ADD COLUMN reported TEXT",
)
_MIGRATIONS = (
    (_MIGRATE_1_TO_2,),
    (_MIGRATE_2_TO_3,),
    _MIGRATE_3_TO_4,
    _MIGRATE_4_TO_5,
    _MIGRATE_5_TO_6,
)


def configure(conn: sqlite3.Connection, *, busy_timeout_ms: int) -> None:
    """WAL with synchronous=NORMAL: a crash of ptx loses no commit, no commit waits for a disk."""
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    # Only a new, empty store takes it (and only before WAL mode): each commit of an attempt
    # writes a few small rows, so 1 KiB pages put fewer bytes in the WAL than 4 KiB ones,
    # and the checkpoint at close copies back less.
    conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # A run commits once per attempt; checkpointing every 1,000 pages (the default) fsyncs
    # the database dozens of times in a run of thousands of tasks, with the scheduler
    # waiting. The WAL is checkpointed once, when the journal closes.
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]  # older stores: 4 KiB
    conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_BYTES // page_size}")
    conn.execute("PRAGMA foreign_keys = ON")


def ensure_schema(conn: sqlite3.Connection) -> int | None:
    """Create the schema in an empty store or migrate an older one, inside the caller's
    transaction; return the version found when this ptx cannot use the store, else None."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        pass
    elif 1 <= version < SCHEMA_VERSION:
        for step in _MIGRATIONS[version - 1 :]:
            for migration in step:
                conn.execute(migration)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    else:  # a newer ptx's schema, or foreign data: refusing beats guessing
        return version
    if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # journals older than it
    return None


def looks_like_ptx(conn: sqlite3.Connection) -> bool:
    """A journal written before ptx set its application_id: its tables have ptx's columns."""
    for table, wanted in _PTX_COLUMNS.items():
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not wanted <= columns:
            return False
    return True


ATTEMPT_STATUSES = frozenset(
    {"running", "succeeded", "failed", "timeout", "memory-exceeded", "interrupted", "skipped"}
    | {"integrating", "conflict"}
)
RUN_STATUSES = frozenset({"running", "succeeded", "failed", "interrupted", "crashed"})

SELECT_RUNS = """
    SELECT run_id, started_at, ended_at, status, tag, jobs, tasks_file, argv, resumed_from,
        owner_pid, owner_create_time, units, options
    FROM runs"""
SELECT_ATTEMPTS = """
    SELECT run_id, task, attempt, command_hash, pgid, pgid_create_time, started_at, ended_at,
        exit_code, status, log_path, cost_usd, input_tokens, output_tokens, session_id
    FROM attempts"""


END_ATTEMPT = """
    UPDATE attempts SET ended_at = ?, exit_code = ?, status = ?, cost_usd = ?,
        input_tokens = ?, output_tokens = ?, session_id = ?, reported = ?
    WHERE run_id = ? AND task = ? AND attempt = ?"""


def reported_values(reported: Reported | None) -> tuple[object, ...]:
    """The reported columns of END_ATTEMPT: the known fields, then the whole document."""
    if reported is None or reported.data is None:
        return (None, None, None, None, None)
    document = json.dumps(reported.data, ensure_ascii=False, separators=(",", ":"))
    known = (reported.cost_usd, reported.input_tokens, reported.output_tokens)
    return (*known, reported.session_id, document)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    run_id: str
    started_at: float
    ended_at: float | None
    status: str  # "running" until finish_run (or the reaper) closes the run
    tag: str
    jobs: int
    tasks_file: str
    argv: tuple[str, ...]
    resumed_from: str | None
    owner_pid: int
    owner_create_time: float
    units: int | None = None  # None: recorded before schema 4
    options: str | None = None  # JSON of the options a --resume keeps; None before schema 4


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    run_id: str
    task: str
    attempt: int
    command_hash: str
    pgid: int | None
    pgid_create_time: float | None  # of the group leader: compare before killing a reused pgid
    started_at: float
    ended_at: float | None
    exit_code: int | None
    status: str
    log_path: str
    cost_usd: float | None = None  # what the attempt reported back, when it did
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None


def run_info(row: sqlite3.Row) -> RunInfo:
    fields = dict(zip(row.keys(), row, strict=True))
    return RunInfo(**{**fields, "argv": tuple(json.loads(fields["argv"]))})


def attempt_record(row: sqlite3.Row) -> AttemptRecord:
    return AttemptRecord(**dict(zip(row.keys(), row, strict=True)))
