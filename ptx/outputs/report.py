"""The figures of a finished run and its machine-readable report; pure computation."""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ptx.core.events import BreakerChanged, Degraded, Held, RunResult, Status, TaskResult
from ptx.core.model import id_key, seconds_text
from ptx.executors.logfile import log_end
from ptx.graph.digraph import Structure, dependents, depths, indexed, kahn, longest_path
from ptx.outputs import integration

if TYPE_CHECKING:
    from pathlib import Path

    from ptx.core.model import TaskId
    from ptx.journal.schema import RunInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    wall: float
    work: float
    speedup: float
    efficiency: float
    critical_path: tuple[TaskId, ...]
    critical_seconds: float
    bound: float
    optimality: float
    level_barrier: float


_MIN_WALL = 1e-9  # a run that took no measurable time still divides by something


def figures(result: RunResult) -> Figures:
    """The run's figures. The journal's report, the screen and each export all ask for them,
    and a longest path and level-barrier schedule over thousands of tasks is not free: the
    figures of the last result asked for are kept."""
    if _last_figures and _last_figures[0][0] is result:
        return _last_figures[0][1]
    numbers = _figures(result)
    _last_figures[:] = [(result, numbers)]
    return numbers


_last_figures: list[tuple[RunResult, Figures]] = []  # results are immutable


def _figures(result: RunResult) -> Figures:
    durations = {task.id: task.duration or 0.0 for task in result.tasks}
    wall = max(result.ended_at - result.started_at, _MIN_WALL)
    work = sum(durations.values())
    shape = graph_of(result.dependencies, durations)
    weight = [durations.get(unit, 0.0) for unit in shape.ids]
    chain, length = longest_path(shape.adj, shape.order, weight)
    ran = {task.id for task in result.tasks if task.started_at is not None}
    path = tuple(shape.ids[v] for v in chain if shape.ids[v] in ran)  # what never ran took no time
    bound = max(length, work / result.jobs)
    speedup = work / wall
    return Figures(
        wall=wall,
        work=work,
        speedup=speedup,
        efficiency=speedup / result.jobs,
        critical_path=path,
        critical_seconds=length,
        bound=bound,
        optimality=bound / wall,
        level_barrier=_level_barrier(shape, weight, result.jobs),
    )


def graph_of(deps: Mapping[TaskId, Sequence[TaskId]], units: Iterable[TaskId]) -> Structure:
    """A run's graph on indices into its ids in id order, with an order that has every task
    after its dependencies; `units` adds the tasks the dependencies do not list."""
    ids = sorted({*units, *deps, *(dep for listed in deps.values() for dep in listed)}, key=id_key)
    adj = indexed(ids, deps)
    users = dependents(adj)
    return Structure(ids, adj, users, kahn(adj, users))


def _level_barrier(shape: Structure, weight: list[float], jobs: int) -> float:
    """Each parallel group run to completion before the next starts, on the same workers."""
    depth = depths(shape.adj, shape.order)
    levels: list[list[float]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for v in shape.order:
        levels[depth[v]].append(weight[v])
    total = 0.0
    for level in levels:  # every depth up to the greatest has a task
        workers = [0.0] * min(jobs, len(level))
        for seconds in sorted(level, reverse=True):  # longest first onto the least loaded worker
            heapq.heapreplace(workers, workers[0] + seconds)
        total += max(workers)
    return total


def remaining_bound(left: Mapping[TaskId, float], shape: Structure, jobs: int) -> float:
    """max(longest chain, work / workers) over the open work (`left`: seconds per task): the
    bound of the figures, as a prediction of the time a run still needs. `shape` is the run's
    `graph_of`: the graph never changes during a run, so it is built once, not on every
    prediction."""
    ids = shape.ids
    order = [v for v in shape.order if ids[v] in left]
    _, longest = longest_path(shape.adj, order, [left.get(unit, 0.0) for unit in ids])
    if len(order) < len(left):  # a task outside the graph has no dependencies and no dependents
        inside = {ids[v] for v in order}
        longest = max([longest, *(seconds for unit, seconds in left.items() if unit not in inside)])
    return max(longest, sum(left.values()) / max(1, jobs))


def report_dict(result: RunResult) -> dict[str, Any]:
    numbers = figures(result)
    data = {
        "run_id": result.run_id,
        "status": result.status,
        "jobs": result.jobs,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "wall_seconds": round(numbers.wall, 3),
        "work_seconds": round(numbers.work, 3),
        "speedup": round(numbers.speedup, 3),
        "efficiency": round(numbers.efficiency, 3),
        "critical_path": {
            "tasks": list(numbers.critical_path),
            "seconds": round(numbers.critical_seconds, 3),
        },
        "bound_seconds": round(numbers.bound, 3),
        "optimality": round(numbers.optimality, 3),
        "level_barrier_seconds": round(numbers.level_barrier, 3),
        "degraded": (
            None
            if result.degraded is None
            else {"reason": result.degraded.reason, "at": result.degraded.at}
        ),
        "breakers": [
            {"resource": c.resource, "state": c.state, "reason": c.reason, "at": c.at}
            for c in result.breakers
        ],
        "held_seconds": dict(result.held),  # rounded when measured: a report is rebuilt from it
        "held_starts": [{"id": h.id, "reason": h.reason, "at": h.at} for h in result.held_starts],
        **totals(result.tasks),
        "flaky": [task.id for task in result.tasks if task.flaky],
        "budget": (
            None
            if result.max_cost_usd is None
            else {"max_cost_usd": result.max_cost_usd, "stopped": result.budget_stopped}
        ),
        "tasks": [_task_dict(task, result.dependencies.get(task.id, ())) for task in result.tasks],
        "blocked": [
            {"id": unit, "reason": reason, "target": unit in result.failed_targets}
            for unit, reason in result.blocked
        ],
        "unwritten_statuses": list(result.unwritten),
    }
    return dict(integration.with_entries(data, result))


def totals(tasks: Sequence[TaskResult]) -> dict[str, Any]:
    """The run's `cost_usd` and `tokens`: sums of what the tasks reported, None where none did."""
    cost = [task.cost_usd for task in tasks if task.cost_usd is not None]
    return {"cost_usd": round(sum(cost), 6) if cost else None, "tokens": _tokens(tasks)}


def _tokens(tasks: Iterable[TaskResult]) -> dict[str, int] | None:
    """{"input": n, "output": n}, each summed over what reported it; None if nothing did."""
    sums: dict[str, int] = {}
    for task in tasks:
        for key, value in (("input", task.input_tokens), ("output", task.output_tokens)):
            if value is not None:
                sums[key] = sums.get(key, 0) + value
    return sums or None


def _task_dict(task: TaskResult, dependencies: Sequence[TaskId]) -> dict[str, Any]:
    duration = task.duration
    return {
        "id": task.id,
        "title": task.title,
        "status": task.status.value,
        "exit_code": task.exit_code,
        "attempts": task.attempts,
        "started_at": task.started_at,
        "ended_at": task.ended_at,
        "duration_seconds": None if duration is None else round(duration, 3),
        "log": task.log,
        "reason": task.reason,
        "command": task.command,
        "dependencies": list(dependencies),
        "attempt_spans": [list(span) for span in task.spans],
        **_tokens_and_cost(task),
        "session_id": task.session_id,
        "summary": task.summary,
        "flaky": task.flaky,
        "failed_attempts": list(task.failed_attempts),
        "warnings": list(task.warnings),
    }


def _tokens_and_cost(task: TaskResult) -> dict[str, Any]:
    return {
        "cost_usd": None if task.cost_usd is None else round(task.cost_usd, 6),
        "tokens": _tokens((task,)),
    }


def report_json(result: RunResult) -> str:
    """The report as `--report-json` writes it and `ptx report --json` prints it."""
    return _indented(report_dict(result))


def stored_report(result: RunResult) -> str:
    """The report as the journal keeps it: on one line, so json uses its C encoder (it does
    not for indented output) and the store grows more slowly.
    `reindented` makes it the `--report-json` text again, byte for byte."""
    return json.dumps(report_dict(result), ensure_ascii=False, separators=(",", ":"))


def reindented(stored: str) -> str:
    """A report as the journal keeps it (one line, or indented before ptx kept it compact),
    as `--report-json` writes it."""
    return _indented(json.loads(stored))


def _indented(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_report_json(result: RunResult, path: Path) -> None:
    write_text_atomically(report_json(result), path)


def write_text_atomically(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def result_from_dict(data: Mapping[str, Any]) -> RunResult:
    """The `RunResult` a report was made from, exactly enough to render the same report again:
    times are kept unrounded, so every figure is recomputed to the same value."""
    tasks = tuple(_task_result(entry) for entry in data["tasks"])
    return RunResult(
        run_id=data["run_id"],
        status=data["status"],
        jobs=data["jobs"],
        started_at=data["started_at"],
        ended_at=data["ended_at"],
        tasks=tasks,
        dependencies={
            entry["id"]: tuple(entry.get("dependencies") or ()) for entry in data["tasks"]
        },
        degraded=_degraded(data.get("degraded")),
        breakers=tuple(_breaker(entry) for entry in data.get("breakers") or ()),
        blocked=tuple((entry["id"], entry["reason"]) for entry in data.get("blocked") or ()),
        failed_targets=tuple(
            entry["id"] for entry in data.get("blocked") or () if entry.get("target")
        ),
        unwritten=tuple(data.get("unwritten_statuses") or ()),
        integration=integration.run_from(data.get("integration")),
        held=tuple((str(guard), float(seconds)) for guard, seconds in _held(data)),
        max_cost_usd=(data.get("budget") or {}).get("max_cost_usd"),
        budget_stopped=bool((data.get("budget") or {}).get("stopped")),
        held_starts=tuple(
            Held(id=str(h["id"]), reason=str(h["reason"]), at=float(h["at"]))
            for h in data.get("held_starts") or ()
        ),
    )


def _held(data: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    held = data.get("held_seconds")
    return list(held.items()) if isinstance(held, Mapping) else []


def _task_result(entry: Mapping[str, Any]) -> TaskResult:
    return TaskResult(
        id=entry["id"],
        title=entry["title"],
        status=Status(entry["status"]),
        exit_code=entry["exit_code"],
        attempts=entry["attempts"],
        started_at=entry["started_at"],
        ended_at=entry["ended_at"],
        log=entry["log"],
        reason=entry.get("reason"),
        command=entry.get("command"),
        integration=integration.task_from(entry.get("integration")),
        spans=tuple((float(start), float(end)) for start, end in entry.get("attempt_spans") or ()),
        cost_usd=entry.get("cost_usd"),
        input_tokens=(entry.get("tokens") or {}).get("input"),
        output_tokens=(entry.get("tokens") or {}).get("output"),
        session_id=entry.get("session_id"),
        summary=entry.get("summary"),
        warnings=tuple(entry.get("warnings") or ()),
        failed_attempts=tuple(entry.get("failed_attempts") or ()),
    )


def _degraded(entry: Any) -> Degraded | None:  # noqa: ANN401 - a JSON value of either shape
    if isinstance(entry, Mapping):
        return Degraded(reason=str(entry.get("reason", "")), at=float(entry.get("at", 0.0)))
    if isinstance(entry, str):
        return Degraded(reason=entry, at=0.0)
    return None


def _breaker(entry: Mapping[str, Any]) -> BreakerChanged:
    return BreakerChanged(
        resource=str(entry.get("resource", "")),
        state=str(entry.get("state", "")),
        reason=str(entry.get("reason", "")),
        at=float(entry.get("at", 0.0)),
    )


def run_summary(info: RunInfo, report: str | None) -> dict[str, Any]:
    """One line of `ptx runs`; the numbers come from the run's report, absent without one."""
    data = json.loads(report) if report is not None else {}
    tasks = data.get("tasks")
    wall = data.get("wall_seconds")
    if "ended_at" in data and "started_at" in data:  # unrounded: as `ptx report` shows it
        wall = max(data["ended_at"] - data["started_at"], _MIN_WALL)
    return {
        "run_id": info.run_id,
        "started_at": info.started_at,
        "status": info.status,
        "tag": info.tag,
        "tasks": None if tasks is None else len(tasks),
        "wall_seconds": wall,
        "speedup": data.get("speedup"),
    }


def summary_cells(summary: Mapping[str, Any]) -> tuple[str, ...]:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(summary["started_at"]))
    wall, speedup = summary["wall_seconds"], summary["speedup"]
    return (
        summary["run_id"],
        started,
        summary["status"],
        "-" if summary["tasks"] is None else str(summary["tasks"]),
        "-" if wall is None else seconds_text(wall),
        "-" if speedup is None else f"{speedup:.2f}x",
    )


def log_tail(path: str | None, lines: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """The last lines of a log, from at most its last `max_bytes`."""
    if path is None:
        return []
    data, _ = log_end(path, max_bytes)
    return data.decode("utf-8", "replace").splitlines()[-lines:]
