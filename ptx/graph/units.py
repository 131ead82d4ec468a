"""Units of execution: which dependencies count, work selection, levels and the critical path."""

from __future__ import annotations

import dataclasses
import difflib
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from ptx.core.errors import UsageError
from ptx.core.model import DEFAULT_HELD, Task, TaskId, id_key
from ptx.graph.digraph import (
    Structure,
    components,
    dependents,
    depths,
    indexed,
    kahn,
    longest_path,
    shortest_cycle,
    topological,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ptx.core.model import TaskList

_NO_PARENTS: Mapping[TaskId, Task] = MappingProxyType({})
_NO_MISSING: Mapping[TaskId, tuple[TaskId, ...]] = MappingProxyType({})
_SHOWN_HOPS = 24  # a longer cycle is printed with its middle elided
PATH_ENDS = 5  # hops shown at each end of a long critical path in text


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """Units of execution and what each waits for; `parents` maps subtask units to their task."""

    nodes: Mapping[TaskId, Task]
    deps: Mapping[TaskId, tuple[TaskId, ...]]
    parents: Mapping[TaskId, Task] = field(default_factory=lambda: _NO_PARENTS)
    # Per unit, the dependencies it names that exist nowhere (PTX102): it can never be ready.
    missing: Mapping[TaskId, tuple[TaskId, ...]] = field(default_factory=lambda: _NO_MISSING)
    # Derived index structures, computed once: plan, levels and ranking all walk the same graph.
    cache: dict[str, Structure] = field(default_factory=dict, compare=False, repr=False)


def structure(graph: Graph) -> Structure:
    """The integer form of `graph`, built on first use; CycleError if it has a cycle."""
    found = graph.cache.get("structure")
    if found is None:
        ids = sorted(graph.nodes, key=id_key)
        adj = indexed(ids, graph.deps)
        users = dependents(adj)
        found = Structure(ids, adj, users, topological(ids, adj, users))
        graph.cache["structure"] = found
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    work: Graph  # units to run; deps restricted to units inside work
    satisfied: frozenset[TaskId]  # units already satisfied (not run)
    blocked: tuple[tuple[TaskId, str], ...]  # (unit, reason), id order
    # Targets asked for that cannot run, with why (make's "no rule to make target").
    failed_targets: tuple[tuple[TaskId, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CriticalPath:
    tasks: tuple[TaskId, ...]  # the chain, first to run first
    seconds: float | None  # None when weighed by steps
    steps: int


def durations(graph: Graph, estimates: Mapping[TaskId, float] | None) -> dict[TaskId, float] | None:
    """Seconds per unit, a unit with no estimate counting as the mean; None when none is known."""
    known = [estimates[unit] for unit in graph.nodes if unit in estimates] if estimates else []
    if not known or estimates is None:
        return None
    mean = sum(known) / len(known)
    return {unit: float(estimates.get(unit, mean)) for unit in graph.nodes}


def first_by_id(tasks: Iterable[Task]) -> dict[TaskId, Task]:
    """One task per id; a duplicate id (reported by the reader) keeps its first occurrence."""
    nodes: dict[TaskId, Task] = {}
    for task in tasks:
        nodes.setdefault(task.id, task)
    return nodes


def own_deps(task: Task, nodes: Mapping[TaskId, Task]) -> list[TaskId]:
    """Existing dependencies; a subtask's on its own parent is dropped (PTX111, not a cycle)."""
    return [d for d in task.dependencies if d in nodes and d not in {task.id, task.parent}]


def inherited(sub: Task, parent: Task, nodes: Mapping[TaskId, Task]) -> list[TaskId]:
    """The parent's dependencies a subtask waits for, leaving out the parent's own subtasks."""
    return [d for d in own_deps(parent, nodes) if nodes[d].parent != parent.id and d != sub.id]


def path_text(hops: Sequence[str], shown: int = _SHOWN_HOPS, arrow: str = " -> ") -> str:
    """Hops joined by arrows; a path of more than twice `shown` hops shows that many at each
    end and how many are between."""
    if len(hops) > 2 * shown:
        hidden = len(hops) - 2 * shown
        hops = [*hops[:shown], f"... {hidden} more ...", *hops[-shown:]]
    return arrow.join(hops)


def units(tasks: TaskList, *, subtasks: bool = False) -> Graph:
    """The units of execution: top-level tasks, or with `subtasks` every subtask (and bare task)."""
    nodes = first_by_id(tasks.tasks)
    children: dict[TaskId, list[TaskId]] = {}
    for task in nodes.values():
        if task.parent is not None and task.parent in nodes:
            children.setdefault(task.parent, []).append(task.id)
    found = _subtask_units(nodes, children) if subtasks else _task_units(nodes, children)
    missing = _missing(found, nodes, children)
    return dataclasses.replace(found, missing=missing) if missing else found


def _missing(
    graph: Graph, nodes: Mapping[TaskId, Task], children: Mapping[TaskId, list[TaskId]]
) -> dict[TaskId, tuple[TaskId, ...]]:
    """The dependencies of each unit (its own, its subtasks', its parent's) that name no task."""
    found: dict[TaskId, tuple[TaskId, ...]] = {}
    for unit, task in graph.nodes.items():
        named = [*task.dependencies]
        for sub in children.get(unit, ()):
            named += nodes[sub].dependencies
        parent = graph.parents.get(unit)
        if parent is not None:
            named += parent.dependencies
        absent = _unique(d for d in named if d not in nodes)
        if absent:
            found[unit] = absent
    return found


def _task_units(nodes: Mapping[TaskId, Task], children: Mapping[TaskId, list[TaskId]]) -> Graph:
    def owner(task_id: TaskId) -> TaskId:
        parent = nodes[task_id].parent
        return parent if parent is not None and parent in nodes else task_id

    tops = sorted((t for t in nodes.values() if t.parent is None), key=lambda t: id_key(t.id))
    deps = {}
    for top in tops:
        raw = own_deps(top, nodes)
        for sub in children.get(top.id, ()):
            raw += own_deps(nodes[sub], nodes)
        owners = dict.fromkeys(owner(d) for d in raw)  # in file order, each once
        owners.pop(top.id, None)
        deps[top.id] = tuple(owners)
    return Graph(nodes=MappingProxyType({t.id: t for t in tops}), deps=MappingProxyType(deps))


def _subtask_units(nodes: Mapping[TaskId, Task], children: Mapping[TaskId, list[TaskId]]) -> Graph:
    def expand(task_id: TaskId) -> list[TaskId]:
        return children.get(task_id) or [task_id]

    ids = sorted((t for t in nodes if t not in children), key=id_key)
    deps = {}
    parents = {}
    for unit in ids:
        task = nodes[unit]
        raw = own_deps(task, nodes)
        parent = nodes.get(task.parent) if task.parent is not None else None
        if parent is not None:
            parents[unit] = parent
            raw += inherited(task, parent, nodes)
        deps[unit] = _unique(e for d in raw for e in expand(d) if e != unit)
    return Graph(
        nodes=MappingProxyType({unit: nodes[unit] for unit in ids}),
        deps=MappingProxyType(deps),
        parents=MappingProxyType(parents),
    )


def _unique(ids: Iterable[TaskId]) -> tuple[TaskId, ...]:
    return tuple(dict.fromkeys(ids))  # first-seen order; order of dependencies carries no meaning


def select(  # noqa: PLR0913 - keyword-only selection options, each documented
    graph: Graph,
    *,
    satisfied: frozenset[str],
    include_all: bool = False,
    targets: Sequence[TaskId] = (),
    done: frozenset[TaskId] = frozenset(),
    held: frozenset[str] = DEFAULT_HELD,
) -> Selection:
    """The work still to do: unsatisfied units, minus those blocked by status or by a cycle.

    `done` names units already finished whatever their status says (a resumed run's successes);
    `held`: the statuses never scheduled.
    """
    finished = {u for u in graph.nodes if u in done or _satisfied(graph, u, satisfied, include_all)}
    wanted = _targets(graph, targets)
    scope = _closure(graph, wanted, finished) if targets else set(graph.nodes)
    todo = [u for u in sorted(graph.nodes, key=id_key) if u in scope and u not in finished]
    adj = indexed(todo, graph.deps)
    users = dependents(adj)
    order = kahn(adj, users)  # cheaper than Tarjan's, and almost always finds no cycle
    acyclic = len(order) == len(todo)
    cyclic = [] if acyclic else components(adj)
    reasons = _spread(todo, users, _roots(graph, todo, adj, cyclic, None if include_all else held))
    kept = [u for v, u in enumerate(todo) if v not in reasons]
    failed: list[tuple[TaskId, str]] = []
    if targets:
        kept, failed = _reachable(graph, kept, wanted, (todo, reasons), finished)
    work = _subgraph(graph, kept)
    if acyclic and not reasons and len(kept) == len(todo):  # the work is all of todo: reuse
        work.cache["structure"] = Structure(todo, adj, users, order)
    blocked = tuple((todo[v], reasons[v]) for v in sorted(reasons))
    return Selection(
        work=work,
        satisfied=frozenset(finished & scope),
        blocked=blocked,
        failed_targets=tuple(failed),
    )


def _subgraph(graph: Graph, kept: Sequence[TaskId]) -> Graph:
    """The units `kept`, with their dependencies restricted to them."""
    inside = set(kept)

    def deps_inside(unit: TaskId) -> tuple[TaskId, ...]:
        deps = graph.deps.get(unit, ())
        return deps if inside.issuperset(deps) else tuple(d for d in deps if d in inside)

    return Graph(
        nodes=MappingProxyType({u: graph.nodes[u] for u in kept}),
        deps=MappingProxyType({u: deps_inside(u) for u in kept}),
        parents=MappingProxyType({u: graph.parents[u] for u in kept if u in graph.parents}),
    )


def _reachable(
    graph: Graph,
    kept: list[TaskId],
    wanted: Sequence[TaskId],
    blocked: tuple[Sequence[TaskId], Mapping[int, str]],
    finished: set[TaskId],
) -> tuple[list[TaskId], list[tuple[TaskId, str]]]:
    """Of `kept`, only what leads to a target that can run (nothing is started for a target
    that cannot); and the targets that cannot run, with why. `blocked`: todo and its reasons."""
    todo, reasons = blocked
    index = {unit: v for v, unit in enumerate(todo)}
    failed = [(u, reasons[index[u]]) for u in wanted if index.get(u) in reasons]
    reach = _closure(graph, [u for u in wanted if index.get(u) not in reasons], finished)
    return [u for u in kept if u in reach], failed


def _roots(
    graph: Graph,
    todo: Sequence[TaskId],
    adj: Sequence[Sequence[int]],
    cyclic: Sequence[Sequence[int]],
    held: frozenset[str] | None,
) -> dict[int, tuple[str, str]]:
    """Units blocked in themselves: index -> (their reason, what their dependents cite)."""
    causes: dict[int, tuple[str, str]] = {}
    for component in cyclic:
        cycle = shortest_cycle(adj, component)
        reason = f"in dependency cycle {path_text([todo[v] for v in cycle])}"
        causes.update((v, (reason, reason)) for v in component)
    for v, unit in enumerate(todo):
        absent = graph.missing.get(unit)
        if absent:
            named = ", ".join(absent)
            causes[v] = (f"dependency {named} does not exist", f"missing dependency {named}")
    if held is not None:  # None: --all ignores statuses
        for v, unit in enumerate(todo):
            cause = _held(graph, unit, held)
            if cause is not None:
                causes[v] = cause
    return causes


def _satisfied(graph: Graph, unit: TaskId, satisfied: frozenset[str], include_all: bool) -> bool:
    parent = graph.parents.get(unit)
    return not include_all and (
        graph.nodes[unit].status in satisfied or (parent is not None and parent.status in satisfied)
    )


def _held(graph: Graph, unit: TaskId, held: frozenset[str]) -> tuple[str, str] | None:
    """Why an unsatisfied unit is never scheduled, and what its dependents cite; None if it runs."""
    status = graph.nodes[unit].status
    if status in held:
        return f"status is {status}", status
    parent = graph.parents.get(unit)
    if parent is not None and parent.status in held:
        because = f"parent {parent.id} is {parent.status}"
        return because, because
    return None


def _spread(
    ids: Sequence[TaskId], users: Sequence[Sequence[int]], causes: Mapping[int, tuple[str, str]]
) -> dict[int, str]:
    """Blocked roots and, breadth first, every unit waiting on one: `waits for 7 (deferred)`."""
    reasons = {v: reason for v, (reason, _) in causes.items()}
    origin = {v: v for v in causes}
    queue = deque(sorted(causes))
    while queue:
        v = queue.popleft()
        for user in users[v]:
            if user not in reasons:
                root = origin[user] = origin[v]
                reasons[user] = f"waits for {ids[root]} ({causes[root][1]})"
                queue.append(user)
    return reasons


def _targets(graph: Graph, targets: Sequence[TaskId]) -> list[TaskId]:
    """Target ids as units: in subtask mode a task with subtasks stands for its subtasks."""
    subunits: dict[TaskId, list[TaskId]] = {}
    for unit, parent in graph.parents.items():
        subunits.setdefault(parent.id, []).append(unit)
    found: list[TaskId] = []
    for target in targets:
        if target in graph.nodes or target in subunits:
            found += subunits.get(target, [target])
            continue
        owner = next((t.id for t in graph.nodes.values() if target in t.subtasks), None)
        if owner is not None:
            raise UsageError(f"{target} is a subtask of {owner}: run {owner}, or use --subtasks")
        close = difflib.get_close_matches(target, [*graph.nodes, *subunits], n=4, cutoff=0.5)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise UsageError(f"no task {target} in this tag{hint}")
    return found


def _closure(graph: Graph, start: Iterable[TaskId], done: set[TaskId]) -> set[TaskId]:
    """The targets and their transitive dependencies, not looking past satisfied units."""
    seen = set(start)
    stack = list(seen - done)
    while stack:
        for dep in graph.deps.get(stack.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                if dep not in done:
                    stack.append(dep)
    return seen


def levels(graph: Graph) -> list[list[TaskId]]:
    """Topological levels: each unit is one level after its deepest dependency."""
    shape = structure(graph)
    depth = depths(shape.adj, shape.order)
    found: list[list[TaskId]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for v, unit in enumerate(shape.ids):  # ids come sorted, so each level does too
        found[depth[v]].append(unit)
    return found


def critical_path(graph: Graph, estimates: Mapping[TaskId, float] | None) -> CriticalPath:
    """The longest chain, in estimated seconds when any estimate is known, else in steps; a
    tie goes to the lower id (`longest_path`)."""
    weights = durations(graph, estimates)
    shape = structure(graph)
    weight = [1.0] * len(shape.ids) if weights is None else [weights[u] for u in shape.ids]
    chain, length = longest_path(shape.adj, shape.order, weight)
    tasks = tuple(shape.ids[v] for v in chain)
    return CriticalPath(tasks=tasks, seconds=None if weights is None else length, steps=len(tasks))
