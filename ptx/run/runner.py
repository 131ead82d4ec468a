"""A run: the ready queue feeds a bounded pool; one thread owns every piece of scheduler state."""

from __future__ import annotations

import dataclasses
import heapq
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.events import (
    Notice,
    RunFinished,
    RunResult,
    RunStarted,
    Status,
    TaskFinished,
    TaskSkipped,
)
from ptx.executors import process
from ptx.executors.local import LocalExecutor
from ptx.graph import schedule
from ptx.journal.statedir import log_dir, log_path
from ptx.outputs.report import stored_report
from ptx.run import commandline, interrupts, policy, safety
from ptx.run.admission import SLOT, Admission, requests_of
from ptx.run.attempt import Attempts, Finished, Job
from ptx.run.integration import Session, open_session
from ptx.run.orphans import Orphans
from ptx.run.statuses import StatusWriter
from ptx.run.track import Track, run_result, task_infos

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from types import FrameType

    from ptx.core.events import Event, Listener
    from ptx.core.model import Project, TaskId
    from ptx.executors.base import Executor
    from ptx.graph.units import Graph
    from ptx.journal.store import Journal
    from ptx.run.isolation import IsolatedAttempt, Isolation
    from ptx.taskmaster.config import Config

_POLL_SECONDS = 0.1  # how often the loop looks at signals when nothing else happens
# Why each ready unit waits is worked out at most this often (a unit that waits less is not
# reported as waiting for a slot): it walks every ready unit, which must not slow dispatch.
_SURVEY_SECONDS = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    jobs: int
    timeout: float | None = None
    retries: int | None = None
    fail_fast: bool = False
    update_status: bool = False
    resumed_from: str | None = None
    kept: str | None = None  # JSON of the options a --resume of this run keeps
    max_cost_usd: float | None = None  # no task starts once the reported cost reaches it
    argv: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()  # told right after the run starts, e.g. why -j was lowered
    blocked: tuple[tuple[TaskId, str], ...] = ()  # what the selection left out, and why
    failed_targets: tuple[TaskId, ...] = ()  # targets among them: the run fails
    isolation: Isolation | None = None  # each attempt in its own git worktree


class Run:
    """One `ptx run`: create with the work graph, call `execute()` once from the main thread."""

    session: Session | None = None  # an isolated run's integration

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
        executor: Executor | None = None,
    ) -> None:
        self.project, self.config, self.work = project, config, work
        self.estimates, self.journal, self.state_dir = estimates, journal, state_dir
        self.options, self.emit = options, listener
        self.executor = executor or LocalExecutor()
        self.queue = schedule.ReadyQueue(work, schedule.rank_keys(work, estimates or None))
        self.tracks = {
            unit: Track(task=task, options=commandline.effective_options(task, config))
            for unit, task in work.nodes.items()
        }
        self.stop = process.Stop()
        self.running: set[TaskId] = set()
        self.delayed: list[tuple[float, TaskId]] = []  # retries waiting for their backoff
        self.starting = True  # false once fail-fast, the budget or an interrupt stops new starts
        self.stopped_by = "--fail-fast"  # what stopped new starts, when no interrupt did
        self.budget = policy.Budget(options.max_cost_usd)
        self.signals = 0
        self.status_writer = StatusWriter.for_run(project, config, options.update_status, listener)
        self.run_id = ""
        self.log_dir = ""  # the run's, once it is recorded
        self.admission = Admission(
            config=config,
            requests=requests_of(work.nodes.values(), config),
            jobs=options.jobs,
            probe=probe or safety.PsutilProbe(),
        )
        self.survey_due = time.monotonic() + _SURVEY_SECONDS
        self.integrating: set[TaskId] = set()  # succeeded, their work waiting for its merge
        self.orphans = Orphans()

    def execute(self) -> RunResult:
        started = time.time()
        context = self._begin()
        with (
            interrupts.caught(self._on_signal),
            commandline.scratch_dir(self.run_id, len(self.tracks)) as scratch,
            self.orphans.adopted(self),  # after the pool: every attempt has ended by then
            ThreadPoolExecutor(self.options.jobs) as pool,
        ):
            attempts = Attempts(
                config=self.config,
                journal=self.journal,
                context=context,
                scratch=scratch,
                stop=self.stop,
                emit=self.emit,
                submit=pool.submit,
                executor=self.executor,
            )
            try:
                self.session, attempts.worktrees = open_session(self, attempts.post)
                attempts.prepare(
                    (track.task for track in self.tracks.values()), lambda: bool(self.signals)
                )
                self._loop(attempts)
            except BaseException:
                # Leaving the pool waits for every attempt: none may run on unsupervised.
                self.stop.request(immediate=True)
                raise
            finally:
                integration = self.session.close() if self.session is not None else None
        self._emit_all(self.admission.hold(None))  # closes the last hold
        self.status_writer.finish()
        result = dataclasses.replace(run_result(self, started), integration=integration)
        self.journal.finish_run(self.run_id, status=result.status, ended_at=result.ended_at)
        self.journal.save_report(self.run_id, stored_report(result))
        self.emit(RunFinished(result=result))
        return result

    def _begin(self) -> commandline.RunContext:
        """Record the run, make its log directory and announce it."""
        self.run_id = self.journal.start_run(
            tag=self.project.tasks.tag,
            jobs=self.options.jobs,
            tasks_file=str(self.project.path),
            argv=self.options.argv,
            resumed_from=self.options.resumed_from,
            units=len(self.tracks),
            options=self.options.kept,
        )
        logs = log_dir(self.state_dir, self.run_id)
        logs.mkdir(parents=True, exist_ok=True)
        self.log_dir = str(logs)
        self.emit(
            RunStarted(
                run_id=self.run_id,
                jobs=self.options.jobs,
                total=len(self.tracks),
                log_dir=self.log_dir,
                tasks=task_infos(self.tracks, self.work.deps, self.estimates),
            )
        )
        for message in self.options.notices:
            self.emit(Notice(message=message))
        return commandline.RunContext(
            root=self.project.root,
            tag=self.project.tasks.tag,
            run_id=self.run_id,
            base_env=dict(os.environ),
        )

    def _loop(self, attempts: Attempts) -> None:
        while self.running or self.integrating or (self.starting and not self.queue.is_finished()):
            self._react_to_signals()
            self.starting = self.starting and self.executor.lost is None  # it says so itself
            self._release_due_retries()
            self._emit_all(self.admission.tick())
            self._start_ready(attempts)
            self._skip_stuck()
            self._survey()
            self.orphans.tick()
            self._wait_for_one(attempts)

    def _start_ready(self, attempts: Attempts) -> None:
        """Start the best ready units while a slot, the machine, their resources and their
        breakers allow it."""
        held = None  # the machine guard that keeps every ready unit waiting, if one does
        while self.starting and self.queue.ready_count():
            reason = self.admission.held_back(len(self.running))
            if reason is not None:
                held = None if reason == SLOT else reason
                break
            unit = self.queue.take(self.admission.picker(self.emit))
            if unit is None:
                break
            self._start(attempts, unit)
        self._emit_all(self.admission.hold(held))

    def _skip_stuck(self) -> None:
        """Nothing runs and no retry is due, so what is still ready waits only behind open
        breakers that no result can close any more: skipped, rather than idling until a
        breaker's timeout lets one trial through."""
        if self.running or self.delayed or not self.starting:
            return
        reasons: dict[TaskId, str] = {}

        def stuck(unit: TaskId) -> bool:
            # Keeps the reason the pick saw, so it is not worked out a second time.
            reason = self.admission.stuck(unit)
            if reason is not None:
                reasons[unit] = reason
            return reason is not None

        while (unit := self.queue.take(stuck)) is not None:
            self._skip(unit, reasons[unit])
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

    def _wait_for_one(self, attempts: Attempts) -> None:
        timeout = _POLL_SECONDS
        if self.delayed:
            timeout = min(timeout, max(0.0, self.delayed[0][0] - time.monotonic()))
        next_tick = self.admission.next_tick()
        if next_tick is not None:
            timeout = min(timeout, next_tick)
        for finished in attempts.wait(timeout):
            self._on_finished(finished)

    def _start(self, attempts: Attempts, unit: TaskId) -> None:
        track = self.tracks[unit]
        if track.first_started is None:
            foreign = self.status_writer.started(unit)
            if foreign is not None:
                self._withdraw(unit, foreign)
                return
            track.first_started = time.time()
        track.attempts += 1
        track.log = log_path(self.log_dir, unit, track.attempts)
        self.running.add(unit)
        self.admission.started(unit)
        attempts.begin(
            Job(
                task=track.task,
                options=track.options,
                attempt=track.attempts,
                log=track.log,
                timeout=self._timeout(track),
                previous_session=track.session_id or "",
            )
        )

    def _withdraw(self, unit: TaskId, status: str) -> None:
        """Its status was set during the run so that it must not run: it is left out (listed
        as blocked), and so is what waits for it unless that status satisfies dependencies."""
        self.emit(Notice(message=f"not starting {unit}: its status is now {status}", warning=True))
        satisfied = status in self.config.satisfied_statuses
        left = () if satisfied else self.queue.fail(unit)
        if satisfied:
            self.queue.done(unit)
        self._skip(unit, f"status set to {status} during the run", withheld=True)
        for dependent in left:
            self._skip(dependent, f"waits for {unit} ({status})", withheld=True)

    def _on_finished(self, message: Finished) -> None:
        unit, outcome, status = message.unit, message.outcome, message.status
        track = self.tracks[unit]
        if message.isolated is not None:
            track.integration = message.isolated.described()
            if unit in self.integrating:
                self._on_integrated(message, message.isolated)
                return
        self.running.discard(unit)
        track.ended(message)
        self._charge(unit, message)
        retry_in = self._retry_delay(track)
        self._announce(message, retry_in, outcome.error)
        final, infra = retry_in is None, outcome.infrastructure
        self._emit_all(self.admission.finished(unit, status, final=final, infrastructure=infra))
        if status is Status.SUCCEEDED:
            self.queue.done(unit)
            self.status_writer.succeeded(unit)
        elif status is Status.INTEGRATING and self.session and message.isolated:
            self.integrating.add(unit)
            self.session.submit(message, message.isolated, track.task.title)
        elif retry_in is not None:
            heapq.heappush(self.delayed, (time.monotonic() + retry_in, unit))
        elif status is not Status.INTERRUPTED:
            self._give_up(unit)

    def _announce(self, message: Finished, retry_in: float | None, error: str | None) -> None:
        ended = message.outcome
        self.emit(
            TaskFinished(
                id=message.unit,
                attempt=message.attempt,
                status=message.status,
                exit_code=ended.exit_code,
                duration=ended.ended_at - ended.started_at,
                log=self.tracks[message.unit].log or "",
                retry_in=retry_in,
                error=error,
            )
        )

    def _on_integrated(self, message: Finished, isolated: IsolatedAttempt) -> None:
        """The integration thread is done with a task's work: it is merged, or not."""
        unit, track = message.unit, self.tracks[message.unit]
        self.integrating.discard(unit)
        track.status, track.reason = message.status, isolated.reason
        self._announce(message, None, isolated.reason)
        if message.status is Status.SUCCEEDED:
            self.queue.done(unit)
            self.status_writer.succeeded(unit)
        elif message.status is not Status.INTERRUPTED:
            self._give_up(unit)

    def _charge(self, unit: TaskId, message: Finished) -> None:
        """Tell what was not understood of an attempt's report, add its cost, and stop new
        starts once the budget is reached (before a retry is decided: none starts either)."""
        reported = message.reported
        if reported.warning is not None:
            text = f"task {unit} attempt {message.attempt}: {reported.warning}"
            self.emit(Notice(message=text, warning=True))
        if self.budget.charge(reported.cost_usd) and self.starting:
            self.starting, self.stopped_by = False, "the budget (--max-cost)"
            self.emit(Notice(message=self.budget.reached_text(), warning=True))

    def _give_up(self, unit: TaskId) -> None:
        self.status_writer.failed(unit)
        self._skip_dependents(unit)
        if self.options.fail_fast and self.starting:
            self.starting = False
            self.emit(Notice(message=f"task {unit} failed: --fail-fast starts nothing more"))

    def _skip_dependents(self, unit: TaskId) -> None:
        for dependent in self.queue.fail(unit):
            self._skip(dependent, f"dependency {unit} {self.tracks[unit].failure}")

    def _skip(self, unit: TaskId, reason: str, *, withheld: bool = False) -> None:
        """`unit` will not run; `withheld`: left out of the run (a status set outside ptx)."""
        track = self.tracks[unit]
        track.status = track.status if withheld else Status.SKIPPED
        track.reason, track.withheld = reason, withheld
        self.emit(TaskSkipped(id=unit, reason=reason))
        self.admission.skipped(unit)

    def _retry_delay(self, track: Track) -> float | None:
        if not self.starting or self.executor.lost is not None:  # no retry on a lost cluster
            return None
        allowed = policy.retries(track.options, self.config, cli=self.options.retries)
        base = self.config.retry_backoff_seconds
        return policy.retry_delay(track.status, track.attempts, allowed=allowed, base=base)

    def _release_due_retries(self) -> None:
        now = time.monotonic()
        while self.delayed and (self.delayed[0][0] <= now or not self.starting):
            _, unit = heapq.heappop(self.delayed)
            if self.starting:
                self.queue.put_back(unit)
            else:  # fail-fast or an interrupt came while it waited: its last failure stands
                self._give_up(unit)

    def _timeout(self, track: Track) -> float | None:
        estimate = self.estimates.get(track.task.id)
        return policy.timeout(
            track.options, self.config, cli=self.options.timeout, estimate=estimate
        )

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only counts: the loop acts on it, so no lock is ever taken inside a signal handler.
        self.signals += 2 if signum in interrupts.IMMEDIATE else 1

    def _react_to_signals(self) -> None:
        escalate = self.signals >= 2 and not self.stop.immediate
        if not self.signals or (self.stop.requested and not escalate):
            return
        immediate = self.signals >= 2
        if self.starting or immediate:
            how = "killing tasks now" if immediate else "stopping tasks (Ctrl-C again to kill)"
            self.emit(Notice(message=f"interrupted: {how}", warning=True))
        self.starting = False
        self.stop.request(immediate=immediate)
