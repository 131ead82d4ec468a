"""The one scheduling policy: rank keys, the ready queue, and the plan's simulation of a run."""

from __future__ import annotations

import graphlib
import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.errors import CycleError
from ptx.core.model import DEFAULT_PRIORITY, PRIORITY_RANK, TaskId, id_key
from ptx.graph.units import durations, structure

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ptx.graph.units import Graph


def rank_keys(
    graph: Graph, estimates: Mapping[TaskId, float] | None
) -> dict[TaskId, tuple[float, ...]]:
    """Smaller goes first: longest remaining path, longer task, higher priority, lower id.

    The remaining path is the unit plus its longest chain of dependents, in estimated seconds
    when any estimate is known (a unit without one counts as the mean), else in steps.
    """
    weights = durations(graph, estimates)
    shape = structure(graph)
    ids, users = shape.ids, shape.users
    weight = [1.0] * len(ids) if weights is None else [weights[u] for u in ids]
    remaining = [0.0] * len(ids)
    for v in reversed(shape.order):
        remaining[v] = weight[v] + max((remaining[u] for u in users[v]), default=0.0)
    medium = PRIORITY_RANK[DEFAULT_PRIORITY]
    keys: dict[TaskId, tuple[float, ...]] = {}
    for v, unit in enumerate(ids):
        rank = PRIORITY_RANK.get(graph.nodes[unit].priority, medium)
        keys[unit] = (-remaining[v], -weight[v], -rank, *id_key(unit))
    return keys


class ReadyQueue:
    """Ready units, best first, over graphlib's TopologicalSorter; one thread drives it.

    Units are ranked once up front, so the heap holds plain ints. Skipped units (dependents of
    a failure) are marked done as soon as graphlib hands them out, so the sorter still drains.
    """

    def __init__(self, graph: Graph, keys: Mapping[TaskId, tuple[float, ...]]) -> None:
        self._graph = graph
        self._sorter: graphlib.TopologicalSorter[TaskId] = graphlib.TopologicalSorter()
        for unit in graph.nodes:
            self._sorter.add(unit, *graph.deps.get(unit, ()))
        try:
            self._sorter.prepare()
        except graphlib.CycleError as error:
            raise CycleError(tuple(reversed(error.args[1]))) from error  # graphlib lists dependents

        def key(unit: TaskId) -> tuple[float, ...]:
            return keys.get(unit) or (math.inf, *id_key(unit))

        self._units = sorted(graph.nodes, key=key)
        self._rank = {unit: i for i, unit in enumerate(self._units)}
        self._heap: list[int] = []
        self._taken: set[TaskId] = set()
        self._skipped: set[TaskId] = set()
        self._index: dict[TaskId, int] | None = None  # into structure(graph).ids; on first failure
        self._pull()

    def take(self, fits: Callable[[TaskId], bool] | None = None) -> TaskId | None:
        """The best ready unit (for which `fits` holds), now taken; None when there is none."""
        if fits is None:
            unit = self._units[heapq.heappop(self._heap)] if self._heap else None
        else:
            unit = self._first_fitting(fits)
        if unit is not None:
            self._taken.add(unit)
        return unit

    def put_back(self, unit: TaskId) -> None:
        """A taken unit goes back to the ready units, e.g. to be retried later."""
        self._release(unit)
        heapq.heappush(self._heap, self._rank[unit])

    def done(self, unit: TaskId) -> None:
        """A taken unit succeeded: its dependents may become ready."""
        self._release(unit)
        self._sorter.done(unit)
        self._pull()

    def fail(self, unit: TaskId) -> tuple[TaskId, ...]:
        """A taken unit failed: its transitive dependents not skipped before, now skipped."""
        self._release(unit)
        shape = structure(self._graph)  # cached on the graph, which the ranking already built
        ids, users = shape.ids, shape.users
        if self._index is None:
            self._index = {each: v for v, each in enumerate(ids)}
        skipped: list[TaskId] = []
        stack = [self._index[unit]]
        while stack:
            for v in users[stack.pop()]:
                user = ids[v]
                if user not in self._skipped:
                    self._skipped.add(user)
                    skipped.append(user)
                    stack.append(v)
        self._sorter.done(unit)
        self._pull()
        return tuple(sorted(skipped, key=id_key))

    def ready_count(self) -> int:
        return len(self._heap)

    def is_finished(self) -> bool:
        """Nothing ready, nothing taken and unresolved, nothing left to become ready."""
        return not self._sorter.is_active()

    def _release(self, unit: TaskId) -> None:
        if unit not in self._taken:
            raise ValueError(f"unit {unit} was not taken from the queue")
        self._taken.discard(unit)

    def _first_fitting(self, fits: Callable[[TaskId], bool]) -> TaskId | None:
        passed: list[int] = []
        found = None
        while self._heap:
            rank = heapq.heappop(self._heap)
            if fits(self._units[rank]):
                found = self._units[rank]
                break
            passed.append(rank)
        for rank in passed:
            heapq.heappush(self._heap, rank)
        return found

    def _pull(self) -> None:
        """Move what graphlib made ready onto the heap, draining skipped units as they come."""
        ready = self._sorter.get_ready()
        if not self._skipped:  # the common case: no failure yet
            for unit in ready:
                heapq.heappush(self._heap, self._rank[unit])
            return
        while ready:
            drained = [unit for unit in ready if unit in self._skipped]
            for unit in ready:
                if unit not in self._skipped:
                    heapq.heappush(self._heap, self._rank[unit])
            if not drained:
                return
            self._sorter.done(*drained)
            ready = self._sorter.get_ready()


@dataclass(frozen=True, slots=True, kw_only=True)
class Slot:
    unit: TaskId
    start: float
    end: float
    worker: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Simulation:
    makespan: float
    work: float  # sum of the estimates
    slots: tuple[Slot, ...]  # in start order


def simulate(
    graph: Graph,
    estimates: Mapping[TaskId, float],
    jobs: int,
    keys: Mapping[TaskId, tuple[float, ...]] | None = None,
) -> Simulation:
    """List scheduling on a fake clock with the real queue: start the best ready unit on every
    free worker, then jump to the next finish. Units with no estimate count as the mean, and
    every unit as one second when no estimate is known."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    seconds = durations(graph, estimates) or dict.fromkeys(graph.nodes, 1.0)
    queue = ReadyQueue(graph, rank_keys(graph, estimates) if keys is None else keys)
    free = list(range(jobs))
    running: list[tuple[float, int, TaskId]] = []
    slots: list[Slot] = []
    clock = 0.0
    while True:
        while free and (unit := queue.take()) is not None:
            worker = heapq.heappop(free)
            slot = Slot(unit=unit, start=clock, end=clock + seconds[unit], worker=worker)
            slots.append(slot)
            heapq.heappush(running, (slot.end, worker, unit))
        if not running:
            break
        clock = running[0][0]
        while running and running[0][0] == clock:  # finish all at once so the best choice sees all
            _, worker, unit = heapq.heappop(running)
            queue.done(unit)
            heapq.heappush(free, worker)
    return Simulation(makespan=clock, work=sum(seconds.values()), slots=tuple(slots))
