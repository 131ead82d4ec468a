"""The plan of a run: parallel groups, critical path, blocked work and the predicted makespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.model import DEFAULT_HELD
from ptx.graph import schedule
from ptx.graph import units as graph
from ptx.run import commandline

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ptx.core.model import TaskId, TaskList
    from ptx.taskmaster.config import Config


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
    jobs_reason: str | None = None  # why `jobs` is not the config's max_concurrency or the -j


# Finding the best -j takes a dozen simulations; past this size the plan stays fast instead.
_BEST_JOBS_LIMIT = 5000


def select_work(  # noqa: PLR0913 - keyword-only selection options, each documented
    tasks: TaskList,
    *,
    satisfied: frozenset[str],
    subtasks: bool = False,
    include_all: bool = False,
    targets: Sequence[TaskId] = (),
    history: Mapping[TaskId, float] | None = None,
    done: frozenset[TaskId] = frozenset(),
    config: Config | None = None,
) -> tuple[graph.Selection, dict[TaskId, float]]:
    """The work still to do, and the estimates known for it (history, else estimate_seconds)."""
    unit_graph = graph.units(tasks, subtasks=subtasks)
    selection = graph.select(
        unit_graph,
        satisfied=satisfied,
        include_all=include_all,
        targets=targets,
        done=done,
        held=config.held_statuses if config is not None else DEFAULT_HELD,
    )
    return selection, known_estimates(selection.work, history or {}, config)


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
    config: Config | None = None,
) -> Plan:
    """Select the work still to do and lay it out the way the scheduler will run it."""
    selection, known = select_work(
        tasks,
        satisfied=satisfied,
        subtasks=subtasks,
        include_all=include_all,
        targets=targets,
        history=history,
        done=done,
        config=config,
    )
    work = selection.work
    groups = tuple(tuple(level) for level in graph.levels(work))
    widest = max((len(group) for group in groups), default=1)
    return Plan(
        tag=tasks.tag,
        jobs=jobs,
        work=work,
        groups=groups,
        critical_path=graph.critical_path(work, known or None),
        predicted=predict(work, known, jobs, widest=widest),
        blocked=selection.blocked,
        satisfied=selection.satisfied,
        estimates=known,
    )


def known_estimates(
    work: graph.Graph, history: Mapping[TaskId, float], config: Config | None = None
) -> dict[TaskId, float]:
    """Seconds per unit: measured history first, else the task's `estimate_seconds` (the
    config's `tasks.<id>` winning over metadata.ptx when a config is given)."""
    found: dict[TaskId, float] = {}
    for unit, task in work.nodes.items():
        options = task.options if config is None else commandline.effective_options(task, config)
        seconds = history.get(unit, options.estimate_seconds)
        if seconds is not None:
            found[unit] = float(seconds)
    return found


def predict(
    work: graph.Graph, known: Mapping[TaskId, float], jobs: int, *, widest: int
) -> Prediction | None:
    """Simulate the real scheduler on the estimates (a unit without one counts as the mean of
    the known ones); None when nothing is known. `widest`: the largest parallel group."""
    if not known:
        return None
    keys = schedule.rank_keys(work, known)
    simulation = schedule.simulate(work, known, jobs, keys)
    return Prediction(
        makespan_seconds=simulation.makespan,
        work_seconds=simulation.work,
        speedup=simulation.work / simulation.makespan if simulation.makespan else 1.0,
        best_jobs=_best_jobs(work, known, keys, widest)
        if len(work.nodes) <= _BEST_JOBS_LIMIT
        else None,
    )


def _best_jobs(
    work: graph.Graph,
    known: Mapping[TaskId, float],
    keys: Mapping[TaskId, tuple[float, ...]],
    widest: int,
) -> int:
    """The smallest -j whose predicted makespan equals that of unlimited workers, taken as
    `widest` (the largest parallel group) workers."""
    high = max(widest, 1)
    unlimited = schedule.simulate(work, known, high, keys).makespan
    low = 1
    while low < high:  # the makespan is not monotonic in -j in theory; bisection is a good guide
        middle = (low + high) // 2
        if schedule.simulate(work, known, middle, keys).makespan <= unlimited + 1e-9:
            high = middle
        else:
            low = middle + 1
    return low
