"""The journal's runs as the dashboard shows them: runs over time, one run's attempts on their
worker slots with why starts were held, and each task across runs. Pure data, no plotting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ptx.core.events import FAILURES, Status
from ptx.core.model import id_key
from ptx.outputs.report import result_from_dict
from ptx.outputs.trace import worker_slots

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ptx.core.events import RunResult
    from ptx.journal.schema import AttemptRecord, RunInfo
    from ptx.journal.store import Journal

_FAILED = frozenset(status.value for status in FAILURES)
SLOT_REASON = "a free slot"  # a ready task that waited while every slot was busy


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPoint:
    """One run on the runs-over-time charts; the figures are None for a run without a report."""

    run_id: str
    started_at: float
    status: str
    tasks: int | None = None
    wall: float | None = None
    work: float | None = None
    speedup: float | None = None
    optimality: float | None = None
    failures: int | None = None
    flaky: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One attempt on its worker slot, in seconds from the run's start."""

    task: str
    title: str
    attempt: int
    slot: int
    start: float
    end: float
    status: str
    critical: bool
    retried: bool  # another attempt followed this one
    cost_usd: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldStart:
    """A task that was ready before it started, and why it waited (the last reason told)."""

    task: str
    ready: float  # seconds from the run's start
    start: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDetail:
    run_id: str
    status: str
    jobs: int
    wall: float
    critical_path: tuple[str, ...]
    bars: tuple[Bar, ...]
    held: tuple[HeldStart, ...]


@dataclass(slots=True)
class TaskHistory:
    """One task across the runs it ran in, oldest first."""

    task: str
    title: str = ""
    started: list[float] = field(default_factory=list)  # the run's start, per run
    durations: list[float | None] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # "pass", "fail" or "flaky"
    cost_usd: float = 0.0

    @property
    def success_rate(self) -> float:
        return sum(outcome != "fail" for outcome in self.outcomes) / max(1, len(self.outcomes))

    @property
    def flip_rate(self) -> float:
        """Share of its runs in which its outcome flipped: it was flaky in the run, or passed
        where it failed the run before, or failed where it passed."""
        flips, before = 0, None
        for outcome in self.outcomes:
            now = "fail" if outcome == "fail" else "pass"
            flips += outcome == "flaky" or (before is not None and now != before)
            before = now
        return flips / max(1, len(self.outcomes))

    @property
    def mean_duration(self) -> float:
        known = [seconds for seconds in self.durations if seconds is not None]
        return sum(known) / len(known) if known else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    runs: tuple[RunPoint, ...]  # oldest first
    detail: RunDetail | None  # the run chosen, the latest with a report by default
    tasks: tuple[TaskHistory, ...]  # in id order


def load(journal: Journal, *, limit: int, run_id: str | None = None) -> History:
    """The last `limit` runs of the journal, and the detail of `run_id` (default: the latest
    run with a report)."""
    infos = list(reversed(journal.runs(limit)))
    reports = {info.run_id: _parsed(journal.report(info.run_id)) for info in infos}
    chosen = run_id or next((i.run_id for i in reversed(infos) if reports[i.run_id]), None)
    detail = None
    if chosen is not None:
        report = reports.get(chosen) or _parsed(journal.report(chosen))
        if report is not None:
            detail = run_detail(result_from_dict(report), journal.attempts(chosen))
    return History(
        runs=tuple(run_point(info, reports[info.run_id]) for info in infos),
        detail=detail,
        tasks=task_histories([(info, reports[info.run_id]) for info in infos]),
    )


def _parsed(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def run_point(info: RunInfo, report: Mapping[str, Any] | None) -> RunPoint:
    if report is None:
        return RunPoint(run_id=info.run_id, started_at=info.started_at, status=info.status)
    tasks = report.get("tasks") or []
    return RunPoint(
        run_id=info.run_id,
        started_at=info.started_at,
        status=info.status,
        tasks=len(tasks),
        wall=report.get("wall_seconds"),
        work=report.get("work_seconds"),
        speedup=report.get("speedup"),
        optimality=report.get("optimality"),
        failures=sum(entry.get("status") in _FAILED for entry in tasks),
        flaky=sum(bool(entry.get("flaky")) for entry in tasks),
        cost_usd=report.get("cost_usd"),
    )


def task_histories(
    runs: Sequence[tuple[RunInfo, Mapping[str, Any] | None]],
) -> tuple[TaskHistory, ...]:
    histories: dict[str, TaskHistory] = {}
    for info, report in runs:
        for entry in (report or {}).get("tasks") or ():
            status = entry.get("status")
            if status != Status.SUCCEEDED.value and status not in _FAILED:
                continue  # skipped, not run, interrupted: says nothing of the task itself
            history = histories.setdefault(entry["id"], TaskHistory(task=entry["id"]))
            history.title = entry.get("title") or history.title
            history.started.append(info.started_at)
            history.durations.append(entry.get("duration_seconds"))
            flaky = "flaky" if entry.get("flaky") else "pass"
            history.outcomes.append("fail" if status in _FAILED else flaky)
            history.cost_usd += entry.get("cost_usd") or 0.0
    return tuple(histories[task] for task in sorted(histories, key=id_key))


def run_detail(result: RunResult, attempts: Sequence[AttemptRecord]) -> RunDetail:
    """The run's attempts on the worker slots they must have used, and its held starts."""
    ordered = sorted(attempts, key=lambda r: (r.started_at, id_key(r.task), r.attempt))
    ends = [r.ended_at if r.ended_at is not None else result.ended_at for r in ordered]
    slots = worker_slots([(r.started_at, end) for r, end in zip(ordered, ends, strict=True)])
    critical = set(_critical(result))
    last = {r.task: r.attempt for r in ordered}
    titles = {task.id: task.title for task in result.tasks}
    origin = result.started_at
    bars = tuple(
        Bar(
            task=r.task,
            title=titles.get(r.task, ""),
            attempt=r.attempt,
            slot=slot,
            start=r.started_at - origin,
            end=end - origin,
            status=r.status,
            critical=r.task in critical and r.attempt == last[r.task],
            retried=r.attempt < last[r.task],
            cost_usd=r.cost_usd,
        )
        for r, end, slot in zip(ordered, ends, slots, strict=True)
    )
    return RunDetail(
        run_id=result.run_id,
        status=result.status,
        jobs=result.jobs,
        wall=result.ended_at - origin,
        critical_path=_critical(result),
        bars=bars,
        held=held_starts(result, bars),
    )


def _critical(result: RunResult) -> tuple[str, ...]:
    from ptx.outputs.report import figures  # noqa: PLC0415 - the figures are cached per result

    return figures(result).critical_path


def held_starts(result: RunResult, bars: Sequence[Bar]) -> tuple[HeldStart, ...]:
    """Each task that started after it was ready (its dependencies done): from then to its
    first start, with the last reason the run told for it, else a slot (all were busy)."""
    first = {bar.task: bar.start for bar in reversed(bars)}
    done = {bar.task: bar.end for bar in bars if not bar.retried}
    reasons = {held.id: held.reason for held in result.held_starts}
    found = []
    for unit, start in first.items():
        deps = result.dependencies.get(unit, ())
        ready = max((done.get(dep, 0.0) for dep in deps), default=0.0)
        if start - ready > _HELD_SECONDS:
            reason = reasons.get(unit, SLOT_REASON)
            found.append(HeldStart(task=unit, ready=ready, start=start, reason=reason))
    return tuple(sorted(found, key=lambda held: (held.ready, id_key(held.task))))


_HELD_SECONDS = 0.05  # a start this soon after its dependencies ended was not held
