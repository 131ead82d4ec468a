"""Tests for run.attempt: every attempt runs in a pool thread through the executor's `run`,
and its start and end reach the journal and the scheduler thread. Real processes, a real
journal, a real thread pool."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import tempfile
import threading
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
from ptx.executors.local import LocalExecutor
from ptx.journal.store import DB_NAME, Journal
from ptx.run import commandline
from ptx.run.attempt import Attempts, Finished, Job
from ptx.taskmaster.config import Config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future

    from ptx.core.events import Event
    from ptx.executors.base import Executor

HANG_GUARD = 10.0  # generous upper bound that only catches hangs


@dataclass
class _Harness:
    """One run's Attempts, and what it did: pool submissions, leaders' start times."""

    tmp_path: Path
    journal: Journal
    run_id: str
    stop: process.Stop
    pool: ThreadPoolExecutor
    executor: Executor = field(default_factory=LocalExecutor)
    submitted: list[Callable[[], None]] = field(default_factory=list)
    leaders: dict[int, float] = field(default_factory=dict)  # pid -> create time at spawn
    spawned: threading.Event = field(default_factory=threading.Event)
    attempts: Attempts = field(init=False)

    def __post_init__(self) -> None:
        scratch = self.tmp_path / "scratch"
        scratch.mkdir()
        context = commandline.RunContext(
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
            executor=self.executor,
        )

    def emit(self, event: Event) -> None:
        if isinstance(event, TaskSpawned):  # the leader has not been reaped yet
            self.leaders[event.pid] = psutil.Process(event.pid).create_time()
            self.spawned.set()

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
    monkeypatch.chdir(tmp_path)  # ptx runs in the project's root, as a real run does
    with Journal.open(tmp_path / ".ptx") as journal, ThreadPoolExecutor(2) as pool:
        run_id = journal.start_run(tag="master", jobs=2, tasks_file="tasks.json", argv=["ptx"])
        made = _Harness(
            tmp_path=tmp_path, journal=journal, run_id=run_id, stop=process.Stop(), pool=pool
        )
        try:
            yield made
        finally:  # a failed test leaves nothing running: leaving the pool waits for its end
            made.stop.request(immediate=True)


def _live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class _Recording:
    """The local executor, noting each spec it is asked to run and the thread asking."""

    slots: int | None = None
    lost: str | None = None
    local = True

    def __init__(self) -> None:
        self.calls: list[tuple[process.ProcessSpec, str]] = []
        self.inner = LocalExecutor()

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int | None, float | None], None] | None = None,
    ) -> process.ProcessOutcome:
        self.calls.append((spec, threading.current_thread().name))
        return self.inner.run(spec, stop, on_start)

    def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize(
    ("command", "status", "code"),
    [
        ("true", Status.SUCCEEDED, 0),
        ("exit 3", Status.FAILED, 3),
        ("sleep 0.3", Status.SUCCEEDED, 0),
    ],
)
def test_every_attempt_runs_in_a_pool_thread_through_the_executor(
    harness: _Harness, command: str, status: Status, code: int
) -> None:
    recording = _Recording()
    harness.attempts.executor = recording
    harness.attempts.begin(harness.job(command))

    finished = harness.finish()

    assert (finished.unit, finished.attempt, finished.command) == ("1", 1, command)
    assert finished.status is status
    assert finished.outcome.exit_code == code
    assert finished.outcome.pid > 0
    assert len(harness.submitted) == 1
    [(spec, thread)] = recording.calls
    assert spec.argv[-1] == command
    assert spec.log_path == str(harness.tmp_path / "logs" / "1.log")
    assert thread != threading.current_thread().name


def test_a_command_that_leaves_a_process_behind_is_swept(harness: _Harness, pid_file: Path) -> None:
    harness.attempts.begin(harness.job(f"sleep 30 & echo $! > {pid_file}"))

    finished = harness.finish()

    assert finished.status is Status.SUCCEEDED
    left = int(pid_file.read_text())
    assert not _live(left)
    log = (harness.tmp_path / "logs" / "1.log").read_text()
    assert "command ended, 1 process left: SIGTERM to process group" in log


def test_a_command_with_a_memory_limit_under_it_succeeds(harness: _Harness) -> None:
    harness.attempts.begin(harness.job("true", memory_limit=2**30))

    finished = harness.finish()
    assert finished.status is Status.SUCCEEDED
    assert not finished.outcome.memory_exceeded


def test_a_stop_ends_a_running_command_interrupted(harness: _Harness) -> None:
    harness.attempts.begin(harness.job("sleep 30"))
    assert harness.spawned.wait(HANG_GUARD)
    assert harness.attempts.wait(0.0) == []

    harness.stop.request()
    finished = harness.finish()

    assert finished.status is Status.INTERRUPTED
    assert finished.outcome.interrupted
    assert finished.outcome.signal == signal.SIGTERM
    assert not _live(finished.outcome.pid)


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
    assert row.command_hash == commandline.command_hash("true")
    assert row.log_path == job.log


def _committed(harness: _Harness) -> list[tuple[object, ...]]:
    """The attempt rows another connection sees: what a ptx killed now would leave behind."""
    with contextlib.closing(sqlite3.connect(harness.tmp_path / ".ptx" / DB_NAME)) as other:
        sql = "SELECT task, pgid, pgid_create_time, status FROM attempts WHERE run_id = ?"
        return list(other.execute(sql, (harness.run_id,)))


def test_the_start_is_committed_with_its_group_before_the_command_is_waited_for(
    harness: _Harness,
) -> None:
    harness.attempts.begin(harness.job("sleep 30"))
    assert harness.spawned.wait(HANG_GUARD)  # told once the start is recorded

    [pgid] = harness.leaders
    created = pytest.approx(harness.leaders[pgid], abs=1e-9)
    assert _committed(harness) == [("1", pgid, created, "running")]


def test_an_attempts_end_is_committed_before_the_scheduler_thread_hears_of_it(
    harness: _Harness,
) -> None:
    harness.attempts.begin(harness.job("true"))
    harness.finish()

    [(_, _, _, status)] = _committed(harness)
    assert status == "succeeded"


class _Elsewhere:
    """An executor whose process runs on no local process group: it says so through
    `on_start(None, None)`, then returns what `answer` makes of the committed rows then."""

    slots: int | None = 4
    lost: str | None = None
    local = False

    def __init__(
        self, answer: Callable[[], process.ProcessOutcome], *, tells_start: bool = True
    ) -> None:
        self.answer, self.tells_start = answer, tells_start

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int | None, float | None], None] | None = None,
    ) -> process.ProcessOutcome:
        del spec, stop
        if self.tells_start and on_start is not None:
            on_start(None, None)
        return self.answer()

    def close(self) -> None:
        """Nothing to release."""


def test_an_attempt_elsewhere_is_on_record_without_a_group_while_it_runs(
    harness: _Harness,
) -> None:
    seen: list[list[tuple[object, ...]]] = []

    def answer() -> process.ProcessOutcome:
        seen.append(_committed(harness))
        return dataclasses.replace(process.ProcessOutcome.never_ran("remote"), exit_code=0)

    harness.attempts.executor = _Elsewhere(answer)
    harness.attempts.begin(harness.job("true"))

    finished = harness.finish()
    assert finished.status is Status.SUCCEEDED
    assert seen == [[("1", None, None, "running")]]
    assert harness.leaders == {}  # no TaskSpawned: no local group to show
    [row] = harness.journal.attempts(harness.run_id)
    assert (row.status, row.exit_code) == ("succeeded", 0)


def test_an_attempt_that_never_started_is_recorded_with_its_end(harness: _Harness) -> None:
    cannot = process.ProcessOutcome.never_ran("cannot start it", exit_code=127)
    harness.attempts.executor = _Elsewhere(lambda: cannot, tells_start=False)
    harness.attempts.begin(harness.job("true"))

    finished = harness.finish()

    assert (finished.status, finished.outcome.error) == (Status.FAILED, "cannot start it")
    [row] = harness.journal.attempts(harness.run_id)
    assert (row.status, row.exit_code, row.pgid) == ("failed", 127, None)


def test_an_executor_that_raises_fails_only_its_attempt(harness: _Harness) -> None:
    def answer() -> process.ProcessOutcome:
        message = "the cluster's client broke"
        raise RuntimeError(message)

    harness.attempts.executor = _Elsewhere(answer)
    harness.attempts.begin(harness.job("true"))

    finished = harness.finish()

    assert finished.status is Status.FAILED
    assert finished.outcome.error == "ptx could not run the task: the cluster's client broke"


def _copying_job(harness: _Harness, unit: str, *, attempt: int = 1) -> Job:
    """A job of task `unit` whose command copies its PTX_TASK_JSON file to `<unit>.seen.json`."""
    job = harness.job(f'cp "$PTX_TASK_JSON" {unit}.seen.json')
    raw = MappingProxyType({"id": unit, "title": f"task {unit}"})
    return dataclasses.replace(
        job, task=dataclasses.replace(job.task, id=unit, raw=raw), attempt=attempt
    )


def _seen(harness: _Harness, unit: str) -> object:
    return json.loads((harness.tmp_path / f"{unit}.seen.json").read_text())


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


def test_a_task_json_not_prepared_is_written_when_its_task_starts(harness: _Harness) -> None:
    job = _copying_job(harness, "1")
    harness.attempts.prepare([job.task], lambda: True)  # an interrupt came first
    assert not list((harness.tmp_path / "scratch").iterdir())

    harness.attempts.begin(job)

    assert harness.finish().status is Status.SUCCEEDED
    assert _seen(harness, "1") == dict(job.task.raw)


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
    with commandline.scratch_dir("r", 1) as few:
        assert few.parent == Path("/dev/shm")
    with commandline.scratch_dir("r", 10**12) as many:  # more pages than any tmpfs has
        assert many.parent == Path(tempfile.gettempdir())
    assert not few.exists()
    assert not many.exists()
