"""Tests of journal.store against real SQLite files, real child processes and real flocks."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from builders import REPORTED_COLUMNS, SCRIPTS, drop_schema_5, drop_schema_6

from ptx.core.errors import ExitCode
from ptx.core.model import Reported
from ptx.journal.opening import JournalError
from ptx.journal.schema import SCHEMA_VERSION
from ptx.journal.store import DB_NAME, Journal

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CHILD_TIMEOUT = 60  # only guards against a hang


def run_child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """tests/scripts/`script` with `args`, to its end."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )


def crash_owner(state: Path) -> str:
    """Run a crashing journal owner to its SIGKILL; return the id of the run it left behind."""
    child = run_child("crashing_journal_owner.py", str(state))
    assert child.returncode == -signal.SIGKILL, child.stderr
    return child.stdout.strip()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".ptx"


@pytest.fixture
def journal(state: Path) -> Iterator[Journal]:
    with Journal.open(state) as opened:
        yield opened


def add_attempt(
    journal: Journal,
    run_id: str,
    task: str,
    *,
    attempt: int = 1,
    command_hash: str = "h",
    start: float = 0.0,
    duration: float = 1.0,
    status: str = "succeeded",
) -> None:
    journal.attempt_started(
        run_id=run_id,
        task=task,
        attempt=attempt,
        command_hash=command_hash,
        log_path=f"{task}.log",
        started_at=start,
    )
    journal.attempt_ended(
        run_id=run_id,
        task=task,
        attempt=attempt,
        ended_at=start + duration,
        exit_code=0 if status == "succeeded" else 1,
        status=status,
    )


def test_run_round_trip(journal: Journal, state: Path) -> None:
    run_id = journal.start_run(
        tag="feature", jobs=4, tasks_file="/p/tasks.json", argv=["ptx", "run", "-j", "4"]
    )
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run_id)
    info = journal.run(run_id)
    assert info is not None
    assert info.status == "running"
    assert info.ended_at is None
    assert (info.tag, info.jobs, info.tasks_file) == ("feature", 4, "/p/tasks.json")
    assert info.argv == ("ptx", "run", "-j", "4")
    assert info.resumed_from is None
    assert info.owner_pid == os.getpid()
    assert info.owner_create_time == pytest.approx(psutil.Process().create_time(), abs=1.0)

    journal.finish_run(run_id, status="failed", ended_at=info.started_at + 3)
    journal.close()
    with Journal.open(state) as reopened:
        again = reopened.run(run_id)
        assert again is not None
        assert (again.status, again.ended_at) == ("failed", info.started_at + 3)
        assert reopened.last_run() == again
        assert reopened.run("19700101-000000-0000") is None


def test_runs_are_listed_newest_first(journal: Journal) -> None:
    assert journal.last_run() is None
    ids = [
        journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[], started_at=float(start))
        for start in (1_000, 3_000, 2_000)
    ]
    assert [run.run_id for run in journal.runs()] == [ids[1], ids[2], ids[0]]
    assert [run.run_id for run in journal.runs(limit=2)] == [ids[1], ids[2]]
    assert ids[0].startswith("19700101-001640-")  # UTC, whatever the local zone


def test_resuming_an_unknown_run_is_refused(journal: Journal) -> None:
    with pytest.raises(JournalError, match="no run nope to resume from"):
        journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[], resumed_from="nope")
    assert journal.runs() == []


def test_attempt_lifecycle(journal: Journal) -> None:
    run_id = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    journal.attempt_started(
        run_id=run_id, task="7.2", attempt=2, command_hash="abc", log_path="l", started_at=10.0
    )
    journal.attempt_spawned(run_id=run_id, task="7.2", attempt=2, pgid=999, create_time=10.5)
    (running,) = journal.attempts(run_id)
    assert (running.status, running.pgid, running.pgid_create_time) == ("running", 999, 10.5)
    assert running.ended_at is None
    journal.attempt_ended(
        run_id=run_id, task="7.2", attempt=2, ended_at=12.0, exit_code=None, status="timeout"
    )
    (ended,) = journal.attempts(run_id)
    assert (ended.task, ended.attempt, ended.command_hash, ended.log_path) == (
        "7.2",
        2,
        "abc",
        "l",
    )
    assert (ended.started_at, ended.ended_at, ended.exit_code, ended.status) == (
        10.0,
        12.0,
        None,
        "timeout",
    )


def test_updating_an_unknown_attempt_or_status_fails(journal: Journal) -> None:
    run_id = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    with pytest.raises(JournalError, match="no attempt 1 of task 9"):
        journal.attempt_ended(
            run_id=run_id, task="9", attempt=1, ended_at=1.0, exit_code=0, status="succeeded"
        )
    with pytest.raises(JournalError, match="no run other"):
        journal.finish_run("other", status="succeeded", ended_at=1.0)
    with pytest.raises(ValueError, match="unknown status 'done'"):
        journal.finish_run(run_id, status="done", ended_at=1.0)
    with pytest.raises(JournalError, match="FOREIGN KEY"):
        add_attempt(journal, "no-such-run", "1")


def test_wal_mode_and_pragmas(journal: Journal, state: Path) -> None:
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert journal._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert journal._conn.execute("PRAGMA page_size").fetchone()[0] == 1024  # a new store
    assert journal._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 80 * 1024
    with sqlite3.connect(state / DB_NAME) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_the_close_copies_the_wal_into_the_database_and_loses_nothing(state: Path) -> None:
    database = state / DB_NAME
    with Journal.open(state) as journal:
        run_id = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
        for number in range(300):
            add_attempt(journal, run_id, str(number))
        journal.finish_run(run_id, status="succeeded", ended_at=1.0)
        journal.save_report(run_id, "{}")
        before = database.stat().st_size  # the attempts are in the WAL only
        assert (state / f"{DB_NAME}-wal").stat().st_size > 0

    assert database.stat().st_size > before
    assert not (state / f"{DB_NAME}-wal").exists()  # the close copied it all back
    with Journal.open(state) as reopened:
        assert len(reopened.attempts(run_id)) == 300
        assert reopened.report(run_id) == "{}"
        assert reopened.succeeded_tasks(run_id) >= {"0", "299"}


def test_a_store_with_4k_pages_keeps_them_and_the_same_wal_bound(state: Path) -> None:
    state.mkdir()
    with sqlite3.connect(state / DB_NAME) as db:  # what an older ptx created
        db.execute("PRAGMA page_size = 4096")
        db.execute("PRAGMA journal_mode = WAL")
    db.close()
    with Journal.open(state) as journal:
        assert journal._conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert journal._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 20 * 1024
        run_id = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
        assert journal.run(run_id) is not None


def test_attempts_survive_sigkill_of_the_writer(state: Path) -> None:
    run_id = crash_owner(state)
    with Journal.open(state) as journal:
        info = journal.run(run_id)
        assert info is not None
        assert (info.status, info.ended_at) == ("crashed", None)  # its owner is gone: shown so
        by_task = {record.task: record for record in journal.attempts(run_id)}
    assert sorted(by_task) == ["1", "2", "3"]
    assert (by_task["1"].status, by_task["1"].exit_code, by_task["1"].ended_at) == (
        "succeeded",
        0,
        101.0,
    )
    assert (by_task["2"].status, by_task["2"].pgid, by_task["2"].ended_at) == (
        "running",
        4242,
        None,
    )
    assert by_task["3"].pgid is None


def test_succeeded_tasks_follow_the_resume_chain(journal: Journal) -> None:
    first = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    add_attempt(journal, first, "1")
    add_attempt(journal, first, "2", status="failed")
    second = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[], resumed_from=first)
    add_attempt(journal, second, "2", attempt=1, status="failed")
    add_attempt(journal, second, "2", attempt=2)
    add_attempt(journal, second, "3", status="timeout")
    third = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[], resumed_from=second)
    add_attempt(journal, third, "4")
    unrelated = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    add_attempt(journal, unrelated, "5")

    assert journal.succeeded_tasks(third) == {"1", "2", "4"}
    assert journal.succeeded_tasks(second) == {"1", "2"}
    assert journal.succeeded_tasks(first) == {"1"}
    resumed = journal.run(third)
    assert resumed is not None
    assert resumed.resumed_from == second


def test_orphans_of_a_dead_owner_are_found_and_reaped(journal: Journal, state: Path) -> None:
    dead_run = crash_owner(state)
    live_run = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    journal.attempt_started(
        run_id=live_run, task="1", attempt=1, command_hash="h", log_path="l", started_at=1.0
    )
    journal.attempt_spawned(run_id=live_run, task="1", attempt=1, pgid=5151, create_time=1.0)

    orphans = journal.orphaned_attempts()
    assert [(o.run_id, o.task, o.pgid) for o in orphans] == [(dead_run, "2", 4242)]

    journal.mark_orphans_reaped(orphans, ended_at=500.0)
    assert journal.orphaned_attempts() == []
    dead = {record.task: record for record in journal.attempts(dead_run)}
    assert dead["1"].status == "succeeded"  # ended before the crash: untouched
    for task in ("2", "3"):  # spawned and not yet spawned: both interrupted
        assert (dead[task].status, dead[task].ended_at) == ("interrupted", 500.0)
    crashed = journal.run(dead_run)
    assert crashed is not None
    assert (crashed.status, crashed.ended_at) == ("crashed", 500.0)

    (live_attempt,) = journal.attempts(live_run)
    assert (live_attempt.status, live_attempt.ended_at) == ("running", None)
    live = journal.run(live_run)
    assert live is not None
    assert live.status == "running"


def test_a_reused_owner_pid_does_not_keep_a_run_alive(journal: Journal, state: Path) -> None:
    run_id = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    journal.attempt_started(
        run_id=run_id, task="1", attempt=1, command_hash="h", log_path="l", started_at=1.0
    )
    journal.attempt_spawned(run_id=run_id, task="1", attempt=1, pgid=5151, create_time=1.0)
    assert journal.orphaned_attempts() == []
    # Same pid, another birth: what a recycled pid looks like.
    with sqlite3.connect(state / DB_NAME) as other:
        other.execute("UPDATE runs SET owner_create_time = owner_create_time - 3600")
    other.close()
    assert [o.task for o in journal.orphaned_attempts()] == ["1"]


def test_reaping_closes_a_dead_run_with_no_open_attempt(journal: Journal, state: Path) -> None:
    dead_run = crash_owner(state)
    with sqlite3.connect(state / DB_NAME) as other:
        other.execute("UPDATE attempts SET ended_at = 1.0, status = 'failed'")
    other.close()
    assert journal.orphaned_attempts() == []
    journal.mark_orphans_reaped([], ended_at=9.0)
    crashed = journal.run(dead_run)
    assert crashed is not None
    assert crashed.status == "crashed"


def test_estimates_average_recent_successes_of_the_same_command(journal: Journal) -> None:
    run_id = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    for start, duration in enumerate([50.0, 1.0, 2.0, 3.0, 4.0, 5.0]):  # oldest first
        add_attempt(journal, run_id, "1", attempt=start + 1, start=start * 100, duration=duration)
    add_attempt(journal, run_id, "1", attempt=9, start=900, duration=999.0, status="failed")
    add_attempt(journal, run_id, "2", command_hash="old", duration=10.0)
    add_attempt(journal, run_id, "3", command_hash="old", attempt=1, duration=10.0)
    add_attempt(journal, run_id, "3", command_hash="new", attempt=2, start=50, duration=7.0)
    other_tag = journal.start_run(tag="other", jobs=1, tasks_file="t", argv=[])
    add_attempt(journal, other_tag, "4", duration=8.0)

    hashes = {"1": "h", "2": "new", "3": "new", "4": "h", "5": "h"}
    assert journal.estimates("m", hashes) == {"1": pytest.approx(3.0), "3": pytest.approx(7.0)}
    assert journal.estimates("other", hashes) == {"4": pytest.approx(8.0)}


def test_concurrent_writers_share_one_journal(journal: Journal) -> None:
    run_id = journal.start_run(tag="m", jobs=8, tasks_file="t", argv=[])

    def write(worker: int) -> None:
        for index in range(50):
            add_attempt(journal, run_id, f"{worker}.{index}", start=float(index))

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=CHILD_TIMEOUT)
    assert len(journal.succeeded_tasks(run_id)) == 400


def test_schema_version_mismatch_is_refused(state: Path) -> None:
    Journal.open(state).close()
    with sqlite3.connect(state / DB_NAME) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    wanted = rf"schema version 99, this ptx reads version {SCHEMA_VERSION}"
    with pytest.raises(JournalError, match=wanted) as err:
        Journal.open(state)
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_a_foreign_database_is_refused(state: Path) -> None:
    state.mkdir()
    with sqlite3.connect(state / DB_NAME) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    db.close()
    with pytest.raises(JournalError, match="an SQLite database of another program"):
        Journal.open(state)


def test_a_file_that_is_not_a_database_is_refused(state: Path) -> None:
    state.mkdir()
    (state / DB_NAME).write_bytes(b"this is not sqlite, just text long enough to have a header")
    with pytest.raises(JournalError, match=r"is damaged \(file is not a database\)"):
        Journal.open(state)


def test_a_closed_journal_raises_a_journal_error(state: Path) -> None:
    journal = Journal.open(state)
    journal.close()
    with pytest.raises(JournalError):
        journal.runs()


def test_a_version_2_journal_loses_its_open_attempts_index_and_keeps_its_orphans(
    state: Path,
) -> None:
    dead_run = crash_owner(state)
    with sqlite3.connect(state / DB_NAME) as db:  # what a version-2 ptx left behind
        drop_schema_6(db)
        db.execute("CREATE INDEX attempts_open ON attempts (run_id) WHERE ended_at IS NULL")
        db.execute("ALTER TABLE runs DROP COLUMN units")
        db.execute("ALTER TABLE runs DROP COLUMN options")
        drop_schema_5(db)
        db.execute("PRAGMA user_version = 2")
    db.close()

    with Journal.open(state) as journal:
        assert [(o.run_id, o.task, o.pgid) for o in journal.orphaned_attempts()] == [
            (dead_run, "2", 4242)
        ]
    with sqlite3.connect(state / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "attempts_open" not in indexes
    assert "attempts_history" in indexes


def test_a_version_5_journal_gains_the_reported_columns_and_keeps_its_attempts(
    state: Path,
) -> None:
    dead_run = crash_owner(state)
    with sqlite3.connect(state / DB_NAME) as db:  # what a version-5 ptx left behind
        drop_schema_6(db)
        db.execute("PRAGMA user_version = 5")
    db.close()
    with Journal.open(state) as journal:
        (orphan,) = journal.orphaned_attempts()
        assert (orphan.run_id, orphan.task, orphan.cost_usd, orphan.session_id) == (
            dead_run,
            "2",
            None,
            None,
        )
        reported = Reported(cost_usd=0.5, input_tokens=3, output_tokens=4, session_id="s", data={})
        journal.attempt_ended(
            run_id=dead_run, task="2", attempt=1, ended_at=time.time(), exit_code=0,
            status="succeeded", reported=reported,
        )  # fmt: skip
        ended = next(record for record in journal.attempts(dead_run) if record.task == "2")
        assert (ended.cost_usd, ended.input_tokens, ended.output_tokens, ended.session_id) == (
            0.5,
            3,
            4,
            "s",
        )
    with sqlite3.connect(state / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
        columns = {row[1] for row in db.execute("PRAGMA table_info(attempts)")}
    db.close()
    assert set(REPORTED_COLUMNS) <= columns


def test_estimates_of_more_tasks_than_one_statement_asks_for(journal: Journal) -> None:
    run_id = journal.start_run(tag="m", jobs=1, tasks_file="t", argv=[])
    count = 1_203  # three batches, the last one partial
    for number in range(count):
        task = str(number)
        journal.attempt_started(
            run_id=run_id, task=task, attempt=1, command_hash="h", log_path="l", started_at=0.0
        )
        journal.attempt_ended(
            run_id=run_id,
            task=task,
            attempt=1,
            ended_at=float(number),
            exit_code=0,
            status="succeeded",
        )
    hashes = {str(number): "h" for number in range(count)} | {"missing": "h"}

    found = journal.estimates("m", hashes)

    assert found == {str(number): pytest.approx(float(number)) for number in range(count)}


def test_a_version_4_journal_gains_the_isolation_columns_and_keeps_its_runs(state: Path) -> None:
    with Journal.open(state) as journal:
        run_id = journal.start_run(tag="master", jobs=1, tasks_file="t.json", argv=["ptx"])
    with sqlite3.connect(state / DB_NAME) as db:  # what a version-4 ptx left behind
        drop_schema_6(db)
        drop_schema_5(db)
        db.execute("PRAGMA user_version = 4")
    db.close()
    with Journal.open(state) as journal:
        assert journal.run(run_id) is not None
        assert journal.integration(run_id) is None
        journal.record_integration(run_id, branch="ptx/master/r", base="abc")
        assert journal.integration(run_id) == ("ptx/master/r", "abc")
    with sqlite3.connect(state / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
