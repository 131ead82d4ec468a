"""Attempts from start to end: command, PTX_TASK_JSON file, journal rows, process, result."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.events import Status, TaskSpawned, TaskStarted
from ptx.executors import process
from ptx.run import commandline, reported
from ptx.run.isolation import IsolatedAttempt
from ptx.run.reported import NOTHING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from ptx.core.events import Listener
    from ptx.core.model import Reported, Task, TaskId, TaskOptions
    from ptx.executors.base import Executor
    from ptx.journal.store import Journal
    from ptx.run.isolation import Worktrees
    from ptx.taskmaster.config import Config


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One attempt as the scheduler decided it."""

    task: Task
    options: TaskOptions  # worked out once per run: the config's override over the task's own
    attempt: int
    log: str
    timeout: float | None
    previous_session: str = ""  # the agent session the task's previous attempt reported


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """How an attempt ended, as the scheduler thread learns of it."""

    unit: TaskId
    attempt: int
    outcome: process.ProcessOutcome
    status: Status  # of the outcome, worked out here so the scheduler thread need not
    command: str
    isolated: IsolatedAttempt | None = None  # its worktree and work, in an isolated run
    reported: Reported = NOTHING  # what the attempt reported back (PTX_RESULT, claude-json)


class Attempts:
    """Starts and ends the attempts of one run.

    `begin` and `wait` belong to the scheduler thread. Every attempt, whatever the executor,
    runs in a pool thread: its command is built, its start recorded, its process run by
    `executor.run` (`executors/base.py`) and its end recorded there, and the result comes
    back to the scheduler thread through `wait`."""

    def __init__(  # noqa: PLR0913 - what every attempt of the run shares
        self,
        *,
        config: Config,
        journal: Journal,
        context: commandline.RunContext,
        scratch: Path,
        stop: process.Stop,
        emit: Listener,
        submit: Callable[[Callable[[], None]], object],
        executor: Executor,
        worktrees: Worktrees | None = None,
    ) -> None:
        self.config, self.journal, self.context = config, journal, context
        self.scratch, self.stop, self.emit, self.submit = str(scratch), stop, emit, submit
        self.executor, self.worktrees = executor, worktrees
        self.prepared: frozenset[TaskId] = frozenset()  # PTX_TASK_JSON written before the loop
        self.inbox: queue.SimpleQueue[Finished] = queue.SimpleQueue()

    def prepare(self, tasks: Iterable[Task], stopped: Callable[[], bool]) -> None:
        """Write the PTX_TASK_JSON file of each task the run may start, before the first one
        starts: between starts, the processes ptx runs evict its caches and each file costs
        more, and the files stay until the run ends either way. The first file that cannot be
        written (a full tmpfs, say) ends the writing, as does `stopped` (an interrupt): each
        task left is written, or its error told, when the task starts."""
        written = set()
        for task in tasks:
            if stopped():
                break
            try:
                commandline.write_task_json(task, self._task_json(task.id))
            except OSError:
                break
            written.add(task.id)
        self.prepared = frozenset(written)

    def begin(self, job: Job) -> None:
        """Start the attempt in a pool thread; its result comes out of `wait`."""
        self.submit(lambda: self._attempt(job))

    def wait(self, timeout: float) -> list[Finished]:
        """Attempts that ended, waiting up to `timeout` seconds for the first of them."""
        try:
            ended = [self.inbox.get_nowait()]
        except queue.Empty:
            if timeout <= 0:
                return []
            try:
                ended = [self.inbox.get(timeout=timeout)]
            except queue.Empty:
                return []
        with contextlib.suppress(queue.Empty):
            while True:
                ended.append(self.inbox.get_nowait())
        return ended

    def post(self, finished: Finished) -> None:
        """From any thread: hand `finished` to the scheduler thread's next `wait`."""
        self.inbox.put(finished)

    def _attempt(self, job: Job) -> None:
        """In a pool thread: the whole attempt, in its own worktree in an isolated run. Its end
        reaches the scheduler thread whatever happens: the loop must hear of every attempt it
        began."""
        worktrees, isolated = self.worktrees, None
        if worktrees is not None:
            isolated = IsolatedAttempt(worktrees, task=job.task, attempt=job.attempt, log=job.log)
        started = _Started(job, time.time())
        finished = None
        try:
            try:
                outcome = self._outcome(started, isolated)
            except Exception as error:  # noqa: BLE001 - reported as the attempt's failure
                failed = process.ProcessOutcome.never_ran(
                    f"ptx could not run the task: {error}", infrastructure=True
                )
                finished = _finished(job, failed, started.command)
            else:
                finished = self._record_end(started, outcome, isolated)
        finally:
            if finished is None:
                stopped = process.ProcessOutcome.never_ran("ptx stopped before the task could run")
                finished = _finished(job, stopped, started.command)
            self.post(finished)

    def _outcome(
        self, started: _Started, isolated: IsolatedAttempt | None
    ) -> process.ProcessOutcome:
        job = started.job
        call = started.call = self._invocation(job)
        started.command = commandline.display(call.argv)
        self._emit_started(job, started.command)
        on_start = functools.partial(self._record_start, started)

        def execute(call: commandline.Invocation) -> process.ProcessOutcome:
            return self.executor.run(self._spec(job, call), self.stop, on_start)

        if isolated is None:
            return execute(call)
        self._record_start(started)  # the attempt is on record while its worktree is made
        return isolated.run(call, execute)

    def _invocation(self, job: Job) -> commandline.Invocation:
        task_json = self._task_json(job.task.id)
        files = commandline.AttemptFiles(
            task_json=task_json, result=self._result(job), previous_session=job.previous_session
        )
        call = commandline.invocation(
            job.task,
            self.config,
            self.context,
            attempt=job.attempt,
            files=files,
            options=job.options,
        )
        if job.attempt == 1:
            rewrite = job.task.id not in self.prepared
        else:  # the task's own command may have removed it
            rewrite = not os.path.exists(task_json)  # noqa: PTH110 - per attempt: kept lean
        if rewrite:
            commandline.write_task_json(job.task, task_json)
        return call

    def _task_json(self, unit: TaskId) -> str:
        return f"{self.scratch}/{unit}.task.json"  # per attempt: no pathlib

    def _result(self, job: Job) -> str:
        return f"{self.scratch}/{job.task.id}.{job.attempt}.result.json"

    def _record_start(
        self, started: _Started, pgid: int | None = None, created: float | None = None
    ) -> None:
        """The executor's `on_start`: the attempt's row, committed with its process group and
        the leader's start time when it runs on this machine (one commit, and a reused pid is
        never taken for it); a later process of the attempt (after workspace.setup) only
        updates the group."""
        job, call = started.job, started.call
        assert call is not None  # noqa: S101 - on_start comes only once the command is built
        unit, attempt = job.task.id, job.attempt
        if not started.recorded:
            started.recorded = True
            self.journal.attempt_started(
                run_id=self.context.run_id,
                task=unit,
                attempt=attempt,
                command_hash=call.command_hash,
                log_path=job.log,
                started_at=started.at,
                pgid=pgid,
                create_time=created,
            )
        elif pgid is not None and created is not None:
            self.journal.attempt_spawned(
                run_id=self.context.run_id,
                task=unit,
                attempt=attempt,
                pgid=pgid,
                create_time=created,
            )
        if pgid is not None:
            self.emit(TaskSpawned(id=unit, attempt=attempt, pid=pgid))

    def _emit_started(self, job: Job, command: str) -> None:
        self.emit(
            TaskStarted(
                id=job.task.id,
                title=job.task.title,
                attempt=job.attempt,
                command=command,
                log=job.log,
            )
        )

    def _record_end(
        self,
        started: _Started,
        outcome: process.ProcessOutcome,
        isolated: IsolatedAttempt | None = None,
    ) -> Finished:
        """An attempt whose process never started (or whose executor does not say when it
        starts) gets its row now."""
        if not started.recorded:
            self._record_start(started)
        job = started.job
        result_format = job.options.result or self.config.result
        said = reported.read(self._result(job), job.log, result_format)
        finished = _finished(job, outcome, started.command, isolated, said)
        self.journal.attempt_ended(
            run_id=self.context.run_id,
            task=job.task.id,
            attempt=job.attempt,
            ended_at=outcome.ended_at,
            exit_code=outcome.exit_code,
            status=finished.status.value,
            reported=said,
        )
        return finished

    def _spec(self, job: Job, call: commandline.Invocation) -> process.ProcessSpec:
        return process.ProcessSpec(
            argv=call.argv,
            cwd=call.cwd,
            env=call.env,
            log_path=job.log,
            timeout=job.timeout,
            grace=self.config.kill_grace_seconds,
            memory_limit=job.options.memory_limit,
            keep_daemons=bool(job.options.keep_daemons),
        )


@dataclass(slots=True)
class _Started:
    """What one attempt's pool thread knows of it as it goes."""

    job: Job
    at: float  # time.time() as the attempt began
    call: commandline.Invocation | None = None  # once built
    command: str = ""  # as shown, once built
    recorded: bool = False  # its journal row exists


def _finished(
    job: Job,
    outcome: process.ProcessOutcome,
    command: str,
    isolated: IsolatedAttempt | None = None,
    said: Reported = NOTHING,
) -> Finished:
    status = status_of(outcome)
    if status is Status.SUCCEEDED and isolated is not None and isolated.work is not None:
        status = Status.INTEGRATING if isolated.work.commit is not None else status
    return Finished(
        unit=job.task.id,
        attempt=job.attempt,
        outcome=outcome,
        status=status,
        command=command,
        isolated=isolated,
        reported=said,
    )


def status_of(outcome: process.ProcessOutcome) -> Status:
    if outcome.interrupted:
        return Status.INTERRUPTED
    if outcome.memory_exceeded:
        return Status.MEMORY_EXCEEDED
    if outcome.timed_out:
        return Status.TIMEOUT
    return Status.SUCCEEDED if outcome.exit_code == 0 else Status.FAILED
