"""Attempts from start to end: command, PTX_TASK_JSON file, journal rows, process, result."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import queue
import select
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.events import Status, TaskSpawned, TaskStarted
from ptx.executors import process
from ptx.executors.base import LocalExecutor
from ptx.run import commands, reported
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

# How long the scheduler thread watches a command it started before a pool thread takes over.
# Most of a short command's cost is handing it between threads, so one that ends this soon
# is finished where it started; a longer one is supervised by a pool thread from then on.
WATCH_SECONDS = 0.05


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


@dataclass(frozen=True, slots=True)
class _Watched:
    """A local command the scheduler thread started and watches until `until`."""

    job: Job
    child: process.Child
    command: str
    until: float  # time.monotonic()
    pidfd: int | None  # kept: the child forgets it once it has ended


class Attempts:
    """Starts and ends the attempts of one run.

    `begin` and `wait` belong to the scheduler thread. A local command is started there and
    watched there while it is young; one that lives longer, has a memory limit, must be
    stopped or left processes behind, and every attempt of a remote executor, goes to a pool
    thread, which runs it to its end and hands the result back through `wait`."""

    def __init__(  # noqa: PLR0913 - what every attempt of the run shares
        self,
        *,
        config: Config,
        journal: Journal,
        context: commands.RunContext,
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
        self.watched: dict[int, _Watched] = {}  # by the leader's pidfd
        self.ended: list[Finished] = []  # ended in this thread, not yet returned by wait()
        self.inbox: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self.poller = select.poll()
        self.wake_read, self.wake_write = os.pipe()  # a pool thread's result interrupts the poll
        os.set_blocking(self.wake_read, False)
        self.poller.register(self.wake_read, select.POLLIN)
        for fd in (self.wake_read, self.wake_write):  # closed once no pool thread holds self
            weakref.finalize(self, os.close, fd)

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
                commands.write_task_json(task, self._task_json(task.id))
            except OSError:
                break
            written.add(task.id)
        self.prepared = frozenset(written)

    def begin(self, job: Job) -> None:
        """Start the attempt; its result comes out of `wait`."""
        if self.worktrees is not None or not isinstance(self.executor, LocalExecutor):
            self.submit(lambda: self._run_remote(job))
            return
        started = self._launch(job)
        if isinstance(started, Finished):
            self.ended.append(started)
        elif started.pidfd is None or job.options.memory_limit is not None:
            self._hand_over(started)  # only a pool thread can wait without a pidfd, or sample
        else:
            self.watched[started.pidfd] = started
            self.poller.register(started.pidfd, select.POLLIN)

    def wait(self, timeout: float) -> list[Finished]:
        """Attempts that ended, waiting up to `timeout` seconds for the first of them."""
        if self.stop.requested:
            self.hand_over_all()
        if self.ended:
            timeout = 0.0
        elif self.watched:
            soonest = min(watched.until for watched in self.watched.values())
            timeout = min(timeout, max(0.0, soonest - time.monotonic()))
        if timeout > 0:
            self.journal.flush()  # nothing recorded waits in memory while this thread waits
        if self._poll(timeout):  # a pool thread puts its result in the inbox, then wakes us
            with contextlib.suppress(queue.Empty):
                while True:
                    self.ended.append(self.inbox.get_nowait())
        if self.watched:
            self._hand_over_due()
        ended, self.ended = self.ended, []
        return ended

    def _poll(self, timeout: float) -> bool:
        """Reap the watched commands that ended; True if a pool thread delivered a result."""
        delivered = False
        for fd, _ in self.poller.poll(math.ceil(timeout * 1000)):
            if fd == self.wake_read:
                delivered = True
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_read, 4096)
            elif fd in self.watched:
                self._reap(self.watched[fd])
        return delivered

    def hand_over_all(self) -> None:
        """Give every watched command to a pool thread (a stop is ended there, with its grace)."""
        for watched in list(self.watched.values()):
            self._hand_over(watched)

    def _launch(self, job: Job) -> Finished | _Watched:
        """Build the command, start it and record the attempt; a failure is its end."""
        command, started_at = "", time.time()
        try:
            call = self._invocation(job)
            command = commands.display(call.argv)
            self._emit_started(job, command)
            child = process.spawn(self._spec(job, call))
            if isinstance(child, process.ProcessOutcome):
                self._record_start(job, call, started_at)
                return self._record_end(job, child, command)
            try:
                # Committed once its process group is known: the pgid and start time are
                # what lets the next run end this group should ptx be killed.
                self._record_start(job, call, started_at, (child.pgid, child.create_time))
            except BaseException:
                child.close()
                raise
            self.emit(TaskSpawned(id=job.task.id, attempt=job.attempt, pid=child.pgid))
        except Exception as error:  # noqa: BLE001 - reported as the attempt's failure
            failed = process.ProcessOutcome.never_ran(
                f"ptx could not run the task: {error}", infrastructure=True
            )
            return _finished(job, failed, command)
        until = time.monotonic() + WATCH_SECONDS
        return _Watched(job, child, command, min(until, child.deadline or until), child.pidfd)

    def _reap(self, watched: _Watched) -> None:
        outcome = watched.child.poll()
        if outcome is not None:
            self._unwatch(watched)  # its pidfd is closed now: the number may come back at once
            self.ended.append(self._record_end(watched.job, outcome, watched.command, later=True))
        elif watched.child.exited:  # processes of its group live on: the pool sweeps them
            self._hand_over(watched)

    def _hand_over_due(self) -> None:
        now = time.monotonic()
        for watched in [w for w in self.watched.values() if w.until <= now]:
            self._hand_over(watched)

    def _hand_over(self, watched: _Watched) -> None:
        self._unwatch(watched)
        self.submit(lambda: self._supervise(watched))

    def _unwatch(self, watched: _Watched) -> None:
        if watched.pidfd is not None and self.watched.pop(watched.pidfd, None) is not None:
            self.poller.unregister(watched.pidfd)

    def _supervise(self, watched: _Watched) -> None:
        """In a pool thread: the rest of a local attempt's life."""
        self._deliver(
            watched.job, lambda: watched.child.supervise(self.stop), lambda: watched.command
        )

    def _run_remote(self, job: Job) -> None:
        """In a pool thread: a whole attempt on a remote executor, or in its own worktree."""
        command = ""
        worktrees, isolated = self.worktrees, None
        if worktrees is not None:
            isolated = IsolatedAttempt(worktrees, task=job.task, attempt=job.attempt, log=job.log)

        def outcome() -> process.ProcessOutcome:
            nonlocal command
            call = self._invocation(job)
            command = commands.display(call.argv)
            self._record_start(job, call, time.time())  # before the remote process exists
            self._emit_started(job, command)
            spawned = functools.partial(self._spawned, job)

            def execute(call: commands.Invocation) -> process.ProcessOutcome:
                return self.executor.run(self._spec(job, call), self.stop, on_start=spawned)

            return execute(call) if isolated is None else isolated.run(call, execute)

        self._deliver(job, outcome, lambda: command, isolated)

    def _deliver(
        self,
        job: Job,
        outcome_of: Callable[[], process.ProcessOutcome],
        command_of: Callable[[], str],
        isolated: IsolatedAttempt | None = None,
    ) -> None:
        """Run `outcome_of` and hand the attempt's end to the scheduler thread, whatever happens:
        the loop must hear of every attempt it began."""
        finished = None
        try:
            try:
                outcome = outcome_of()
            except Exception as error:  # noqa: BLE001 - reported as the attempt's failure
                failed = process.ProcessOutcome.never_ran(
                    f"ptx could not run the task: {error}", infrastructure=True
                )
                finished = _finished(job, failed, command_of())
            else:
                finished = self._record_end(job, outcome, command_of(), isolated=isolated)
        finally:
            if finished is None:
                stopped = process.ProcessOutcome.never_ran("ptx stopped before the task could run")
                finished = _finished(job, stopped, command_of())
            self.post(finished)

    def post(self, finished: Finished) -> None:
        """From any thread: hand `finished` to the scheduler thread's next `wait`."""
        self.inbox.put(finished)
        os.write(self.wake_write, b"\0")

    def _invocation(self, job: Job) -> commands.Invocation:
        task_json = self._task_json(job.task.id)
        files = commands.AttemptFiles(
            task_json=task_json, result=self._result(job), previous_session=job.previous_session
        )
        call = commands.invocation(
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
            commands.write_task_json(job.task, task_json)
        return call

    def _task_json(self, unit: TaskId) -> str:
        return f"{self.scratch}/{unit}.task.json"  # per attempt: no pathlib

    def _result(self, job: Job) -> str:
        return f"{self.scratch}/{job.task.id}.{job.attempt}.result.json"

    def _record_start(
        self,
        job: Job,
        call: commands.Invocation,
        started_at: float,
        group: tuple[int, float] | None = None,
    ) -> None:
        """`group`: the process group's id and its leader's start time, once it runs."""
        pgid, created = group or (None, None)
        self.journal.attempt_started(
            run_id=self.context.run_id,
            task=job.task.id,
            attempt=job.attempt,
            command_hash=call.command_hash,
            log_path=job.log,
            started_at=started_at,
            pgid=pgid,
            create_time=created,
        )

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

    def _spawned(self, job: Job, pgid: int, created: float) -> None:
        """Recorded with the process start time, so a reused pid is never taken for it."""
        unit, attempt = job.task.id, job.attempt
        self.journal.attempt_spawned(
            run_id=self.context.run_id, task=unit, attempt=attempt, pgid=pgid, create_time=created
        )
        self.emit(TaskSpawned(id=unit, attempt=attempt, pid=pgid))

    def _record_end(
        self,
        job: Job,
        outcome: process.ProcessOutcome,
        command: str,
        *,
        later: bool = False,
        isolated: IsolatedAttempt | None = None,
    ) -> Finished:
        """`later`: committed with the next start, or before the scheduler thread waits."""
        result_format = job.options.result or self.config.result
        said = reported.read(self._result(job), job.log, result_format)
        finished = _finished(job, outcome, command, isolated, said)
        self.journal.attempt_ended(
            run_id=self.context.run_id,
            task=job.task.id,
            attempt=job.attempt,
            ended_at=outcome.ended_at,
            exit_code=outcome.exit_code,
            status=finished.status.value,
            reported=said,
            later=later,
        )
        return finished

    def _spec(self, job: Job, call: commands.Invocation) -> process.ProcessSpec:
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
