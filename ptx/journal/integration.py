"""What the journal keeps of isolated runs: each run's integration branch and base, and each
attempt's task branch, commit and integration result."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ptx.journal.schema import ATTEMPT_STATUSES

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator, Sequence


class IntegrationRecords:
    """Part of `Journal`, kept apart: these methods use its connection and locking."""

    def _update_one(self, sql: str, params: Sequence[object], what: str) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[sqlite3.Connection]:
        raise NotImplementedError
        yield  # pragma: no cover - a generator, as the journal's own

    def record_integration(self, run_id: str, *, branch: str, base: str) -> None:
        """The integration branch a run merges into and the commit it started from."""
        sql = "UPDATE runs SET integration_branch = ?, integration_base = ? WHERE run_id = ?"
        self._update_one(sql, (branch, base, run_id), f"run {run_id}")

    def integration(self, run_id: str) -> tuple[str, str] | None:
        """The run's integration branch and base, None for a run that was not isolated."""
        sql = "SELECT integration_branch, integration_base FROM runs WHERE run_id = ?"
        with self._guarded() as conn:
            row = conn.execute(sql, (run_id,)).fetchone()
        return None if row is None or row[0] is None else (row[0], row[1])

    def attempt_integrated(  # noqa: PLR0913 - the columns of an attempt's integration
        self,
        *,
        run_id: str,
        task: str,
        attempt: int,
        status: str,
        branch: str | None,
        commit: str | None,
        result: str,
    ) -> None:
        """The final status of an attempt whose work went to integration."""
        if status not in ATTEMPT_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        sql = (
            "UPDATE attempts SET status = ?, branch = ?, commit_sha = ?, integration = ?"
            " WHERE run_id = ? AND task = ? AND attempt = ?"
        )
        params = (status, branch, commit, result, run_id, task, attempt)
        self._update_one(sql, params, f"attempt {attempt} of task {task} in run {run_id}")
