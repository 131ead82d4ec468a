"""One attempt as a pool thread runs it: its command, PTX_TASK_JSON file, journal rows, process."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptx import commands, process
from ptx.events import Status, TaskSpawned, TaskStarted

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ptx.config import Config
    from ptx.events import Listener
    from ptx.executors import Executor
    from ptx.journal import Journal
    from ptx.model import Task, TaskId, TaskOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One attempt handed to a pool thread."""

    task: Task
    options: TaskOptions  # worked out once per run: the config's override over the task's own
    attempt: int
    log: str
    timeout: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """How an attempt ended, as the pool thread hands it back to the scheduler thread."""

    unit: TaskId
    attempt: int
    outcome: process.ProcessOutcome
    status: Status  # of the outcome, worked out here so the scheduler thread need not
    command: str


class Attempts:
    """Runs the attempts of one run, each in the pool thread it was submitted to."""

    __slots__ = ("config", "context", "done", "emit", "executor", "journal", "scratch", "stop")

    def __init__(  # noqa: PLR0913 - what every attempt of the run shares
        self,
        *,
        config: Config,
        journal: Journal,
        context: commands.RunContext,
        scratch: Path,
        stop: process.Stop,
        emit: Listener,
        done: Callable[[Finished], None],
        executor: Executor,
    ) -> None:
        self.config, self.journal, self.context = config, journal, context
        self.scratch, self.stop, self.emit, self.done = scratch, stop, emit, done
        self.executor = executor

    def run(self, job: Job) -> None:
        """Runs in a pool thread and owns the attempt: its command, files, journal rows and
        process. The scheduler thread only schedules, so it answers the next finish sooner."""
        finished = None
        try:
            finished = self._run(job)
        finally:  # whatever happens, the loop must hear of every attempt it started
            if finished is None:
                stopped = process.ProcessOutcome.never_ran("ptx stopped before the task could run")
                finished = _finished(job, stopped, "")
            self.done(finished)

    def _run(self, job: Job) -> Finished:
        unit, attempt, run_id = job.task.id, job.attempt, self.context.run_id
        task_json = self.scratch / f"{unit}.task.json"
        command = ""

        def spawned(pgid: int, create_time: float) -> None:
            self.journal.attempt_spawned(
                run_id=run_id, task=unit, attempt=attempt, pgid=pgid, create_time=create_time
            )
            self.emit(TaskSpawned(id=unit, attempt=attempt, pid=pgid))

        try:
            call = commands.invocation(
                job.task,
                self.config,
                self.context,
                attempt=attempt,
                task_json=task_json,
                options=job.options,
            )
            command = commands.display(call.argv)
            self._announce(job, call, command)
            if not task_json.exists():  # one file per task and run, shared by its attempts
                commands.write_task_json(job.task, task_json)
            outcome = self.executor.run(self._spec(job, call), self.stop, on_start=spawned)
        except Exception as error:  # noqa: BLE001 - reported as the attempt's failure
            failed = process.ProcessOutcome.never_ran(f"ptx could not run the task: {error}")
            return _finished(job, failed, command)
        finished = _finished(job, outcome, command)
        self.journal.attempt_ended(
            run_id=run_id,
            task=unit,
            attempt=attempt,
            ended_at=outcome.ended_at,
            exit_code=outcome.exit_code,
            status=finished.status.value,
        )
        return finished

    def _announce(self, job: Job, call: commands.Invocation, command: str) -> None:
        """The attempt is committed to the journal before its process exists."""
        self.journal.attempt_started(
            run_id=self.context.run_id,
            task=job.task.id,
            attempt=job.attempt,
            command_hash=call.command_hash,
            log_path=job.log,
            started_at=time.time(),
        )
        self.emit(
            TaskStarted(
                id=job.task.id,
                title=job.task.title,
                attempt=job.attempt,
                command=command,
                log=job.log,
            )
        )

    def _spec(self, job: Job, call: commands.Invocation) -> process.ProcessSpec:
        return process.ProcessSpec(
            argv=call.argv,
            cwd=call.cwd,
            env=call.env,
            log_path=job.log,
            timeout=job.timeout,
            grace=self.config.kill_grace_seconds,
            memory_limit=job.options.memory_limit,
        )


def _finished(job: Job, outcome: process.ProcessOutcome, command: str) -> Finished:
    return Finished(
        unit=job.task.id,
        attempt=job.attempt,
        outcome=outcome,
        status=status_of(outcome),
        command=command,
    )


def status_of(outcome: process.ProcessOutcome) -> Status:
    if outcome.interrupted:
        return Status.INTERRUPTED
    if outcome.memory_exceeded:
        return Status.MEMORY_EXCEEDED
    if outcome.timed_out:
        return Status.TIMEOUT
    return Status.SUCCEEDED if outcome.exit_code == 0 else Status.FAILED


@contextlib.contextmanager
def scratch_dir(run_id: str) -> Iterator[Path]:
    """Where the PTX_TASK_JSON files live during the run: tmpfs when there is one, because
    creating a file on a disk costs about as much as starting a no-op task."""
    shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp directory inside it
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix=f"ptx-{run_id}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
