"""Tests for graph.schedule: rank keys, the ready queue and the simulated run."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptx.core.errors import CycleError
from ptx.core.model import Task, TaskList
from ptx.graph import schedule
from ptx.graph import units as graph


def task(task_id: str, *deps: str, priority: str = "medium") -> Task:
    return Task(
        id=task_id, token=task_id, parent=None, title=task_id, priority=priority, dependencies=deps
    )


def unit_graph(*tasks: Task) -> graph.Graph:
    return graph.units(TaskList(tag="master", tasks=tasks))


def ranked(g: graph.Graph, estimates: dict[str, float] | None = None) -> list[str]:
    keys = schedule.rank_keys(g, estimates)
    return sorted(keys, key=keys.__getitem__)


def drain(queue: schedule.ReadyQueue) -> list[str]:
    """Run the queue to the end one unit at a time, every unit succeeding."""
    order = []
    while (unit := queue.take()) is not None:
        order.append(unit)
        queue.done(unit)
    return order


# Rank keys


def chain_and_long_task() -> graph.Graph:
    return unit_graph(task("1"), task("2", "1"), task("3", "2"), task("4"))


def test_rank_by_steps_puts_the_longest_chain_first() -> None:
    assert ranked(chain_and_long_task()) == ["1", "2", "3", "4"]


def test_rank_by_seconds_disagrees_with_steps() -> None:
    estimates = {"1": 1.0, "2": 1.0, "3": 1.0, "4": 10.0}
    assert ranked(chain_and_long_task(), estimates) == ["4", "1", "2", "3"]


def test_rank_ties_go_to_the_longer_task_then_priority_then_id() -> None:
    g = unit_graph(
        task("1", priority="low"),  # 5 s alone: the longer task wins over a higher priority
        task("2"),  # 1 s, then 4 s of dependents: the same remaining path as 1
        task("3", "2"),
        task("4", priority="low"),
        task("5", priority="critical"),
        task("6", priority="oddball"),  # unknown priorities count as medium
        task("7"),
    )
    estimates = {"1": 5.0, "2": 1.0, "3": 4.0, "4": 1.0, "5": 1.0, "6": 1.0, "7": 1.0}
    assert ranked(g, estimates) == ["1", "2", "3", "5", "6", "7", "4"]


def test_rank_keys_reject_a_cycle() -> None:
    with pytest.raises(CycleError, match=r"^dependency cycle: 1 -> 2 -> 1$"):
        schedule.rank_keys(unit_graph(task("1", "2"), task("2", "1")), None)


# The ready queue


def fan_graph() -> graph.Graph:
    return unit_graph(
        task("1"),
        task("2", "1"),
        task("3", "2"),
        task("4", "1"),
        task("5"),
        task("6", "3", "5"),
        task("7", "5"),
    )


def test_queue_runs_every_unit_after_its_dependencies() -> None:
    g = fan_graph()
    order = drain(schedule.ReadyQueue(g, schedule.rank_keys(g, None)))
    assert sorted(order) == sorted(g.nodes)
    assert all(order.index(d) < order.index(u) for u, deps in g.deps.items() for d in deps)


def test_fail_skips_exactly_the_transitive_dependents() -> None:
    g = fan_graph()
    queue = schedule.ReadyQueue(g, schedule.rank_keys(g, None))
    assert queue.ready_count() == 2
    assert queue.take() == "1"
    assert queue.fail("1") == ("2", "3", "4", "6")
    assert not queue.is_finished()
    assert drain(queue) == ["5", "7"]
    assert queue.is_finished()
    assert queue.ready_count() == 0


def test_a_unit_skipped_twice_is_reported_once() -> None:
    g = unit_graph(task("1"), task("2"), task("3", "1", "2"), task("4", "3"))
    queue = schedule.ReadyQueue(g, schedule.rank_keys(g, None))
    first, second = queue.take(), queue.take()
    assert (first, second) == ("1", "2")
    assert queue.fail("1") == ("3", "4")
    assert queue.fail("2") == ()
    assert queue.take() is None
    assert queue.is_finished()


def test_take_respects_the_predicate_and_keeps_the_rest_in_order() -> None:
    g = unit_graph(
        task("1", priority="low"),
        task("2", priority="critical"),
        task("3", priority="high"),
        task("4", priority="medium"),
    )
    queue = schedule.ReadyQueue(g, schedule.rank_keys(g, None))
    assert queue.take(lambda unit: unit != "2") == "3"
    assert queue.take(lambda unit: unit in {"1", "4"}) == "4"
    assert queue.take(lambda _: False) is None
    assert queue.ready_count() == 2
    assert [queue.take(), queue.take(), queue.take()] == ["2", "1", None]


def test_put_back_makes_a_unit_ready_again() -> None:
    g = unit_graph(task("1"), task("2", "1"))
    queue = schedule.ReadyQueue(g, schedule.rank_keys(g, None))
    assert queue.take() == "1"
    queue.put_back("1")
    assert queue.ready_count() == 1
    assert drain(queue) == ["1", "2"]
    assert queue.is_finished()


def test_only_taken_units_can_be_resolved() -> None:
    g = unit_graph(task("1"), task("2", "1"))
    queue = schedule.ReadyQueue(g, schedule.rank_keys(g, None))
    with pytest.raises(ValueError, match="not taken"):
        queue.done("1")
    with pytest.raises(ValueError, match="not taken"):
        queue.fail("2")


def test_queue_rejects_a_cycle_read_as_depends_on() -> None:
    g = unit_graph(task("1", "2"), task("2", "3"), task("3", "1"), task("4"))
    with pytest.raises(CycleError) as error:
        schedule.ReadyQueue(g, {})
    assert error.value.cycle in {("1", "2", "3", "1"), ("2", "3", "1", "2"), ("3", "1", "2", "3")}


def test_queue_drains_a_long_chain() -> None:
    n = 100_000
    g = unit_graph(task("1"), *(task(str(i), str(i - 1)) for i in range(2, n + 1)))
    queue = schedule.ReadyQueue(g, schedule.rank_keys(g, None))
    assert drain(queue) == [str(i) for i in range(1, n + 1)]
    assert queue.is_finished()


# The simulated run


def test_simulate_two_workers_three_independent_tasks() -> None:
    g = unit_graph(task("1"), task("2"), task("3"))
    sim = schedule.simulate(g, {"1": 3.0, "2": 2.0, "3": 2.0}, 2)
    assert sim == schedule.Simulation(
        makespan=4.0,
        work=7.0,
        slots=(
            schedule.Slot(unit="1", start=0.0, end=3.0, worker=0),
            schedule.Slot(unit="2", start=0.0, end=2.0, worker=1),
            schedule.Slot(unit="3", start=2.0, end=4.0, worker=1),
        ),
    )


def test_simulate_follows_dependencies_and_the_rank() -> None:
    g = unit_graph(task("1"), task("2", "1"), task("3"))
    estimates = {"1": 2.0, "2": 3.0, "3": 4.0}
    # One worker: 1 (remaining 5) first, then 3 (4) before 2 (3).
    one = schedule.simulate(g, estimates, 1)
    assert [(s.unit, s.start, s.end) for s in one.slots] == [
        ("1", 0.0, 2.0),
        ("3", 2.0, 6.0),
        ("2", 6.0, 9.0),
    ]
    assert schedule.simulate(g, estimates, 2).makespan == 5.0


def test_simulate_starts_the_best_unit_among_all_that_finish_at_once() -> None:
    # 1 and 2 end together at 2 s; only then is the 10 s unit 3 ready, and it goes before 4.
    g = unit_graph(task("1"), task("2"), task("3", "1", "2"), task("4", "1"))
    sim = schedule.simulate(g, {"1": 2.0, "2": 2.0, "3": 10.0, "4": 1.0}, 2)
    assert sim.slots == (
        schedule.Slot(unit="1", start=0.0, end=2.0, worker=0),
        schedule.Slot(unit="2", start=0.0, end=2.0, worker=1),
        schedule.Slot(unit="3", start=2.0, end=12.0, worker=0),
        schedule.Slot(unit="4", start=2.0, end=3.0, worker=1),
    )


def test_simulate_counts_missing_estimates_as_the_mean_and_none_as_one_second() -> None:
    g = unit_graph(task("1"), task("2", "1"), task("3"))
    assert schedule.simulate(g, {"1": 2.0, "3": 4.0}, 1).work == 9.0
    assert schedule.simulate(g, {}, 4).makespan == 2.0
    assert schedule.simulate(unit_graph(), {}, 4) == schedule.Simulation(
        makespan=0.0, work=0.0, slots=()
    )


def test_simulate_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        schedule.simulate(unit_graph(task("1")), {}, 0)


@st.composite
def timed_dags(draw: st.DrawFn) -> tuple[graph.Graph, dict[str, float], int]:
    """Random DAGs (edges only from a higher index to a lower one) with whole-second estimates."""
    n = draw(st.integers(min_value=1, max_value=25))
    tasks = []
    for i in range(n):
        deps = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=4)) if i else set()
        tasks.append(task(str(i + 1), *(str(d + 1) for d in sorted(deps))))
    estimates = {str(i + 1): float(draw(st.integers(min_value=0, max_value=20))) for i in range(n)}
    return unit_graph(*tasks), estimates, draw(st.integers(min_value=1, max_value=5))


@settings(max_examples=200, deadline=None)
@given(timed_dags())
def test_simulation_is_a_valid_schedule_within_grahams_bound(
    case: tuple[graph.Graph, dict[str, float], int],
) -> None:
    g, estimates, jobs = case
    sim = schedule.simulate(g, estimates, jobs)
    slot = {s.unit: s for s in sim.slots}
    assert sorted(slot) == sorted(g.nodes)
    for unit, deps in g.deps.items():
        assert all(slot[d].end <= slot[unit].start for d in deps)
        assert slot[unit].end - slot[unit].start == estimates[unit]
    for moment in {s.start for s in sim.slots}:
        running = [s for s in sim.slots if s.start <= moment < s.end]
        assert len(running) <= jobs
        assert len({s.worker for s in running}) == len(running)
    assert all(0 <= s.worker < jobs for s in sim.slots)
    critical = graph.critical_path(g, estimates).seconds
    assert critical is not None
    assert sim.work == sum(estimates.values())
    assert sim.makespan >= max(critical, sim.work / jobs) - 1e-9
    assert sim.makespan <= sim.work / jobs + critical + 1e-9
