"""The dependency graph: its findings, units of execution, work selection, levels, critical path."""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING

from ptx.errors import CycleError, UsageError
from ptx.model import NEVER_SCHEDULED_STATUSES, Code, Finding, Severity, Task, TaskId, id_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ptx.model import TaskList

_NO_PARENTS: Mapping[TaskId, Task] = MappingProxyType({})
_SHOWN_HOPS = 24  # a longer cycle is printed with its middle elided
_WHAT_IF_BUDGET = 200_000  # edge visits allowed to rate each removable edge of one cycle


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """Units of execution and what each waits for; `parents` maps subtask units to their task."""

    nodes: Mapping[TaskId, Task]
    deps: Mapping[TaskId, tuple[TaskId, ...]]
    parents: Mapping[TaskId, Task] = field(default_factory=lambda: _NO_PARENTS)
    # Derived index structures, computed once: plan, levels and ranking all walk the same graph.
    cache: dict[str, Structure] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Structure:
    """A graph as integers: ids in id order, what each waits for, its users, a topological order."""

    ids: list[TaskId]
    adj: list[list[int]]
    users: list[list[int]]
    order: list[int]


def structure(graph: Graph) -> Structure:
    """The integer form of `graph`, built on first use; CycleError if it has a cycle."""
    found = graph.cache.get("structure")
    if found is None:
        ids, adj = indexed(graph)
        users = dependents(adj)
        found = Structure(ids, adj, users, topological(ids, adj, users))
        graph.cache["structure"] = found
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    work: Graph  # units to run; deps restricted to units inside work
    satisfied: frozenset[TaskId]  # units already satisfied (not run)
    blocked: tuple[tuple[TaskId, str], ...]  # (unit, reason), id order


@dataclass(frozen=True, slots=True, kw_only=True)
class CriticalPath:
    tasks: tuple[TaskId, ...]  # the chain, first to run first
    seconds: float | None  # None when weighed by steps
    steps: int


def indexed(graph: Graph) -> tuple[list[TaskId], list[list[int]]]:
    """Units in id order and, per unit index, the indices it waits for."""
    ids = sorted(graph.nodes, key=id_key)
    pos = {unit: i for i, unit in enumerate(ids)}
    return ids, [[pos[d] for d in graph.deps.get(unit, ()) if d in pos] for unit in ids]


def dependents(adj: Sequence[Sequence[int]]) -> list[list[int]]:
    """The reverse of an index adjacency: per index, the indices that wait for it."""
    users: list[list[int]] = [[] for _ in adj]
    for v, deps in enumerate(adj):
        for d in deps:
            users[d].append(v)
    return users


def topological(
    ids: Sequence[TaskId], adj: Sequence[Sequence[int]], users: Sequence[Sequence[int]]
) -> list[int]:
    """Indices with every dependency before its dependents (Kahn); CycleError names a cycle.

    `users` is `dependents(adj)`, which callers usually need as well.
    """
    waiting = [len(deps) for deps in adj]
    order = [v for v, count in enumerate(waiting) if not count]
    for v in order:  # grows while it is walked: each unit joins once its last dependency is in
        for user in users[v]:
            waiting[user] -= 1
            if not waiting[user]:
                order.append(user)
    if len(order) < len(adj):
        component = min(_components(adj), key=min)
        cycle = _cycle_through(adj, set(component), min(component))
        raise CycleError(tuple(ids[v] for v in cycle))
    return order


def durations(graph: Graph, estimates: Mapping[TaskId, float] | None) -> dict[TaskId, float] | None:
    """Seconds per unit, a unit with no estimate counting as the mean; None when none is known."""
    known = [estimates[unit] for unit in graph.nodes if unit in estimates] if estimates else []
    if not known or estimates is None:
        return None
    mean = sum(known) / len(known)
    return {unit: float(estimates.get(unit, mean)) for unit in graph.nodes}


def _components(adj: Sequence[Sequence[int]]) -> list[list[int]]:
    """Strongly connected components of more than one node, by iterative Tarjan (no recursion)."""
    index = [-1] * len(adj)
    low = [0] * len(adj)
    on_stack = [False] * len(adj)
    stack: list[int] = []
    found: list[list[int]] = []
    counter = 0
    for root in range(len(adj)):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, iter(adj[root]))]
        while work:
            v, edges = work[-1]
            for w in edges:
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, iter(adj[w])))
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            else:
                work.pop()
                if work and low[v] < low[work[-1][0]]:
                    low[work[-1][0]] = low[v]
                if low[v] == index[v]:
                    _pop_component(stack, on_stack, v, found)
    return found


def _pop_component(
    stack: list[int], on_stack: list[bool], root: int, found: list[list[int]]
) -> None:
    component: list[int] = []
    while True:
        w = stack.pop()
        on_stack[w] = False
        component.append(w)
        if w == root:
            break
    if len(component) > 1:
        found.append(component)


def _cycle_through(adj: Sequence[Sequence[int]], members: set[int], start: int) -> list[int]:
    """A shortest cycle from `start` back to itself inside `members` (BFS): [start, ..., start]."""
    previous = {start: start}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in adj[v]:
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if w in members and w not in previous:
                previous[w] = v
                queue.append(w)
    return [start, start]  # only reached when `members` is not strongly connected


@dataclass(frozen=True, slots=True, kw_only=True)
class _Full:
    """Every task and subtask with explicit edges and the implicit ones of subtasks."""

    ids: list[TaskId]
    adj: list[list[int]]
    implicit: dict[tuple[int, int], int]  # task -> its subtask: -1; inherited: the parent's index

    def mark(self, v: int, w: int) -> str:
        via = self.implicit.get((v, w))
        if via is None:
            return ""
        return " (subtask)" if via < 0 else f" (via {self.ids[via]})"


def check(tasks: TaskList, *, satisfied: frozenset[str]) -> tuple[Finding, ...]:
    """Missing dependencies, every cycle of the full graph, done tasks that wait on unfinished."""
    nodes = _first_by_id(tasks.tasks)
    return (
        *_missing(nodes, tasks.tag),
        *_cycles(nodes, tasks.tag),
        *_done_on_unfinished(nodes, satisfied, tasks.tag),
    )


def _first_by_id(tasks: Iterable[Task]) -> dict[TaskId, Task]:
    """One task per id; a duplicate id (reported by the reader) keeps its first occurrence."""
    nodes: dict[TaskId, Task] = {}
    for task in tasks:
        nodes.setdefault(task.id, task)
    return nodes


def _own_deps(task: Task, nodes: Mapping[TaskId, Task]) -> list[TaskId]:
    """Existing dependencies; a subtask's on its own parent is dropped (PTX111, not a cycle)."""
    return [d for d in task.dependencies if d in nodes and d not in {task.id, task.parent}]


def _inherited(sub: Task, parent: Task, nodes: Mapping[TaskId, Task]) -> list[TaskId]:
    """The parent's dependencies a subtask waits for, leaving out the parent's own subtasks."""
    return [d for d in _own_deps(parent, nodes) if nodes[d].parent != parent.id and d != sub.id]


def _kind(task: Task) -> str:
    return "subtask" if task.is_subtask else "task"


def _missing(nodes: Mapping[TaskId, Task], tag: str) -> list[Finding]:
    return [
        Finding(
            code=Code.MISSING_DEPENDENCY,
            severity=Severity.ERROR,
            task=task.id,
            message=f"{_kind(task)} {task.id} depends on {dep}, which does not exist",
            tag=tag,
        )
        for task in nodes.values()
        for dep in task.dependencies
        if dep not in nodes
    ]


def _done_on_unfinished(
    nodes: Mapping[TaskId, Task], satisfied: frozenset[str], tag: str
) -> list[Finding]:
    return [
        Finding(
            code=Code.DONE_DEPENDS_ON_UNFINISHED,
            severity=Severity.WARNING,
            task=task.id,
            message=f"{_kind(task)} {task.id} is {task.status} but depends on {dep}"
            f" ({nodes[dep].status})",
            tag=tag,
        )
        for task in nodes.values()
        if task.status in satisfied
        for dep in _own_deps(task, nodes)
        if nodes[dep].status not in satisfied
    ]


def _full_graph(nodes: Mapping[TaskId, Task]) -> _Full:
    ids = sorted(nodes, key=id_key)
    pos = {task_id: i for i, task_id in enumerate(ids)}
    out: list[dict[int, int | None]] = [{} for _ in ids]  # target -> None when explicit
    for task in nodes.values():
        out[pos[task.id]].update((pos[d], None) for d in _own_deps(task, nodes))
    for task in nodes.values():
        parent = nodes.get(task.parent) if task.parent is not None else None
        if parent is None:
            continue
        out[pos[parent.id]].setdefault(pos[task.id], -1)
        for dep in _inherited(task, parent, nodes):
            out[pos[task.id]].setdefault(pos[dep], pos[parent.id])
    implicit = {
        (v, w): via for v, edges in enumerate(out) for w, via in edges.items() if via is not None
    }
    return _Full(ids=ids, adj=[sorted(edges) for edges in out], implicit=implicit)


def _cycles(nodes: Mapping[TaskId, Task], tag: str) -> list[Finding]:
    full = _full_graph(nodes)
    findings = []
    for component in sorted(_components(full.adj), key=min):
        cycle = _cycle_through(full.adj, set(component), min(component))
        source, dep = _suggest(full, component, cycle)
        group = len(component) - (len(cycle) - 1)
        caught = "task is" if group == 1 else "tasks are"
        extra = f"; {group} more {caught} caught in this cycle group" if group else ""
        message = (
            f"dependency cycle: {_path_text(full, cycle)}"
            f" (remove {full.ids[source]}'s dependency on {full.ids[dep]} to break it{extra})"
        )
        findings.append(
            Finding(
                code=Code.CYCLE,
                severity=Severity.ERROR,
                task=full.ids[cycle[0]],
                message=message,
                tag=tag,
            )
        )
    return findings


def _path_text(full: _Full, cycle: Sequence[int]) -> str:
    hops = [full.ids[cycle[0]]]
    hops += [full.ids[w] + full.mark(v, w) for v, w in pairwise(cycle)]
    return _join(hops)


def _join(hops: list[str]) -> str:
    if len(hops) > 2 * _SHOWN_HOPS:
        hidden = len(hops) - 2 * _SHOWN_HOPS
        hops = [*hops[:_SHOWN_HOPS], f"... {hidden} more ...", *hops[-_SHOWN_HOPS:]]
    return " -> ".join(hops)


def _suggest(full: _Full, component: Sequence[int], cycle: Sequence[int]) -> tuple[int, int]:
    """The file dependency to remove: the one leaving fewest tasks cyclic, then a forward one.

    Taskmaster's parse-prd only writes dependencies on lower ids, so a dependency on a higher id
    is most likely the hand edit that closed the cycle.
    """
    candidates: dict[tuple[int, int], None] = {}
    for v, w in pairwise(cycle):
        via = full.implicit.get((v, w))
        if via is None:
            candidates[v, w] = None
        elif via >= 0:
            candidates[via, w] = None
    edges = sum(len(full.adj[v]) for v in component)
    rate = len(candidates) * edges <= _WHAT_IF_BUDGET

    def score(edge: tuple[int, int]) -> tuple[int, bool, int, int]:
        left = _left_cyclic(full, component, edge) if rate else 0
        return (left, edge[1] < edge[0], edge[0], edge[1])

    return min(candidates, key=score)


def _left_cyclic(full: _Full, component: Sequence[int], edge: tuple[int, int]) -> int:
    """How many tasks of the component stay in a cycle once the file dependency `edge` is gone."""
    source, dep = edge
    local = {v: i for i, v in enumerate(component)}

    def kept(v: int, w: int) -> bool:
        return w in local and not (w == dep and source in {v, full.implicit.get((v, w))})

    adj = [[local[w] for w in full.adj[v] if kept(v, w)] for v in component]
    return sum(len(c) for c in _components(adj))


def units(tasks: TaskList, *, subtasks: bool = False) -> Graph:
    """The units of execution: top-level tasks, or with `subtasks` every subtask (and bare task)."""
    nodes = _first_by_id(tasks.tasks)
    children: dict[TaskId, list[TaskId]] = {}
    for task in nodes.values():
        if task.parent is not None and task.parent in nodes:
            children.setdefault(task.parent, []).append(task.id)
    return _subtask_units(nodes, children) if subtasks else _task_units(nodes, children)


def _task_units(nodes: Mapping[TaskId, Task], children: Mapping[TaskId, list[TaskId]]) -> Graph:
    def owner(task_id: TaskId) -> TaskId:
        parent = nodes[task_id].parent
        return parent if parent is not None and parent in nodes else task_id

    tops = sorted((t for t in nodes.values() if t.parent is None), key=lambda t: id_key(t.id))
    deps = {}
    for top in tops:
        raw = _own_deps(top, nodes)
        for sub in children.get(top.id, ()):
            raw += _own_deps(nodes[sub], nodes)
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
        raw = _own_deps(task, nodes)
        parent = nodes.get(task.parent) if task.parent is not None else None
        if parent is not None:
            parents[unit] = parent
            raw += _inherited(task, parent, nodes)
        deps[unit] = _unique(e for d in raw for e in expand(d) if e != unit)
    return Graph(
        nodes=MappingProxyType({unit: nodes[unit] for unit in ids}),
        deps=MappingProxyType(deps),
        parents=MappingProxyType(parents),
    )


def _unique(ids: Iterable[TaskId]) -> tuple[TaskId, ...]:
    return tuple(dict.fromkeys(ids))  # first-seen order; order of dependencies carries no meaning


def select(
    graph: Graph,
    *,
    satisfied: frozenset[str],
    include_all: bool = False,
    targets: Sequence[TaskId] = (),
    done: frozenset[TaskId] = frozenset(),
) -> Selection:
    """The work still to do: unsatisfied units, minus those blocked by status or by a cycle.

    `done` names units already finished whatever their status says (a resumed run's successes).
    """
    finished = {u for u in graph.nodes if u in done or _satisfied(graph, u, satisfied, include_all)}
    scope = _closure(graph, _targets(graph, targets), finished) if targets else set(graph.nodes)
    todo = [u for u in sorted(graph.nodes, key=id_key) if u in scope and u not in finished]
    pos = {unit: i for i, unit in enumerate(todo)}
    adj = [[pos[d] for d in graph.deps.get(u, ()) if d in pos] for u in todo]
    users = dependents(adj)
    try:  # Kahn's pass is cheaper than Tarjan's and almost always finds no cycle
        order: list[int] | None = topological(todo, adj, users)
    except CycleError:
        order = None
    components = [] if order is not None else _components(adj)
    reasons = _spread(todo, adj, _roots(graph, todo, adj, components, include_all))
    kept = [u for v, u in enumerate(todo) if v not in reasons]
    inside = set(kept)

    def deps_inside(unit: TaskId) -> tuple[TaskId, ...]:
        deps = graph.deps.get(unit, ())
        return deps if inside.issuperset(deps) else tuple(d for d in deps if d in inside)

    work = Graph(
        nodes=MappingProxyType({u: graph.nodes[u] for u in kept}),
        deps=MappingProxyType({u: deps_inside(u) for u in kept}),
        parents=MappingProxyType({u: graph.parents[u] for u in kept if u in graph.parents}),
    )
    if order is not None and len(kept) == len(todo):  # the work is all of todo: reuse its index
        work.cache["structure"] = Structure(todo, adj, users, order)
    blocked = tuple((todo[v], reasons[v]) for v in sorted(reasons))
    return Selection(work=work, satisfied=frozenset(finished & scope), blocked=blocked)


def _roots(
    graph: Graph,
    todo: Sequence[TaskId],
    adj: Sequence[Sequence[int]],
    components: Sequence[Sequence[int]],
    include_all: bool,
) -> dict[int, tuple[str, str]]:
    """Units blocked in themselves: index -> (their reason, what their dependents cite)."""
    causes: dict[int, tuple[str, str]] = {}
    for component in components:
        cycle = _cycle_through(adj, set(component), min(component))
        reason = f"in dependency cycle {_join([todo[v] for v in cycle])}"
        causes.update((v, (reason, reason)) for v in component)
    if not include_all:
        for v, unit in enumerate(todo):
            held = _held(graph, unit)
            if held is not None:
                causes[v] = held
    return causes


def _satisfied(graph: Graph, unit: TaskId, satisfied: frozenset[str], include_all: bool) -> bool:
    parent = graph.parents.get(unit)
    return not include_all and (
        graph.nodes[unit].status in satisfied or (parent is not None and parent.status in satisfied)
    )


def _held(graph: Graph, unit: TaskId) -> tuple[str, str] | None:
    """Why an unsatisfied unit is never scheduled, and what its dependents cite; None if it runs."""
    status = graph.nodes[unit].status
    if status in NEVER_SCHEDULED_STATUSES:
        return f"status is {status}", status
    parent = graph.parents.get(unit)
    if parent is not None and parent.status in NEVER_SCHEDULED_STATUSES:
        because = f"parent {parent.id} is {parent.status}"
        return because, because
    return None


def _spread(
    ids: Sequence[TaskId], adj: Sequence[Sequence[int]], causes: Mapping[int, tuple[str, str]]
) -> dict[int, str]:
    """Blocked roots and, breadth first, every unit waiting on one: `waits for 7 (deferred)`."""
    users = dependents(adj)
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
    ids, adj = shape.ids, shape.adj  # ids come sorted, so each level does too
    depth = [0] * len(ids)
    for v in shape.order:
        depth[v] = max((depth[d] + 1 for d in adj[v]), default=0)
    found: list[list[TaskId]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for v, unit in enumerate(ids):
        found[depth[v]].append(unit)
    return found


def critical_path(graph: Graph, estimates: Mapping[TaskId, float] | None) -> CriticalPath:
    """The longest chain, in estimated seconds when any estimate is known, else in steps."""
    weights = durations(graph, estimates)
    shape = structure(graph)
    ids, adj = shape.ids, shape.adj
    weight = [1.0] * len(ids) if weights is None else [weights[u] for u in ids]
    finish = [0.0] * len(ids)
    via = [-1] * len(ids)
    for v in shape.order:
        for d in adj[v]:
            best = via[v]
            if best < 0 or finish[d] > finish[best] or (finish[d] == finish[best] and d < best):
                via[v] = d
        finish[v] = weight[v] + (finish[via[v]] if via[v] >= 0 else 0.0)
    if not ids:
        return CriticalPath(tasks=(), seconds=None if weights is None else 0.0, steps=0)
    chain = [max(range(len(ids)), key=finish.__getitem__)]  # the first maximum: lowest id
    while via[chain[-1]] >= 0:
        chain.append(via[chain[-1]])
    tasks = tuple(ids[v] for v in reversed(chain))
    seconds = None if weights is None else finish[chain[0]]
    return CriticalPath(tasks=tasks, seconds=seconds, steps=len(tasks))
