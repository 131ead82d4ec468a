"""Tests for graph.digraph: index adjacency, Kahn order, Tarjan components and shortest cycles."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptx.core.errors import CycleError
from ptx.graph import digraph


def test_indexed_follows_the_given_order_and_drops_outside_ids() -> None:
    adj = digraph.indexed(["2", "10", "3"], {"10": ("3", "99", "2"), "3": ("2",)})
    assert adj == [[], [2, 0], [0]]


def test_dependents_reverse_the_adjacency() -> None:
    assert digraph.dependents([[], [0], [0, 1]]) == [[1, 2], [2], []]


def test_kahn_puts_every_dependency_first() -> None:
    adj = [[1, 2], [2], [], [0]]
    assert digraph.kahn(adj, digraph.dependents(adj)) == [2, 1, 0, 3]


def test_kahn_leaves_out_a_cycle_and_what_waits_for_it() -> None:
    adj = [[], [0, 2], [1], [2], [0]]  # 1 <-> 2, and 3 waits for 2
    assert digraph.kahn(adj, digraph.dependents(adj)) == [0, 4]


def test_topological_names_the_cycle_through_the_lowest_index() -> None:
    adj = [[], [4], [3], [2], [1]]  # cycles 2 <-> 3 and 1 <-> 4; 1 is the lowest member
    with pytest.raises(CycleError) as error:
        digraph.topological(["a", "b", "c", "d", "e"], adj, digraph.dependents(adj))
    assert error.value.cycle == ("b", "e", "b")


def test_components_leave_out_single_nodes() -> None:
    adj = [[1], [0], [1], [4], [5], [3], []]
    assert sorted(sorted(c) for c in digraph.components(adj)) == [[0, 1], [3, 4, 5]]


def test_components_of_a_deep_cycle_need_no_recursion() -> None:
    n = 50_000
    adj = [[(v + 1) % n] for v in range(n)]
    (component,) = digraph.components(adj)
    assert sorted(component) == list(range(n))


def test_shortest_cycle_takes_the_fewest_hops_from_the_lowest_member() -> None:
    adj = [[1, 2], [2], [0], []]  # 0 -> 1 -> 2 -> 0 and 0 -> 2 -> 0
    assert digraph.shortest_cycle(adj, [2, 1, 0]) == [0, 2, 0]


def reaches(adj: list[list[int]], start: int) -> set[int]:
    seen: set[int] = set()
    stack = [start]
    while stack:
        for w in adj[stack.pop()]:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


@st.composite
def digraphs(draw: st.DrawFn) -> list[list[int]]:
    n = draw(st.integers(min_value=1, max_value=12))
    return [
        sorted(draw(st.sets(st.integers(min_value=0, max_value=n - 1), max_size=3)) - {v})
        for v in range(n)
    ]


@settings(max_examples=200, deadline=None)
@given(digraphs())
def test_components_kahn_and_cycles_agree_with_reachability(adj: list[list[int]]) -> None:
    reach = [reaches(adj, v) for v in range(len(adj))]
    cyclic = {v for v in range(len(adj)) if v in reach[v]}
    found = digraph.components(adj)
    assert sorted(v for c in found for v in c) == sorted(cyclic)
    for component in found:
        assert all(w in reach[v] for v in component for w in component)
        cycle = digraph.shortest_cycle(adj, component)
        assert cycle[0] == cycle[-1] == min(component)
        assert all(w in adj[v] and w in component for v, w in pairwise(cycle))
    order = digraph.kahn(adj, digraph.dependents(adj))
    assert set(order) == {v for v in range(len(adj)) if not reach[v] & cyclic and v not in cyclic}
    position = {v: i for i, v in enumerate(order)}
    assert all(position[d] < position[v] for v in order for d in adj[v])
