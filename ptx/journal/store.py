"""The crash-safe state store of runs: `.ptx/ptx.db` (SQLite, WAL), opened, written, closed."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import psutil

from ptx.executors.proctree import run_owner_alive
from ptx.journal.integration import IntegrationRecords
from ptx.journal.opening import JournalError, connect, failure
from ptx.journal.queries import RunQueries
from ptx.journal.schema import (
    ATTEMPT_STATUSES,
    END_ATTEMPT,
    RUN_STATUSES,
    SELECT_ATTEMPTS,
    SELECT_RUNS,
    AttemptRecord,
    RunInfo,
    attempt_record,
    reported_values,
    run_info,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from typing_extensions import Self

    from ptx.core.model import Reported

DB_NAME = "ptx.db"


class Journal(IntegrationRecords, RunQueries):
    """Runs and attempts in SQLite; every write is committed before its call returns.

    WAL with synchronous=NORMAL survives a crash of ptx (kill -9) at any point; a power loss
    or OS crash may lose the last few commits but never corrupts the file. One connection is
    shared by the scheduler and pool threads (check_same_thread=False), serialised by a lock.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: Path) -> Journal:
        """Open (creating if needed) `<state_dir>/ptx.db` for writing; refuse a file that is not
        a ptx journal, or is of another schema version, before changing it."""
        path = state_dir / DB_NAME
        return cls(connect(path, readonly=False), path)

    @classmethod
    def read(cls, state_dir: Path) -> Journal:
        """Open an existing `<state_dir>/ptx.db` only to read it: it may be on a read-only disk."""
        path = state_dir / DB_NAME
        return cls(connect(path, readonly=True), path)

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(sqlite3.Error):  # a busy reader only postpones it
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[sqlite3.Connection]:
        """The connection, to this thread alone while it is used."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def _write(self, sql: str, params: Sequence[object]) -> int:
        """One statement, committed at once; its rowcount. Every attempt's start and end comes
        this way, so it is not a generator to enter and leave."""
        conn = self._conn
        with self._lock:
            try:
                count = conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc
        return count

    def _failed(self, exc: sqlite3.Error) -> JournalError:
        return failure(exc, self._path, "cannot use")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._guarded() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _update_one(self, sql: str, params: Sequence[object], what: str) -> None:
        if self._write(sql, params) != 1:
            raise JournalError(f"state store {self._path}: no {what}")

    def start_run(  # noqa: PLR0913 - a run is described by this many independent facts
        self,
        *,
        tag: str,
        jobs: int,
        tasks_file: str,
        argv: Sequence[str],
        resumed_from: str | None = None,
        started_at: float | None = None,
        units: int | None = None,
        options: str | None = None,
    ) -> str:
        """Record a run owned by this process; return its id, e.g. "20261125-173512-3f9a".
        `units`: how many it selected (0: nothing to do); `options`: what a --resume keeps."""
        started = time.time() if started_at is None else started_at
        owner = psutil.Process()
        identity = (owner.pid, owner.create_time())
        with self._transaction() as conn:
            if resumed_from is not None and self._fetch_run(conn, resumed_from) is None:
                raise JournalError(f"no run {resumed_from} to resume from")
            run_id = _new_run_id(conn, started)
            argv_json = json.dumps(list(argv))
            row = (run_id, started, tag, jobs, tasks_file, argv_json, resumed_from, *identity)
            conn.execute(
                "INSERT INTO runs (run_id, started_at, status, tag, jobs, tasks_file, argv,"
                " resumed_from, owner_pid, owner_create_time, units, options)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, units, options),
            )
        return run_id

    def finish_run(self, run_id: str, *, status: str, ended_at: float) -> None:
        _check_status(status, RUN_STATUSES)
        sql = "UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?"
        self._update_one(sql, (status, ended_at, run_id), f"run {run_id}")

    def attempt_started(  # noqa: PLR0913 - the columns of an attempt as it starts
        self,
        *,
        run_id: str,
        task: str,
        attempt: int,
        command_hash: str,
        log_path: str,
        started_at: float,
        pgid: int | None = None,
        create_time: float | None = None,
    ) -> None:
        """With `pgid` when its process already runs: one commit, not two."""
        self._write(
            "INSERT INTO attempts (run_id, task, attempt, command_hash, started_at, status,"
            " log_path, pgid, pgid_create_time) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            (run_id, task, attempt, command_hash, started_at, log_path, pgid, create_time),
        )

    def attempt_spawned(
        self, *, run_id: str, task: str, attempt: int, pgid: int, create_time: float
    ) -> None:
        sql = (
            "UPDATE attempts SET pgid = ?, pgid_create_time = ?"
            " WHERE run_id = ? AND task = ? AND attempt = ?"
        )
        what = f"attempt {attempt} of task {task} in run {run_id}"
        self._update_one(sql, (pgid, create_time, run_id, task, attempt), what)

    def attempt_ended(  # noqa: PLR0913 - the columns of an attempt as it ends
        self,
        *,
        run_id: str,
        task: str,
        attempt: int,
        ended_at: float,
        exit_code: int | None,
        status: str,
        reported: Reported | None = None,
    ) -> None:
        """`reported`: what the attempt reported back, if anything."""
        _check_status(status, ATTEMPT_STATUSES)
        params = (ended_at, exit_code, status, *reported_values(reported), run_id, task, attempt)
        if self._write(END_ATTEMPT, params) != 1:
            what = f"attempt {attempt} of task {task} in run {run_id}"
            raise JournalError(f"state store {self._path}: no {what}")

    def save_report(self, run_id: str, report: str) -> None:
        """Keep the finished run's report (the `--report-json` text) with the run."""
        sql = "UPDATE runs SET report = ? WHERE run_id = ?"
        self._update_one(sql, (report, run_id), f"run {run_id}")

    def orphaned_attempts(self) -> list[AttemptRecord]:
        """Spawned, unended attempts of runs whose owner process is gone: their groups may live."""
        # A run that ends has ended its attempts first: only open runs can have open attempts.
        owners_sql = "SELECT run_id, owner_pid, owner_create_time FROM runs WHERE ended_at IS NULL"
        sql = SELECT_ATTEMPTS + (
            " WHERE run_id = ? AND ended_at IS NULL AND pgid IS NOT NULL"
            " ORDER BY started_at, task, attempt"
        )
        with self._guarded() as conn:
            owners = conn.execute(owners_sql).fetchall()
            dead = [run_id for run_id, pid, created in owners if not run_owner_alive(pid, created)]
            return [attempt_record(row) for run_id in dead for row in conn.execute(sql, (run_id,))]

    def mark_orphans_reaped(self, records: Sequence[AttemptRecord], *, ended_at: float) -> None:
        """End `records` as interrupted, and close every run whose owner is gone as crashed.

        Call it even with no records: a run may have died between attempts, with none open.
        """
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE attempts SET ended_at = ?, status = 'interrupted'"
                " WHERE run_id = ? AND task = ? AND attempt = ? AND ended_at IS NULL",
                [(ended_at, r.run_id, r.task, r.attempt) for r in records],
            )
            open_runs = conn.execute(
                "SELECT run_id, owner_pid, owner_create_time FROM runs WHERE ended_at IS NULL"
            ).fetchall()
            dead = [
                (run_id,) for run_id, pid, created in open_runs if not run_owner_alive(pid, created)
            ]
            conn.executemany(
                "UPDATE attempts SET ended_at = ?, status = 'interrupted'"
                " WHERE run_id = ? AND ended_at IS NULL",
                [(ended_at, run_id) for (run_id,) in dead],
            )
            conn.executemany(
                "UPDATE runs SET ended_at = ?, status = 'crashed' WHERE run_id = ?",
                [(ended_at, run_id) for (run_id,) in dead],
            )

    @staticmethod
    def _fetch_run(conn: sqlite3.Connection, run_id: str) -> RunInfo | None:
        sql = SELECT_RUNS + " WHERE run_id = ?"
        row = conn.execute(sql, (run_id,)).fetchone()
        return None if row is None else run_info(row)


def _new_run_id(conn: sqlite3.Connection, started_at: float) -> str:
    """A UTC timestamp (so ids sort by start, across DST) and a random suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started_at))
    while True:
        run_id = f"{stamp}-{secrets.token_hex(2)}"
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            return run_id


def _check_status(status: str, allowed: frozenset[str]) -> None:
    if status not in allowed:
        raise ValueError(f"unknown status {status!r}; expected one of {sorted(allowed)}")
