"""The plan of a run: parallel groups, critical path, blocked work and the predicted makespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx import graph, schedule

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ptx.model import TaskId, TaskList


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    makespan_seconds: float
    work_seconds: float
    speedup: float
    best_jobs: int | None  # beyond this -j the prediction stops improving; None on huge graphs


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    tag: str
    jobs: int
    work: graph.Graph
    groups: tuple[tuple[TaskId, ...], ...]
    critical_path: graph.CriticalPath
    predicted: Prediction | None
    blocked: tuple[tuple[TaskId, str], ...]
    satisfied: frozenset[TaskId]
    estimates: Mapping[TaskId, float]


# Finding the best -j takes a dozen simulations; past this size the plan stays fast instead.
_BEST_JOBS_LIMIT = 5000


def make_plan(  # noqa: PLR0913 - keyword-only selection options, each documented
    tasks: TaskList,
    *,
    jobs: int,
    satisfied: frozenset[str],
    subtasks: bool = False,
    include_all: bool = False,
    targets: Sequence[TaskId] = (),
    history: Mapping[TaskId, float] | None = None,
    done: frozenset[TaskId] = frozenset(),
    predict_makespan: bool = True,
) -> Plan:
    """Select the work still to do and lay it out the way the scheduler will run it."""
    unit_graph = graph.units(tasks, subtasks=subtasks)
    selection = graph.select(
        unit_graph, satisfied=satisfied, include_all=include_all, targets=targets, done=done
    )
    work = selection.work
    known = known_estimates(work, history or {})
    return Plan(
        tag=tasks.tag,
        jobs=jobs,
        work=work,
        groups=tuple(tuple(level) for level in graph.levels(work)),
        critical_path=graph.critical_path(work, known or None),
        predicted=predict(work, known, jobs) if predict_makespan else None,
        blocked=selection.blocked,
        satisfied=selection.satisfied,
        estimates=known,
    )


def known_estimates(work: graph.Graph, history: Mapping[TaskId, float]) -> dict[TaskId, float]:
    """Seconds per unit: measured history first, else the task's `estimate_seconds`."""
    found: dict[TaskId, float] = {}
    for unit, task in work.nodes.items():
        seconds = history.get(unit, task.options.estimate_seconds)
        if seconds is not None:
            found[unit] = float(seconds)
    return found


def filled_estimates(work: graph.Graph, known: Mapping[TaskId, float]) -> dict[TaskId, float]:
    """Every unit gets a figure: units with no estimate count as the mean of the known ones."""
    if not known:
        return {}
    mean = sum(known.values()) / len(known)
    return {unit: known.get(unit, mean) for unit in work.nodes}


def predict(work: graph.Graph, known: Mapping[TaskId, float], jobs: int) -> Prediction | None:
    """Simulate the real scheduler on the estimates; None when nothing is known."""
    estimates = filled_estimates(work, known)
    if not estimates:
        return None
    keys = schedule.rank_keys(work, estimates)
    simulation = schedule.simulate(work, estimates, jobs, keys)
    return Prediction(
        makespan_seconds=simulation.makespan,
        work_seconds=simulation.work,
        speedup=simulation.work / simulation.makespan if simulation.makespan else 1.0,
        best_jobs=_best_jobs(work, estimates, keys)
        if len(work.nodes) <= _BEST_JOBS_LIMIT
        else None,
    )


def _best_jobs(
    work: graph.Graph, estimates: Mapping[TaskId, float], keys: Mapping[TaskId, tuple[float, ...]]
) -> int:
    """The smallest -j whose predicted makespan equals that of unlimited workers."""
    widest = max((len(level) for level in graph.levels(work)), default=1)
    unlimited = schedule.simulate(work, estimates, max(widest, 1), keys).makespan
    low, high = 1, max(widest, 1)
    while low < high:  # the makespan is not monotonic in -j in theory; bisection is a good guide
        middle = (low + high) // 2
        if schedule.simulate(work, estimates, middle, keys).makespan <= unlimited + 1e-9:
            high = middle
        else:
            low = middle + 1
    return low
