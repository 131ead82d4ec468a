"""What a run records about each task while it goes on, and the results made from that."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ptx.core.events import FAILURES, RunResult, Status, TaskInfo, TaskIntegration, TaskResult
from ptx.core.model import id_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ptx.core.model import Task, TaskId, TaskOptions
    from ptx.run.attempt import Finished
    from ptx.run.runner import Run

_N = TypeVar("_N", int, float)


@dataclass(slots=True)
class Track:
    """What the loop knows about one unit while the run goes on; only the loop's thread
    touches it."""

    task: Task
    options: TaskOptions  # effective: worked out once when the run starts, not per attempt
    attempts: int = 0
    first_started: float | None = None
    last_ended: float | None = None
    exit_code: int | None = None
    status: Status = Status.NOT_RUN
    reason: str | None = None
    log: str | None = None
    command: str | None = None
    withheld: bool = False  # left out: a status set outside ptx (reason says which)
    integration: TaskIntegration | None = None  # isolated runs: its last attempt's work
    spans: list[tuple[float, float]] = field(default_factory=list)  # each attempt's
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None
    summary: str | None = None
    warnings: list[str] = field(default_factory=list)
    failed_attempts: list[str] = field(default_factory=list)

    @property
    def failure(self) -> str:
        """How it failed, as its dependents' skip reasons say: "conflicted in a.py", "failed"."""
        return self.reason or "conflict" if self.status is Status.CONFLICT else self.status.value

    def ended(self, finished: Finished) -> None:
        """Record an attempt's end: its command, times, status, failure, and what it reported
        back; the one place the loop writes them."""
        outcome, status, exit_code = finished.outcome, finished.status, finished.outcome.exit_code
        self.command = finished.command or self.command
        self.spans.append((outcome.started_at, outcome.ended_at))
        self.last_ended, self.exit_code, self.status = outcome.ended_at, exit_code, status
        self.reason = outcome.error if outcome.infrastructure else None  # "cluster: ..."
        reported = finished.reported
        if status in FAILURES:
            code = "" if exit_code is None else f" (exit {exit_code})"
            self.failed_attempts.append(f"{status.value}{code}")
        if reported.warning is not None:
            self.warnings.append(reported.warning)
        self.cost_usd = _plus(self.cost_usd, reported.cost_usd)
        self.input_tokens = _plus(self.input_tokens, reported.input_tokens)
        self.output_tokens = _plus(self.output_tokens, reported.output_tokens)
        self.session_id = reported.session_id or self.session_id
        self.summary = reported.summary or self.summary

    def result(self, *, interrupted: bool, halted: str | None = None) -> TaskResult:
        """The unit's entry in the run's result; `interrupted`: the run was; `halted`: why the
        run started nothing more, when neither an interrupt nor --fail-fast stopped it."""
        reason = self.reason
        if self.status is Status.NOT_RUN and reason is None:
            reason = "interrupted before it started" if interrupted else halted
            reason = reason or "stopped by --fail-fast"
        return TaskResult(
            id=self.task.id,
            title=self.task.title,
            status=self.status,
            exit_code=self.exit_code,
            attempts=self.attempts,
            started_at=self.first_started,
            ended_at=self.last_ended,
            log=self.log,
            reason=reason,
            command=self.command,
            integration=self.integration,
            spans=tuple(self.spans),
            cost_usd=self.cost_usd,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            session_id=self.session_id,
            summary=self.summary,
            warnings=tuple(self.warnings),
            failed_attempts=tuple(self.failed_attempts),
        )


def _plus(total: _N | None, value: _N | None) -> _N | None:
    """A sum where None is "nothing reported", not zero."""
    if value is None:
        return total
    return value if total is None else total + value


def run_status(results: Iterable[TaskResult], *, interrupted: bool, failed: bool = False) -> str:
    """The run's status: interrupted if it was, succeeded if every task did (and nothing else
    `failed` it), else failed."""
    if interrupted:
        return "interrupted"
    succeeded = all(result.status is Status.SUCCEEDED for result in results)
    return "succeeded" if succeeded and not failed else "failed"


def run_result(run: Run, started: float) -> RunResult:
    """The result of `run`, which started at `started`, from its tracks: withheld units join
    what the selection blocked, and a target that could not run or a status never written
    fails the run."""
    interrupted = bool(run.signals)
    halted = None if run.executor.lost is None else f"not started: {run.executor.lost}"
    if halted is None and run.stopped_by != "--fail-fast":  # the budget
        halted = f"stopped by {run.stopped_by}"
    results, withheld = [], []
    for unit in sorted(run.tracks, key=id_key):
        track = run.tracks[unit]
        if track.withheld:
            withheld.append((unit, track.reason or ""))
        else:
            results.append(track.result(interrupted=interrupted, halted=halted))
    unwritten = run.status_writer.unwritten()
    failed = bool(run.options.failed_targets or unwritten)
    return RunResult(
        run_id=run.run_id,
        status=run_status(results, interrupted=interrupted, failed=failed),
        jobs=run.options.jobs,
        started_at=started,
        ended_at=time.time(),
        tasks=tuple(results),
        dependencies=dict(run.work.deps),
        degraded=run.admission.failures.degraded,
        breakers=tuple(run.admission.breakers.changes),
        held=run.admission.held_seconds(),
        blocked=tuple(sorted([*run.options.blocked, *withheld], key=lambda b: id_key(b[0]))),
        failed_targets=run.options.failed_targets,
        unwritten=unwritten,
        max_cost_usd=run.options.max_cost_usd,
        budget_stopped=run.budget.reached and any(r.status is Status.NOT_RUN for r in results),
        held_starts=tuple(run.admission.held_starts),
    )


def task_infos(
    tracks: Mapping[TaskId, Track],
    deps: Mapping[TaskId, tuple[TaskId, ...]],
    estimates: Mapping[TaskId, float],
) -> tuple[TaskInfo, ...]:
    """What the views need to know of each unit before the run starts, in id order."""
    return tuple(
        TaskInfo(
            id=unit,
            title=tracks[unit].task.title,
            dependencies=deps.get(unit, ()),
            estimate=estimates.get(unit),
        )
        for unit in sorted(tracks, key=id_key)
    )
