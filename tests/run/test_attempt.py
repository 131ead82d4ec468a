"""Tests for run.attempt: a local command is watched by the scheduler thread while it is young
and handed to a pool thread otherwise. Real processes, a real journal, a real thread pool."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import psutil
import pytest
from builders import task

from ptx.core.events import Status, TaskSpawned
from ptx.core.model import TaskOptions
from ptx.executors import process
from ptx.executors.base import LocalExecutor
from ptx.journal.store import DB_NAME, Journal
from ptx.run import attempt, commands
from ptx.run.attempt import Attempts, Finished, Job
from ptx.taskmaster.config import Config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future

    from ptx.core.events import Event

HANG_GUARD = 10.0  # generous upper bound that only catches hangs


@dataclass
class _Harness:
    """One run's Attempts, and what it did: pool submissions, leaders' start times."""

    tmp_path: Path
    journal: Journal
    run_id: str
    stop: process.Stop
    pool: ThreadPoolExecutor
    submitted: list[Callable[[], None]] = field(default_factory=list)
    leaders: dict[int, float] = field(default_factory=dict)  # pid -> create time at spawn
    attempts: Attempts = field(init=False)

    def __post_init__(self) -> None:
        scratch = self.tmp_path / "scratch"
        scratch.mkdir()
        context = commands.RunContext(
            root=self.tmp_path,
            tag="master",
            run_id=self.run_id,
            base_env={"PATH": os.environ["PATH"]},
        )
        self.attempts = Attempts(
            config=Config(kill_grace_seconds=0.5),
            journal=self.journal,
            context=context,
            scratch=scratch,
            stop=self.stop,
            emit=self.emit,
            submit=self.submit,
            executor=LocalExecutor(),
        )

    def emit(self, event: Event) -> None:
        if isinstance(event, TaskSpawned):  # the leader has not been reaped yet
            self.leaders[event.pid] = psutil.Process(event.pid).create_time()

    def submit(self, work: Callable[[], None]) -> Future[None]:
        self.submitted.append(work)
        return self.pool.submit(work)

    def job(self, command: str, *, memory_limit: int | None = None) -> Job:
        options = TaskOptions(command=command, memory_limit=memory_limit)
        return Job(
            task=dataclasses.replace(task("1"), options=options),
            options=options,
            attempt=1,
            log=str(self.tmp_path / "logs" / "1.log"),
            timeout=None,
        )

    def finish(self) -> Finished:
        """Call wait() until one attempt has ended; fail rather than hang."""
        deadline = time.monotonic() + HANG_GUARD
        ended: list[Finished] = []
        while not ended:
            assert time.monotonic() < deadline, "no attempt ended"
            ended = self.attempts.wait(0.1)
        assert len(ended) == 1
        return ended[0]


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Harness]:
    monkeypatch.chdir(tmp_path)  # ptx runs in the project's root, so commands start by posix_spawn
    with Journal.open(tmp_path / ".ptx") as journal, ThreadPoolExecutor(2) as pool:
        run_id = journal.start_run(tag="master", jobs=2, tasks_file="tasks.json", argv=["ptx"])
        made = _Harness(
            tmp_path=tmp_path, journal=journal, run_id=run_id, stop=process.Stop(), pool=pool
        )
        try:
            yield made
        finally:  # a failed test leaves nothing running: the pool ends what is watched
            made.stop.request(immediate=True)
            made.attempts.hand_over_all()


@pytest.fixture
def long_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler thread watches its commands long enough that a quick one surely ends,
    and longer than `finish` waits: only what these tests expect hands a command over."""
    monkeypatch.setattr(attempt, "WATCH_SECONDS", 10 * HANG_GUARD)


def _live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.usefixtures("long_watch")
@pytest.mark.parametrize(
    ("command", "status", "code"),
    [("true", Status.SUCCEEDED, 0), ("exit 3", Status.FAILED, 3)],
)
def test_a_quick_command_ends_in_the_scheduler_thread(
    harness: _Harness, command: str, status: Status, code: int
) -> None:
    harness.attempts.begin(harness.job(command))

    finished = harness.finish()

    assert (finished.unit, finished.attempt, finished.command) == ("1", 1, command)
    assert finished.status is status
    assert finished.outcome.exit_code == code
    assert finished.outcome.pid > 0
    assert harness.submitted == []


def test_a_longer_command_is_handed_to_the_pool(
    harness: _Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attempt, "WATCH_SECONDS", 0.05)  # `sleep 0.3` cannot end within it
    harness.attempts.begin(harness.job("sleep 0.3"))

    finished = harness.finish()

    assert len(harness.submitted) == 1
    assert finished.status is Status.SUCCEEDED
    assert finished.outcome.exit_code == 0
    assert harness.attempts.watched == {}


@pytest.mark.usefixtures("long_watch")
def test_a_command_that_leaves_a_process_behind_is_handed_over_and_swept(
    harness: _Harness, pid_file: Path
) -> None:
    harness.attempts.begin(harness.job(f"sleep 30 & echo $! > {pid_file}"))

    finished = harness.finish()

    assert len(harness.submitted) == 1
    assert finished.status is Status.SUCCEEDED
    left = int(pid_file.read_text())
    assert not _live(left)
    log = (harness.tmp_path / "logs" / "1.log").read_text()
    assert "command ended, 1 process left: SIGTERM to process group" in log


@pytest.mark.usefixtures("long_watch")
def test_a_command_with_a_memory_limit_is_handed_over_at_once(harness: _Harness) -> None:
    harness.attempts.begin(harness.job("true", memory_limit=2**30))

    assert len(harness.submitted) == 1
    assert harness.attempts.watched == {}
    finished = harness.finish()
    assert finished.status is Status.SUCCEEDED
    assert not finished.outcome.memory_exceeded


@pytest.mark.usefixtures("long_watch")
def test_a_stop_hands_a_watched_command_over_and_it_ends_interrupted(
    harness: _Harness,
) -> None:
    harness.attempts.begin(harness.job("sleep 30"))
    assert harness.attempts.wait(0.0) == []
    assert harness.submitted == []  # watched by the scheduler thread

    harness.stop.request()
    finished = harness.finish()

    assert len(harness.submitted) == 1
    assert finished.status is Status.INTERRUPTED
    assert finished.outcome.interrupted
    assert finished.outcome.signal == signal.SIGTERM
    assert not _live(finished.outcome.pid)


@pytest.mark.usefixtures("long_watch")
def test_a_quick_attempt_is_one_journal_row_with_its_group(harness: _Harness) -> None:
    job = harness.job("true")
    harness.attempts.begin(job)

    finished = harness.finish()

    rows = harness.journal.attempts(harness.run_id)
    assert len(rows) == 1
    row = rows[0]
    assert (row.task, row.attempt, row.status, row.exit_code) == ("1", 1, "succeeded", 0)
    assert row.pgid == finished.outcome.pid
    assert list(harness.leaders) == [row.pgid]
    assert row.pgid_create_time == pytest.approx(harness.leaders[row.pgid], abs=1e-9)
    assert row.ended_at is not None
    assert row.command_hash == commands.command_hash("true")
    assert row.log_path == job.log


def _committed(harness: _Harness) -> list[tuple[object, ...]]:
    """The attempt rows another connection sees: what a ptx killed now would leave behind."""
    with contextlib.closing(sqlite3.connect(harness.tmp_path / ".ptx" / DB_NAME)) as other:
        sql = "SELECT task, pgid, pgid_create_time, status FROM attempts WHERE run_id = ?"
        return list(other.execute(sql, (harness.run_id,)))


@pytest.mark.usefixtures("long_watch")
def test_the_start_is_committed_with_its_group_before_the_command_is_watched(
    harness: _Harness,
) -> None:
    harness.attempts.begin(harness.job("sleep 30"))

    [pgid] = harness.leaders
    created = pytest.approx(harness.leaders[pgid], abs=1e-9)
    assert _committed(harness) == [("1", pgid, created, "running")]


@pytest.mark.usefixtures("long_watch")
def test_a_quick_attempts_end_is_committed_before_the_scheduler_thread_waits(
    harness: _Harness,
) -> None:
    harness.attempts.begin(harness.job("true"))
    harness.finish()

    assert harness.attempts.wait(0.01) == []

    [(_, _, _, status)] = _committed(harness)
    assert status == "succeeded"


def _copying_job(harness: _Harness, unit: str, *, attempt: int = 1) -> Job:
    """A job of task `unit` whose command copies its PTX_TASK_JSON file to `<unit>.seen.json`."""
    job = harness.job(f'cp "$PTX_TASK_JSON" {unit}.seen.json')
    raw = MappingProxyType({"id": unit, "title": f"task {unit}"})
    return dataclasses.replace(
        job, task=dataclasses.replace(job.task, id=unit, raw=raw), attempt=attempt
    )


def _seen(harness: _Harness, unit: str) -> object:
    return json.loads((harness.tmp_path / f"{unit}.seen.json").read_text())


@pytest.mark.usefixtures("long_watch")
def test_prepare_writes_every_task_json_before_a_task_starts(harness: _Harness) -> None:
    jobs = [_copying_job(harness, unit) for unit in ("1", "2", "3")]
    harness.attempts.prepare([job.task for job in jobs], lambda: False)

    scratch = harness.tmp_path / "scratch"
    for job in jobs:
        assert json.loads((scratch / f"{job.task.id}.task.json").read_text()) == dict(job.task.raw)
    # A start uses the file written then, rather than writing it again.
    (scratch / "2.task.json").write_text('{"written": "before the start"}\n')
    harness.attempts.begin(jobs[1])
    assert harness.finish().status is Status.SUCCEEDED
    assert _seen(harness, "2") == {"written": "before the start"}


@pytest.mark.usefixtures("long_watch")
def test_a_task_json_not_prepared_is_written_when_its_task_starts(harness: _Harness) -> None:
    job = _copying_job(harness, "1")
    harness.attempts.prepare([job.task], lambda: True)  # an interrupt came first
    assert not list((harness.tmp_path / "scratch").iterdir())

    harness.attempts.begin(job)

    assert harness.finish().status is Status.SUCCEEDED
    assert _seen(harness, "1") == dict(job.task.raw)


@pytest.mark.usefixtures("long_watch")
def test_a_file_that_cannot_be_written_ends_the_writing_and_fails_only_its_task(
    harness: _Harness,
) -> None:
    unwritable = _copying_job(harness, "9" * 300)  # its file name is longer than any allowed
    later = _copying_job(harness, "2")
    harness.attempts.prepare([unwritable.task, later.task], lambda: False)
    assert not list((harness.tmp_path / "scratch").iterdir())

    harness.attempts.begin(later)
    assert harness.finish().status is Status.SUCCEEDED
    assert _seen(harness, "2") == dict(later.task.raw)
    harness.attempts.begin(unwritable)
    failed = harness.finish()
    assert failed.status is Status.FAILED
    assert "ptx could not run the task" in (failed.outcome.error or "")
    assert "name too long" in (failed.outcome.error or "")


@pytest.mark.usefixtures("long_watch")
def test_a_retry_gets_back_the_task_json_its_first_attempt_removed(harness: _Harness) -> None:
    first = _copying_job(harness, "1")
    harness.attempts.prepare([first.task], lambda: False)
    (harness.tmp_path / "scratch" / "1.task.json").unlink()

    harness.attempts.begin(_copying_job(harness, "1", attempt=2))

    assert harness.finish().status is Status.SUCCEEDED
    assert _seen(harness, "1") == dict(first.task.raw)


@pytest.mark.skipif(
    not (os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)),  # noqa: PTH112
    reason="no writable tmpfs at /dev/shm",
)
def test_task_files_go_to_tmpfs_only_when_it_has_room_for_them_all() -> None:
    with commands.scratch_dir("r", 1) as few:
        assert few.parent == Path("/dev/shm")
    with commands.scratch_dir("r", 10**12) as many:  # more pages than any tmpfs has
        assert many.parent == Path(tempfile.gettempdir())
    assert not few.exists()
    assert not many.exists()
