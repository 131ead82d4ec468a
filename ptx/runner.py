"""A run: the ready queue feeds a bounded pool; one thread owns every piece of scheduler state."""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import random
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptx import commands, process, safety, schedule
from ptx.admission import Admission, requests_of
from ptx.events import (
    Notice,
    RunFinished,
    RunResult,
    RunStarted,
    Status,
    TaskFinished,
    TaskInfo,
    TaskResult,
    TaskSkipped,
    TaskSpawned,
    TaskStarted,
)
from ptx.journal import log_path
from ptx.model import id_key
from ptx.statusfile import StatusWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import FrameType

    from ptx.config import Config
    from ptx.events import Event, Listener
    from ptx.graph import Graph
    from ptx.journal import Journal
    from ptx.model import Project, Task, TaskId

# An estimate-derived timeout never drops below this: a task measured at 10 ms must not be
# killed because the machine hiccupped.
MIN_DERIVED_TIMEOUT = 5.0
_POLL_SECONDS = 0.1  # how often the loop looks at signals when nothing else happens
# Why each ready unit waits is worked out at most this often (a unit that waits less is not
# reported as waiting for a slot): it walks every ready unit, which must not slow dispatch.
_SURVEY_SECONDS = 0.5
_MAX_BACKOFF = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    jobs: int
    timeout: float | None = None
    retries: int | None = None
    fail_fast: bool = False
    update_status: bool = False
    resumed_from: str | None = None
    argv: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()  # told right after the run starts, e.g. why -j was lowered


@dataclass(frozen=True, slots=True, kw_only=True)
class _Finished:
    unit: TaskId
    attempt: int
    outcome: process.ProcessOutcome
    command: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    """One attempt handed to a pool thread."""

    task: Task
    attempt: int
    log: str
    timeout: float | None


@dataclass(slots=True)
class _Track:
    """What the loop knows about one unit while the run goes on."""

    task: Task
    attempts: int = 0
    first_started: float | None = None
    last_ended: float | None = None
    exit_code: int | None = None
    status: Status = Status.NOT_RUN
    reason: str | None = None
    log: str | None = None
    command: str | None = None


class Run:
    """One `ptx run`: create with the work graph, call `execute()` once from the main thread."""

    def __init__(  # noqa: PLR0913 - the collaborators of a run, each needed
        self,
        *,
        project: Project,
        config: Config,
        work: Graph,
        estimates: Mapping[TaskId, float],
        journal: Journal,
        state_dir: Path,
        options: RunOptions,
        listener: Listener,
        probe: safety.SystemProbe | None = None,
    ) -> None:
        self.project, self.config, self.work = project, config, work
        self.estimates, self.journal, self.state_dir = estimates, journal, state_dir
        self.options, self.emit = options, listener
        self.queue = schedule.ReadyQueue(work, schedule.rank_keys(work, estimates or None))
        self.tracks = {unit: _Track(task=task) for unit, task in work.nodes.items()}
        self.inbox: queue.Queue[_Finished] = queue.Queue()
        self.stop = process.Stop()
        self.running: set[TaskId] = set()
        self.delayed: list[tuple[float, TaskId]] = []  # retries waiting for their backoff
        self.starting = True  # false once fail-fast or an interrupt stops new starts
        self.signals = 0
        self.status_writer = StatusWriter(project, enabled=options.update_status, emit=listener)
        self.run_id = ""
        self.admission = Admission(
            config=config,
            requests=requests_of(work.nodes.values(), config),
            jobs=options.jobs,
            total=len(self.tracks),
            probe=probe or safety.PsutilProbe(),
        )
        self.survey_due = time.monotonic() + _SURVEY_SECONDS

    def execute(self) -> RunResult:
        started = time.time()
        self.run_id = self.journal.start_run(
            tag=self.project.tasks.tag,
            jobs=self.options.jobs,
            tasks_file=str(self.project.path),
            argv=self.options.argv,
            resumed_from=self.options.resumed_from,
        )
        self.context = commands.RunContext(
            root=self.project.root,
            tag=self.project.tasks.tag,
            run_id=self.run_id,
            base_env=dict(os.environ),
        )
        log_dir = self.state_dir / "logs" / self.run_id
        log_dir.mkdir(parents=True, exist_ok=True)
        self.emit(
            RunStarted(
                run_id=self.run_id,
                jobs=self.options.jobs,
                total=len(self.tracks),
                log_dir=str(log_dir),
                tasks=self._infos(),
            )
        )
        for message in self.options.notices:
            self.emit(Notice(message=message))
        with (
            _signals_caught(self._on_signal),
            _scratch_dir(self.run_id) as self.scratch,
            ThreadPoolExecutor(self.options.jobs) as pool,
        ):
            try:
                self._loop(pool)
            except BaseException:
                # Leaving the pool waits for every attempt: none may run on unsupervised.
                self.stop.request(immediate=True)
                raise
        self.status_writer.finish()
        result = self._result(started)
        self.journal.finish_run(self.run_id, status=result.status, ended_at=result.ended_at)
        self.emit(RunFinished(result=result))
        return result

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while self.running or (self.starting and not self.queue.is_finished()):
            self._react_to_signals()
            self._release_due_retries()
            self._emit_all(self.admission.tick())
            self._start_ready(pool)
            self._skip_stuck()
            self._survey()
            self._wait_for_one()

    def _start_ready(self, pool: ThreadPoolExecutor) -> None:
        """Start the best ready units while a slot, the machine, their resources and their
        breakers allow it."""
        while self.starting and self.queue.ready_count():
            if self.admission.held_back(len(self.running)) is not None:
                return
            unit = self.queue.take(self.admission.picker(self.emit))
            if unit is None:
                return
            self._start(pool, unit)

    def _skip_stuck(self) -> None:
        """Nothing runs and no retry is due, so what is still ready waits only behind open
        breakers that no result can close any more: skipped, rather than idling until a
        breaker's timeout lets one trial through."""
        if self.running or self.delayed or not self.starting:
            return
        while (unit := self.queue.take(self.admission.stuck_predicate)) is not None:
            reason = self.admission.stuck(unit) or "blocked"
            self.admission.skipped(unit)
            self.tracks[unit].status, self.tracks[unit].reason = Status.SKIPPED, reason
            self.emit(TaskSkipped(id=unit, reason=reason))
            self._skip_dependents(unit)

    def _survey(self) -> None:
        now = time.monotonic()
        if not self.starting or not self.queue.ready_count() or now < self.survey_due:
            return
        self.survey_due = now + _SURVEY_SECONDS
        self.queue.take(self.admission.survey(len(self.running), self.emit))

    def _emit_all(self, events: list[Event]) -> None:
        for event in events:
            self.emit(event)

    def _wait_for_one(self) -> None:
        timeout = _POLL_SECONDS
        if self.delayed:
            timeout = min(timeout, max(0.0, self.delayed[0][0] - time.monotonic()))
        next_tick = self.admission.next_tick()
        if next_tick is not None:
            timeout = min(timeout, next_tick)
        with contextlib.suppress(queue.Empty):
            self._on_finished(self.inbox.get(timeout=timeout))
            while True:  # drain whatever else finished meanwhile before starting more
                self._on_finished(self.inbox.get_nowait())

    def _infos(self) -> tuple[TaskInfo, ...]:
        return tuple(
            TaskInfo(
                id=unit,
                title=self.tracks[unit].task.title,
                dependencies=self.work.deps.get(unit, ()),
                estimate=self.estimates.get(unit),
            )
            for unit in sorted(self.tracks, key=id_key)
        )

    def _start(self, pool: ThreadPoolExecutor, unit: TaskId) -> None:
        track = self.tracks[unit]
        track.attempts += 1
        if track.first_started is None:
            track.first_started = time.time()
            self.status_writer.started(unit)
        path = log_path(self.state_dir, self.run_id, unit, track.attempts)
        track.log = str(path)
        self.running.add(unit)
        self.admission.started(unit)
        job = _Job(
            task=track.task,
            attempt=track.attempts,
            log=track.log,
            timeout=self._timeout(track.task),
        )
        pool.submit(self._attempt, job)

    def _attempt(self, job: _Job) -> None:
        """Runs in a pool thread and owns the attempt: its command, files, journal rows and
        process. The scheduler thread only schedules, so it answers the next finish sooner."""
        outcome, command = _failed_to_run("ptx stopped before the task could run"), ""
        try:
            outcome, command = self._run(job)
        finally:  # whatever happens, the loop must hear of every attempt it started
            self.inbox.put(
                _Finished(unit=job.task.id, attempt=job.attempt, outcome=outcome, command=command)
            )

    def _run(self, job: _Job) -> tuple[process.ProcessOutcome, str]:
        unit, attempt = job.task.id, job.attempt
        task_json = self.scratch / f"{unit}.task.json"
        command = ""

        def spawned(pgid: int, create_time: float) -> None:
            self.journal.attempt_spawned(
                run_id=self.run_id, task=unit, attempt=attempt, pgid=pgid, create_time=create_time
            )
            self.emit(TaskSpawned(id=unit, attempt=attempt, pid=pgid))

        try:
            call = commands.invocation(
                job.task, self.config, self.context, attempt=attempt, task_json=task_json
            )
            command = commands.display(call.argv)
            self._announce(job, call, command)
            if not task_json.exists():  # one file per task and run, shared by its attempts
                commands.write_task_json(job.task, task_json)
            outcome = process.run_process(self._spec(job, call), self.stop, on_start=spawned)
        except Exception as error:  # noqa: BLE001 - reported as the attempt's failure
            return _failed_to_run(f"ptx could not run the task: {error}"), command
        self.journal.attempt_ended(
            run_id=self.run_id,
            task=unit,
            attempt=attempt,
            ended_at=outcome.ended_at,
            exit_code=outcome.exit_code,
            status=_status_of(outcome).value,
        )
        return outcome, command

    def _announce(self, job: _Job, call: commands.Invocation, command: str) -> None:
        """The attempt is committed to the journal before its process exists."""
        self.journal.attempt_started(
            run_id=self.run_id,
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

    def _spec(self, job: _Job, call: commands.Invocation) -> process.ProcessSpec:
        return process.ProcessSpec(
            argv=call.argv,
            cwd=call.cwd,
            env=call.env,
            log_path=job.log,
            timeout=job.timeout,
            grace=self.config.kill_grace_seconds,
            memory_limit=commands.effective_options(job.task, self.config).memory_limit,
        )

    def _on_finished(self, message: _Finished) -> None:
        unit, outcome = message.unit, message.outcome
        track = self.tracks[unit]
        status = _status_of(outcome)
        self.running.discard(unit)
        track.command = message.command or track.command
        track.last_ended, track.exit_code, track.status = (
            outcome.ended_at,
            outcome.exit_code,
            status,
        )
        retry_in = self._retry_delay(track) if status in _RETRYABLE else None
        self.emit(
            TaskFinished(
                id=unit,
                attempt=message.attempt,
                status=status,
                exit_code=outcome.exit_code,
                duration=outcome.ended_at - outcome.started_at,
                log=track.log or "",
                retry_in=retry_in,
                error=outcome.error,
            )
        )
        self._emit_all(self.admission.finished(unit, status, final=retry_in is None))
        if status is Status.SUCCEEDED:
            self.queue.done(unit)
            self.status_writer.succeeded(unit)
        elif retry_in is not None:
            heapq.heappush(self.delayed, (time.monotonic() + retry_in, unit))
        elif status is not Status.INTERRUPTED:
            self._give_up(unit)

    def _give_up(self, unit: TaskId) -> None:
        self.status_writer.failed(unit)
        self._skip_dependents(unit)
        if self.options.fail_fast and self.starting:
            self.starting = False
            self.emit(Notice(message=f"task {unit} failed: --fail-fast starts nothing more"))

    def _skip_dependents(self, unit: TaskId) -> None:
        for dependent in self.queue.fail(unit):
            reason = f"dependency {unit} {self.tracks[unit].status.value}"
            self.tracks[dependent].status, self.tracks[dependent].reason = Status.SKIPPED, reason
            self.emit(TaskSkipped(id=dependent, reason=reason))
            self.admission.skipped(dependent)

    def _retry_delay(self, track: _Track) -> float | None:
        allowed = self._retries(track.task)
        if not self.starting or track.attempts > allowed:
            return None
        base = self.config.retry_backoff_seconds * 2.0 ** (track.attempts - 1)
        return min(_MAX_BACKOFF, base) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto

    def _release_due_retries(self) -> None:
        now = time.monotonic()
        while self.delayed and (self.delayed[0][0] <= now or not self.starting):
            _, unit = heapq.heappop(self.delayed)
            if self.starting:
                self.queue.put_back(unit)
            else:  # fail-fast or an interrupt came while it waited: its last failure stands
                self._give_up(unit)

    def _retries(self, task: Task) -> int:
        options = commands.effective_options(task, self.config)
        if options.retries is not None:
            return options.retries
        return self.options.retries if self.options.retries is not None else self.config.retries

    def _timeout(self, task: Task) -> float | None:
        """Per task, then --timeout, then the config default, then multiplier x estimate."""
        options = commands.effective_options(task, self.config)
        for seconds in (options.timeout_seconds, self.options.timeout):
            if seconds is not None:
                return seconds
        if self.config.default_timeout_seconds is not None:
            return self.config.default_timeout_seconds
        estimate = self.estimates.get(task.id)
        if estimate is None:
            return None
        multiplier = self.config.safety_thresholds.timeout_multiplier
        return max(multiplier * estimate, MIN_DERIVED_TIMEOUT)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only counts: the loop acts on it, so no lock is ever taken inside a signal handler.
        del signum
        self.signals += 1

    def _react_to_signals(self) -> None:
        if not self.signals or (self.stop.requested and not self._escalate()):
            return
        immediate = self.signals >= 2
        if self.starting or immediate:
            how = "killing tasks now" if immediate else "stopping tasks (Ctrl-C again to kill)"
            self.emit(Notice(message=f"interrupted: {how}", warning=True))
        self.starting = False
        self.stop.request(immediate=immediate)

    def _escalate(self) -> bool:
        return self.signals >= 2 and not self.stop.immediate

    def _result(self, started: float) -> RunResult:
        results = tuple(self._task_result(unit) for unit in sorted(self.tracks, key=id_key))
        statuses = {result.status for result in results}
        if self.signals:
            status = "interrupted"
        elif statuses <= {Status.SUCCEEDED}:
            status = "succeeded"
        else:
            status = "failed"
        return RunResult(
            run_id=self.run_id,
            status=status,
            jobs=self.options.jobs,
            started_at=started,
            ended_at=time.time(),
            tasks=results,
            dependencies=dict(self.work.deps),
            degraded=self.admission.failures.degraded,
            breakers=tuple(self.admission.breakers.changes),
        )

    def _task_result(self, unit: TaskId) -> TaskResult:
        track = self.tracks[unit]
        reason = track.reason
        if track.status is Status.NOT_RUN and reason is None:
            reason = "interrupted before it started" if self.signals else "stopped by --fail-fast"
        return TaskResult(
            id=unit,
            title=track.task.title,
            status=track.status,
            exit_code=track.exit_code,
            attempts=track.attempts,
            started_at=track.first_started,
            ended_at=track.last_ended,
            log=track.log,
            reason=reason,
            command=track.command,
        )


_RETRYABLE = frozenset({Status.FAILED, Status.TIMEOUT, Status.MEMORY_EXCEEDED})


def _failed_to_run(error: str) -> process.ProcessOutcome:
    now = time.time()
    return process.ProcessOutcome(
        exit_code=None,
        signal=None,
        timed_out=False,
        interrupted=False,
        started_at=now,
        ended_at=now,
        pid=0,
        error=error,
    )


def _status_of(outcome: process.ProcessOutcome) -> Status:
    if outcome.interrupted:
        return Status.INTERRUPTED
    if outcome.memory_exceeded:
        return Status.MEMORY_EXCEEDED
    if outcome.timed_out:
        return Status.TIMEOUT
    return Status.SUCCEEDED if outcome.exit_code == 0 else Status.FAILED


@contextlib.contextmanager
def _scratch_dir(run_id: str) -> Iterator[Path]:
    """Where the PTX_TASK_JSON files live during the run: tmpfs when there is one, because
    creating a file on a disk costs about as much as starting a no-op task."""
    shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp directory inside it
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix=f"ptx-{run_id}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _signals_caught(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP go to `handler` for the run; outside the main thread, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, handler) for number in caught}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
