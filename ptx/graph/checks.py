"""The dependency checks of a task list: missing dependencies, cycles, done on unfinished."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from ptx.core.model import Code, Finding, Severity, Task, TaskId, id_key
from ptx.graph.digraph import components, shortest_cycle
from ptx.graph.units import first_by_id, inherited, own_deps, path_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ptx.core.model import TaskList

_WHAT_IF_BUDGET = 200_000  # edge visits allowed to rate each removable edge of one cycle


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
    nodes = first_by_id(tasks.tasks)
    return (
        *_missing(nodes, tasks.tag),
        *_cycles(nodes, tasks.tag),
        *_done_on_unfinished(nodes, satisfied, tasks.tag),
    )


def _missing(nodes: Mapping[TaskId, Task], tag: str) -> list[Finding]:
    return [
        Finding(
            code=Code.MISSING_DEPENDENCY,
            severity=Severity.ERROR,
            task=task.id,
            message=f"depends on {dep}, which does not exist",
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
            message=f"is {task.status} but depends on {dep} ({nodes[dep].status})",
            tag=tag,
        )
        for task in nodes.values()
        if task.status in satisfied
        for dep in own_deps(task, nodes)
        if nodes[dep].status not in satisfied
    ]


def _full_graph(nodes: Mapping[TaskId, Task]) -> _Full:
    ids = sorted(nodes, key=id_key)
    pos = {task_id: i for i, task_id in enumerate(ids)}
    out: list[dict[int, int | None]] = [{} for _ in ids]  # target -> None when explicit
    for task in nodes.values():
        out[pos[task.id]].update((pos[d], None) for d in own_deps(task, nodes))
    for task in nodes.values():
        parent = nodes.get(task.parent) if task.parent is not None else None
        if parent is None:
            continue
        out[pos[parent.id]].setdefault(pos[task.id], -1)
        for dep in inherited(task, parent, nodes):
            out[pos[task.id]].setdefault(pos[dep], pos[parent.id])
    implicit = {
        (v, w): via for v, edges in enumerate(out) for w, via in edges.items() if via is not None
    }
    return _Full(ids=ids, adj=[sorted(edges) for edges in out], implicit=implicit)


def _cycles(nodes: Mapping[TaskId, Task], tag: str) -> list[Finding]:
    full = _full_graph(nodes)
    findings = []
    for component in sorted(components(full.adj), key=min):
        cycle = shortest_cycle(full.adj, component)
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
    return path_text(hops)


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
    return sum(len(c) for c in components(adj))
