"""What the journal tells of past runs: runs, attempts, reports, what --resume continues,
and each task's measured durations. Reads only."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

from ptx.executors.proctree import run_owner_alive
from ptx.journal.schema import (
    SELECT_ATTEMPTS,
    SELECT_RUNS,
    AttemptRecord,
    RunInfo,
    attempt_record,
    run_info,
)

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator, Mapping

ESTIMATE_WINDOW = 5  # successful attempts averaged per task
_ESTIMATE_BATCH = 500  # tasks per statement: 1,002 parameters, far below SQLite's limit
# For each wanted (task, command hash): the mean of its last ESTIMATE_WINDOW successes in
# the tag, found through the attempts_history index newest first.
_ESTIMATES_SQL = """
    WITH wanted (task, command_hash) AS (VALUES {wanted})
    SELECT w.task, (
        SELECT avg(duration) FROM (
            SELECT a.ended_at - a.started_at AS duration
            FROM attempts AS a JOIN runs AS r USING (run_id)
            WHERE a.task = w.task AND a.command_hash = w.command_hash
                AND a.status = 'succeeded' AND r.tag = ?
            ORDER BY a.ended_at DESC LIMIT ?
        )
    ) FROM wanted AS w"""


# Runs recorded before schema 4 have no count: they are taken as having had work.
_NOT_EMPTY = " WHERE (units IS NULL OR units > 0)"
_UNFINISHED = """ AND tag = ? AND status != 'succeeded'
    AND NOT EXISTS (SELECT 1 FROM runs AS later WHERE later.resumed_from = runs.run_id)
    ORDER BY started_at DESC, run_id DESC LIMIT 1"""


class RunQueries:
    """Part of `Journal`, kept apart: these methods use its connection and locking."""

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[sqlite3.Connection]:
        raise NotImplementedError
        yield  # pragma: no cover - a generator, as the journal's own

    def report(self, run_id: str) -> str | None:
        """The report kept for a run: None for a run that never finished (or ran before v2)."""
        with self._guarded() as conn:
            row = conn.execute("SELECT report FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    def run(self, run_id: str) -> RunInfo | None:
        with self._guarded() as conn:
            info = self._fetch_run(conn, run_id)
        return None if info is None else _as_seen(info)

    def runs(self, limit: int = 20, *, tag: str | None = None) -> list[RunInfo]:
        """The latest runs that had something to do (of `tag` if given), newest first."""
        where = _NOT_EMPTY + ("" if tag is None else " AND tag = ?")
        sql = SELECT_RUNS + where + " ORDER BY started_at DESC, run_id DESC LIMIT ?"
        params = (limit,) if tag is None else (tag, limit)
        with self._guarded() as conn:
            return [_as_seen(run_info(row)) for row in conn.execute(sql, params)]

    def last_run(self) -> RunInfo | None:
        """The latest run that had something to do."""
        latest = self.runs(1)
        return latest[0] if latest else None

    def last_reported_run(self) -> RunInfo | None:
        """The latest run with something to do that has a report: what `ptx report` shows."""
        sql = SELECT_RUNS + _NOT_EMPTY + " AND report IS NOT NULL"
        with self._guarded() as conn:
            row = conn.execute(sql + " ORDER BY started_at DESC, run_id DESC LIMIT 1").fetchone()
        return None if row is None else run_info(row)

    def unfinished_run(self, tag: str) -> RunInfo | None:
        """The latest run of `tag` with something to do that did not succeed and that no later
        run resumed: what `--resume` continues."""
        sql = SELECT_RUNS + _NOT_EMPTY + _UNFINISHED
        with self._guarded() as conn:
            row = conn.execute(sql, (tag,)).fetchone()
        return None if row is None else run_info(row)

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """The attempts of one run, in the order they started."""
        sql = SELECT_ATTEMPTS + " WHERE run_id = ? ORDER BY started_at, task, attempt"
        with self._guarded() as conn:
            return [attempt_record(row) for row in conn.execute(sql, (run_id,))]

    def succeeded_tasks(self, run_id: str) -> frozenset[str]:
        """Tasks that succeeded in this run or any run it resumed from, transitively."""
        sql = """
            WITH RECURSIVE chain (run_id) AS (
                SELECT ?
                UNION
                SELECT runs.resumed_from FROM runs JOIN chain USING (run_id)
                WHERE runs.resumed_from IS NOT NULL
            )
            SELECT DISTINCT task FROM attempts
            WHERE status = 'succeeded' AND run_id IN (SELECT run_id FROM chain)"""
        with self._guarded() as conn:
            return frozenset(row[0] for row in conn.execute(sql, (run_id,)))

    def estimates(self, tag: str, command_hashes: Mapping[str, str]) -> dict[str, float]:
        """Mean duration of each task's last successful attempts with its current command.

        Only attempts with the given command hash count, so changing a command resets its
        history; tasks with no such attempt are absent. Tasks are asked for in batches, each
        one statement, since a query per task costs more Python than the query.
        """
        pairs = list(command_hashes.items())
        result: dict[str, float] = {}
        with self._guarded() as conn:
            for start in range(0, len(pairs), _ESTIMATE_BATCH):
                batch = pairs[start : start + _ESTIMATE_BATCH]
                wanted = ", ".join("(?, ?)" for _ in batch)
                params = [value for pair in batch for value in pair]
                sql = _ESTIMATES_SQL.format(wanted=wanted)  # only "(?, ?)" groups go in
                rows = conn.execute(sql, (*params, tag, ESTIMATE_WINDOW))
                result.update((task, mean) for task, mean in rows if mean is not None)
        return result

    @staticmethod
    def _fetch_run(conn: sqlite3.Connection, run_id: str) -> RunInfo | None:
        sql = SELECT_RUNS + " WHERE run_id = ?"
        row = conn.execute(sql, (run_id,)).fetchone()
        return None if row is None else run_info(row)


def _as_seen(info: RunInfo) -> RunInfo:
    """A run still open whose owner is gone crashed, whether or not a later run has closed
    it in the journal yet (readers never write)."""
    if info.ended_at is None and not run_owner_alive(info.owner_pid, info.owner_create_time):
        return dataclasses.replace(info, status="crashed")
    return info
