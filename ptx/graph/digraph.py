"""Graph algorithms on integer indices: adjacency, Kahn order, levels, longest path, cycles."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.errors import CycleError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ptx.core.model import TaskId


@dataclass(frozen=True, slots=True)
class Structure:
    """A graph as integers: ids in id order, what each waits for, its users, a topological order."""

    ids: list[TaskId]
    adj: list[list[int]]
    users: list[list[int]]
    order: list[int]


def indexed(ids: Sequence[TaskId], deps: Mapping[TaskId, Iterable[TaskId]]) -> list[list[int]]:
    """Per index into `ids`, the indices it waits for; dependencies outside `ids` are left out."""
    pos = {unit: i for i, unit in enumerate(ids)}
    return [[pos[d] for d in deps.get(unit, ()) if d in pos] for unit in ids]


def dependents(adj: Sequence[Sequence[int]]) -> list[list[int]]:
    """The reverse of an index adjacency: per index, the indices that wait for it."""
    users: list[list[int]] = [[] for _ in adj]
    for v, deps in enumerate(adj):
        for d in deps:
            users[d].append(v)
    return users


def kahn(adj: Sequence[Sequence[int]], users: Sequence[Sequence[int]]) -> list[int]:
    """Indices with every dependency before its dependents; shorter than `adj` on a cycle.

    `users` is `dependents(adj)`, which callers usually need as well.
    """
    waiting = [len(deps) for deps in adj]
    order = [v for v, count in enumerate(waiting) if not count]
    for v in order:  # grows while it is walked: each unit joins once its last dependency is in
        for user in users[v]:
            waiting[user] -= 1
            if not waiting[user]:
                order.append(user)
    return order


def depths(adj: Sequence[Sequence[int]], order: Sequence[int]) -> list[int]:
    """Per index, its level: 0 without dependencies, else one after its deepest dependency."""
    depth = [0] * len(adj)
    for v in order:
        depth[v] = max((depth[d] + 1 for d in adj[v]), default=0)
    return depth


def longest_path(
    adj: Sequence[Sequence[int]], order: Sequence[int], weight: Sequence[float]
) -> tuple[list[int], float]:
    """The chain of most weight through the indices of `order` (each after its dependencies;
    a dependency left out of `order` is on no chain), first to run first, and its weight.

    A tie goes to the lower index, at each step and at the chain's end: with ids in id order,
    1 and 2 both before 3, all of one weight, give `1 -> 3`. Plan, report and live view all
    ask here, so they name the same chain.
    """
    finish = [-math.inf] * len(adj)  # stays so for an index outside `order`
    via = [-1] * len(adj)
    for v in order:
        best = -1
        for d in adj[v]:
            if finish[d] > -math.inf and (
                best < 0 or finish[d] > finish[best] or (finish[d] == finish[best] and d < best)
            ):
                best = d
        via[v] = best
        finish[v] = weight[v] + (finish[best] if best >= 0 else 0.0)
    if not order:
        return [], 0.0
    longest = max(finish[v] for v in order)
    end = min(v for v in order if finish[v] == longest)
    chain = [end]
    while via[chain[-1]] >= 0:
        chain.append(via[chain[-1]])
    chain.reverse()
    return chain, finish[end]


def topological(
    ids: Sequence[TaskId], adj: Sequence[Sequence[int]], users: Sequence[Sequence[int]]
) -> list[int]:
    """The `kahn` order of every index; CycleError names the cycle through the lowest index."""
    order = kahn(adj, users)
    if len(order) < len(adj):
        cycle = shortest_cycle(adj, min(components(adj), key=min))
        raise CycleError(tuple(ids[v] for v in cycle))
    return order


def components(adj: Sequence[Sequence[int]]) -> list[list[int]]:
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


def shortest_cycle(adj: Sequence[Sequence[int]], component: Sequence[int]) -> list[int]:
    """A shortest cycle (BFS) from the component's lowest index back to it: [start, ..., start]."""
    start = min(component)
    members = set(component)
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
    return [start, start]  # only reached when `component` is not strongly connected
