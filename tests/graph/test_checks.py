"""Tests for graph.checks: missing dependencies, cycles and their messages, done on unfinished."""

from __future__ import annotations

from builders import task, tasklist

from ptx.core.model import DEFAULT_SATISFIED, Code, Finding, Severity, Task
from ptx.graph import checks


def cycle(message: str, task_id: str) -> Finding:
    return Finding(
        code=Code.CYCLE, severity=Severity.ERROR, task=task_id, message=message, tag="master"
    )


def check(*tasks: Task) -> tuple[Finding, ...]:
    return checks.check(tasklist(*tasks), satisfied=DEFAULT_SATISFIED)


def test_missing_dependency_names_both_ids() -> None:
    found = check(task("45"), task("49", "45", "50"), task("49.1", "7.3"))
    assert found == (
        Finding(
            code=Code.MISSING_DEPENDENCY,
            severity=Severity.ERROR,
            task="49",
            message="depends on 50, which does not exist",
            tag="master",
        ),
        Finding(
            code=Code.MISSING_DEPENDENCY,
            severity=Severity.ERROR,
            task="49.1",
            message="depends on 7.3, which does not exist",
            tag="master",
        ),
    )


def test_three_cycle_is_an_ordered_path_with_a_forward_edge_to_remove() -> None:
    found = check(task("1", "2"), task("2", "3"), task("3", "1"), task("4", "1"))
    message = "dependency cycle: 1 -> 2 -> 3 -> 1 (remove 1's dependency on 2 to break it)"
    assert found == (cycle(message, "1"),)


def test_two_separate_cycles_give_two_findings() -> None:
    found = check(task("5", "16"), task("16", "5"), task("20", "21"), task("21", "20"), task("30"))
    assert found == (
        cycle("dependency cycle: 5 -> 16 -> 5 (remove 5's dependency on 16 to break it)", "5"),
        cycle("dependency cycle: 20 -> 21 -> 20 (remove 20's dependency on 21 to break it)", "20"),
    )


def test_suggested_edge_is_the_one_that_breaks_every_cycle_of_the_group() -> None:
    # 1 -> 2 -> 5 -> 1 and 1 -> 3 -> 5 -> 1 share 5's dependency on 1, a backward edge.
    found = check(task("1", "2", "3"), task("2", "5"), task("3", "5"), task("5", "1"))
    message = (
        "dependency cycle: 1 -> 2 -> 5 -> 1 (remove 5's dependency on 1 to break it;"
        " 1 more task is caught in this cycle group)"
    )
    assert found == (cycle(message, "1"),)


def test_cycle_through_a_task_waiting_for_its_subtask() -> None:
    found = check(task("5"), task("5.1"), task("5.2", "7"), task("7", "5"))
    message = (
        "dependency cycle: 5 -> 5.2 (subtask) -> 7 -> 5 (remove 5.2's dependency on 7 to break it)"
    )
    assert found == (cycle(message, "5"),)


def test_cycle_through_a_subtask_inheriting_its_parents_dependency() -> None:
    # 7 waits for 5.1, and 5.1 waits for 7 because its parent 5 does.
    found = check(task("5", "7"), task("5.1"), task("7", "5.1"))
    message = "dependency cycle: 5.1 -> 7 (via 5) -> 5.1 (remove 5's dependency on 7 to break it)"
    assert found == (cycle(message, "5.1"),)


def test_subtask_depending_on_its_own_parent_is_not_a_cycle() -> None:
    assert check(task("5"), task("5.1", "5"), task("5.2", "5.1")) == ()


def test_done_task_depending_on_unfinished_work_is_a_warning() -> None:
    found = check(
        task("5", "16", "17", status="done"),
        task("16", status="in-progress"),
        task("17", status="cancelled"),
        task("18", "16"),
        task("18.1", "18.2", status="completed"),
        task("18.2"),
    )
    assert [(f.code, f.severity, f.task, f.message) for f in found] == [
        (
            Code.DONE_DEPENDS_ON_UNFINISHED,
            Severity.WARNING,
            "5",
            "is done but depends on 16 (in-progress)",
        ),
        (
            Code.DONE_DEPENDS_ON_UNFINISHED,
            Severity.WARNING,
            "18.1",
            "is completed but depends on 18.2 (pending)",
        ),
    ]


def test_done_warning_follows_the_satisfied_statuses() -> None:
    tasks = tasklist(task("5", "17", status="done"), task("17", status="cancelled"))
    found = checks.check(tasks, satisfied=frozenset({"done"}))
    assert [f.message for f in found] == ["is done but depends on 17 (cancelled)"]


def test_findings_carry_the_tag() -> None:
    found = checks.check(tasklist(task("1", "2"), tag="feature-x"), satisfied=DEFAULT_SATISFIED)
    assert [f.tag for f in found] == ["feature-x"]


def test_long_chain_has_no_findings_and_no_recursion_error() -> None:
    n = 100_000
    tasks = [task("1"), *(task(str(i), str(i - 1)) for i in range(2, n + 1))]
    assert check(*tasks) == ()


def test_long_cycle_is_one_finding_with_the_middle_elided() -> None:
    n = 100_000
    (found,) = check(*(task(str(i), str(i % n + 1)) for i in range(1, n + 1)))
    head = " -> ".join(str(i) for i in range(1, 25))
    tail = " -> ".join([*(str(i) for i in range(n - 22, n + 1)), "1"])
    assert found.message == (
        f"dependency cycle: {head} -> ... {n + 1 - 48} more ... -> {tail}"
        " (remove 1's dependency on 2 to break it)"
    )
