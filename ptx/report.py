"""The figures of a finished run and its machine-readable report; pure computation."""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptx.model import id_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ptx.events import RunResult, TaskResult
    from ptx.model import TaskId


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


def figures(result: RunResult) -> Figures:
    durations = {task.id: task.duration or 0.0 for task in result.tasks}
    wall = max(result.ended_at - result.started_at, 1e-9)
    work = sum(durations.values())
    path, length = _longest_path(result.dependencies, durations)
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
        level_barrier=_level_barrier(result.dependencies, durations, result.jobs),
    )


def _longest_path(
    deps: Mapping[TaskId, Sequence[TaskId]], durations: Mapping[TaskId, float]
) -> tuple[tuple[TaskId, ...], float]:
    finish: dict[TaskId, float] = {}
    before: dict[TaskId, TaskId | None] = {}
    for unit in TopologicalSorter(deps).static_order():
        parent = max(deps.get(unit, ()), key=lambda dep: (finish[dep], id_key(dep)), default=None)
        finish[unit] = durations.get(unit, 0.0) + (finish[parent] if parent else 0.0)
        before[unit] = parent
    if not finish:
        return (), 0.0
    end: TaskId | None = max(finish, key=lambda unit: (finish[unit], id_key(unit)))
    length = finish[end] if end else 0.0
    chain = []
    while end is not None:
        chain.append(end)
        end = before[end]
    return tuple(reversed(chain)), length


def _level_barrier(
    deps: Mapping[TaskId, Sequence[TaskId]], durations: Mapping[TaskId, float], jobs: int
) -> float:
    """Each parallel group run to completion before the next starts, on the same workers."""
    sorter = TopologicalSorter(deps)
    sorter.prepare()
    total = 0.0
    while sorter.is_active():
        level = sorted(sorter.get_ready(), key=lambda unit: -durations.get(unit, 0.0))
        workers = [0.0] * min(jobs, max(len(level), 1))
        for unit in level:  # longest first onto the least loaded worker
            heapq.heapreplace(workers, workers[0] + durations.get(unit, 0.0))
        total += max(workers)
        sorter.done(*level)
    return total


def report_dict(result: RunResult) -> dict[str, Any]:
    numbers = figures(result)
    return {
        "run_id": result.run_id,
        "status": result.status,
        "jobs": result.jobs,
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
        "degraded": None,
        "tasks": [_task_dict(task) for task in result.tasks],
    }


def _task_dict(task: TaskResult) -> dict[str, Any]:
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
    }


def write_report_json(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(report_dict(result), indent=2, ensure_ascii=False) + "\n")
    temporary.replace(path)


def log_tail(path: str | None, lines: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """The last lines of a log, reading only its end: logs can be gigabytes."""
    if path is None:
        return []
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]
