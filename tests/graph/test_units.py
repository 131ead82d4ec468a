"""Tests for graph.units: units, selection, levels and the critical path."""

from __future__ import annotations

import pytest
from builders import task, tasklist
from hypothesis import given, settings
from hypothesis import strategies as st

from ptx.core.errors import CycleError, UsageError
from ptx.core.model import DEFAULT_SATISFIED, Task
from ptx.graph import checks
from ptx.graph import units as graph


def unit_graph(*tasks: Task, subtasks: bool = False) -> graph.Graph:
    return graph.units(tasklist(*tasks), subtasks=subtasks)


# Long graphs


def test_long_chain_has_no_recursion_error() -> None:
    n = 100_000
    tasks = [task("1"), *(task(str(i), str(i - 1)) for i in range(2, n + 1))]
    work = graph.select(unit_graph(*tasks), satisfied=DEFAULT_SATISFIED).work
    assert len(graph.levels(work)) == n
    assert graph.critical_path(work, None).steps == n


def test_long_cycle_blocks_everything_with_the_middle_of_its_path_elided() -> None:
    n = 100_000
    tasks = [task(str(i), str(i % n + 1)) for i in range(1, n + 1)]
    selection = graph.select(unit_graph(*tasks), satisfied=DEFAULT_SATISFIED)
    head = " -> ".join(str(i) for i in range(1, 25))
    tail = " -> ".join([*(str(i) for i in range(n - 22, n + 1)), "1"])
    reason = f"in dependency cycle {head} -> ... {n + 1 - 48} more ... -> {tail}"
    assert selection.blocked == tuple((str(i), reason) for i in range(1, n + 1))
    assert not selection.work.nodes


# Units of execution


def mixed_tasks() -> list[Task]:
    return [
        task("1"),
        task("2"),
        task("2.1"),
        task("2.2", "2.1", "3.1"),  # a sibling, and another task's subtask
        task("3", "1"),
        task("3.1"),
        task("3.2", "3"),  # its own parent: dropped
        task("4", "2.2", "99"),  # a subtask, and an id that does not exist
        task("5", "3"),
    ]


def test_task_units_merge_subtask_dependencies_into_their_task() -> None:
    g = unit_graph(*mixed_tasks())
    assert list(g.nodes) == ["1", "2", "3", "4", "5"]
    assert dict(g.deps) == {"1": (), "2": ("3",), "3": ("1",), "4": ("2",), "5": ("3",)}
    assert not g.parents


def test_subtask_units_expand_tasks_and_inherit_parent_dependencies() -> None:
    g = unit_graph(*mixed_tasks(), subtasks=True)
    assert list(g.nodes) == ["1", "2.1", "2.2", "3.1", "3.2", "4", "5"]
    assert dict(g.deps) == {
        "1": (),
        "2.1": (),
        "2.2": ("2.1", "3.1"),
        "3.1": ("1",),
        "3.2": ("1",),
        "4": ("2.2",),
        "5": ("3.1", "3.2"),
    }
    assert {unit: parent.id for unit, parent in g.parents.items()} == {
        "2.1": "2",
        "2.2": "2",
        "3.1": "3",
        "3.2": "3",
    }


# Selecting the work


def status_tasks() -> list[Task]:
    return [
        task("1", status="done"),
        task("2", "1"),
        task("3", status="deferred"),
        task("4", "3"),
        task("5", "4", "2"),
        task("6", status="cancelled"),
        task("7", "6"),
        task("8", status="blocked"),
        task("9", "2", status="in-progress"),
        task("10", status="review"),
        task("11", status="someday"),
    ]


def test_select_skips_satisfied_and_blocks_what_waits_on_never_scheduled() -> None:
    sel = graph.select(unit_graph(*status_tasks()), satisfied=DEFAULT_SATISFIED)
    assert sel.satisfied == {"1", "6"}
    assert dict(sel.work.deps) == {"2": (), "7": (), "9": ("2",), "11": ()}
    assert sel.blocked == (
        ("3", "status is deferred"),
        ("4", "waits for 3 (deferred)"),
        ("5", "waits for 3 (deferred)"),
        ("8", "status is blocked"),
        ("10", "status is review"),  # a person is reviewing it: Taskmaster's next skips it
    )


def test_review_runs_when_the_config_does_not_hold_it() -> None:
    held = frozenset({"deferred", "blocked", "cancelled"})
    sel = graph.select(unit_graph(*status_tasks()), satisfied=DEFAULT_SATISFIED, held=held)
    assert "10" in sel.work.nodes


def test_cancelled_blocks_when_it_does_not_satisfy() -> None:
    sel = graph.select(unit_graph(*status_tasks()), satisfied=frozenset({"done", "completed"}))
    assert ("6", "status is cancelled") in sel.blocked
    assert ("7", "waits for 6 (cancelled)") in sel.blocked
    assert sel.satisfied == {"1"}


def test_include_all_makes_everything_work() -> None:
    g = unit_graph(*status_tasks())
    sel = graph.select(g, satisfied=DEFAULT_SATISFIED, include_all=True)
    assert sel.blocked == ()
    assert sel.satisfied == frozenset()
    assert dict(sel.work.deps) == dict(g.deps)


def test_done_units_count_as_satisfied() -> None:
    sel = graph.select(
        unit_graph(task("1"), task("2", "1")), satisfied=frozenset(), done=frozenset({"1"})
    )
    assert sel.satisfied == {"1"}
    assert dict(sel.work.deps) == {"2": ()}


def test_cycle_blocks_its_members_and_dependents_even_with_include_all() -> None:
    g = unit_graph(task("1", "2"), task("2", "1"), task("3", "2"), task("4"))
    for include_all in (False, True):
        sel = graph.select(g, satisfied=DEFAULT_SATISFIED, include_all=include_all)
        assert sel.blocked == (
            ("1", "in dependency cycle 1 -> 2 -> 1"),
            ("2", "in dependency cycle 1 -> 2 -> 1"),
            ("3", "waits for 2 (in dependency cycle 1 -> 2 -> 1)"),
        )
        assert list(sel.work.nodes) == ["4"]


def test_a_satisfied_member_breaks_the_cycle() -> None:
    g = unit_graph(task("1", "2", status="done"), task("2", "1"))
    sel = graph.select(g, satisfied=DEFAULT_SATISFIED)
    assert sel.blocked == ()
    assert dict(sel.work.deps) == {"2": ()}


def targets_graph(*, subtasks: bool = False) -> graph.Graph:
    return unit_graph(
        task("1", status="done"),
        task("2", "1"),
        task("3", "2"),
        task("4"),
        task("5", "4"),
        task("6"),
        task("6.1", "5"),
        task("6.2"),
        subtasks=subtasks,
    )


def test_targets_restrict_work_to_them_and_their_dependencies() -> None:
    g = targets_graph()
    sel = graph.select(g, satisfied=DEFAULT_SATISFIED, targets=["3"])
    assert dict(sel.work.deps) == {"2": (), "3": ("2",)}
    assert sel.satisfied == {"1"}
    sel = graph.select(g, satisfied=DEFAULT_SATISFIED, targets=["5", "3"])
    assert list(sel.work.nodes) == ["2", "3", "4", "5"]


def test_target_task_means_its_subtasks_in_subtask_mode() -> None:
    sel = graph.select(targets_graph(subtasks=True), satisfied=DEFAULT_SATISFIED, targets=["6"])
    assert dict(sel.work.deps) == {"4": (), "5": ("4",), "6.1": ("5",), "6.2": ()}


def test_unknown_target_lists_what_is_close() -> None:
    with pytest.raises(UsageError, match=r"^no task 33 in this tag; close: 3$"):
        graph.select(targets_graph(), satisfied=DEFAULT_SATISFIED, targets=["33"])


def test_subtask_target_in_task_mode_names_its_task() -> None:
    with pytest.raises(UsageError, match=r"^6\.1 is a subtask of 6: run 6, or use --subtasks$"):
        graph.select(targets_graph(), satisfied=DEFAULT_SATISFIED, targets=["6.1"])


def test_subtask_units_follow_their_parents_status() -> None:
    g = unit_graph(
        task("1", status="done"),
        task("1.1"),
        task("2", status="deferred"),
        task("2.1", status="done"),
        task("2.2"),
        task("3", "2"),
        subtasks=True,
    )
    sel = graph.select(g, satisfied=DEFAULT_SATISFIED)
    assert sel.satisfied == {"1.1", "2.1"}
    assert sel.blocked == (
        ("2.2", "parent 2 is deferred"),
        ("3", "waits for 2.2 (parent 2 is deferred)"),
    )


# Levels and the critical path


def test_levels_are_sorted_by_id() -> None:
    g = unit_graph(task("1"), task("2", "1"), task("3", "1"), task("4", "3", "2"), task("10"))
    assert graph.levels(g) == [["1", "10"], ["2", "3"], ["4"]]


def test_levels_and_critical_path_raise_on_a_cycle_read_as_depends_on() -> None:
    g = unit_graph(task("1", "2"), task("2", "3"), task("3", "1"))
    rotations = {("1", "2", "3", "1"), ("2", "3", "1", "2"), ("3", "1", "2", "3")}
    with pytest.raises(CycleError) as levels_error:
        graph.levels(g)
    assert levels_error.value.cycle in rotations
    with pytest.raises(CycleError, match=r"^dependency cycle: 1 -> 2 -> 3 -> 1$"):
        graph.critical_path(g, None)


def chain_and_long_task() -> graph.Graph:
    return unit_graph(task("1"), task("2", "1"), task("3", "2"), task("4"))


def test_critical_path_by_steps() -> None:
    assert graph.critical_path(chain_and_long_task(), None) == graph.CriticalPath(
        tasks=("1", "2", "3"), seconds=None, steps=3
    )


def test_critical_path_by_seconds_disagrees_with_steps() -> None:
    estimates = {"1": 1.0, "2": 1.0, "3": 1.0, "4": 10.0}
    assert graph.critical_path(chain_and_long_task(), estimates) == graph.CriticalPath(
        tasks=("4",), seconds=10.0, steps=1
    )


def test_critical_path_fills_missing_estimates_with_the_mean() -> None:
    # 2 and 3 count as the mean of 6 and 10, so the chain weighs 6 + 8 + 8 = 22 > 10.
    path = graph.critical_path(chain_and_long_task(), {"1": 6.0, "4": 10.0})
    assert path == graph.CriticalPath(tasks=("1", "2", "3"), seconds=22.0, steps=3)


def test_critical_path_ties_go_to_the_lowest_ids() -> None:
    g = unit_graph(task("1"), task("2"), task("3", "1", "2"), task("4", "1", "2"))
    assert graph.critical_path(g, None).tasks == ("1", "3")
    assert graph.critical_path(unit_graph(), None) == graph.CriticalPath(
        tasks=(), seconds=None, steps=0
    )


@st.composite
def dags(draw: st.DrawFn) -> graph.Graph:
    """Random DAGs: edges only from a higher index to a lower one."""
    n = draw(st.integers(min_value=1, max_value=25))
    tasks = []
    for i in range(n):
        deps = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=4)) if i else set()
        tasks.append(task(str(i + 1), *(str(d + 1) for d in sorted(deps))))
    return unit_graph(*tasks)


@settings(max_examples=150, deadline=None)
@given(dags())
def test_levels_are_tight(g: graph.Graph) -> None:
    level_of = {unit: k for k, level in enumerate(graph.levels(g)) for unit in level}
    assert set(level_of) == set(g.nodes)
    for unit, deps in g.deps.items():
        assert all(level_of[d] < level_of[unit] for d in deps)
        if level_of[unit]:
            assert any(level_of[d] == level_of[unit] - 1 for d in deps)
    assert graph.critical_path(g, None).steps == max(level_of.values()) + 1
    assert checks.check(tasklist(*g.nodes.values()), satisfied=frozenset()) == ()
