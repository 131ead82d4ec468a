"""The dashboard's data from real journals: runs over time, one run's slots and held starts,
and each task across runs (success, flips, cost)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from projects import make_project, ptx, task

from ptx.core.events import Held, RunResult
from ptx.journal.store import Journal
from ptx.outputs import history
from ptx.outputs.history import TaskHistory

if TYPE_CHECKING:
    from pathlib import Path

COST = """printf '{"cost_usd": 0.5}' > "$PTX_RESULT" """
# Fails only on the first attempt of the project's first run (a marker file remembers it).
FLAKY_ONCE = "if [ ! -f flaked ]; then touch flaked; exit 1; fi"


def loaded(root: Path, **options: object) -> history.History:
    with Journal.open(root / ".ptx") as journal:
        return history.load(journal, limit=50, **options)  # type: ignore[arg-type]


def test_flip_and_success_rates() -> None:
    steady = TaskHistory(task="1", outcomes=["pass", "pass", "pass"])
    assert (steady.success_rate, steady.flip_rate) == (1.0, 0.0)
    # fail after pass, pass after fail, and a run where it was flaky: 3 flips in 4 runs
    shaky = TaskHistory(task="2", outcomes=["pass", "fail", "pass", "flaky"])
    assert (shaky.success_rate, shaky.flip_rate) == (0.75, 0.75)
    assert TaskHistory(task="3").flip_rate == 0.0  # never ran: no division by zero


def test_runs_tasks_and_flaky_outcomes_across_runs(tmp_path: Path) -> None:
    root = make_project(
        tmp_path, [task(1, COST), task(2, FLAKY_ONCE, 1, ptx_retries=1), task(3, "exit 4")]
    )
    assert ptx(root, "run").returncode == 1
    assert ptx(root, "run").returncode == 1
    shown = loaded(root)
    assert [(run.status, run.tasks, run.failures, run.flaky) for run in shown.runs] == [
        ("failed", 3, 1, 1),
        ("failed", 3, 1, 0),
    ]
    assert [run.cost_usd for run in shown.runs] == [0.5, 0.5]
    assert shown.runs[0].started_at <= shown.runs[1].started_at  # oldest first
    tasks = {entry.task: entry for entry in shown.tasks}
    assert tasks["1"].cost_usd == 1.0
    assert tasks["2"].outcomes == ["flaky", "pass"]
    assert tasks["3"].outcomes == ["fail", "fail"]
    assert (tasks["3"].success_rate, tasks["2"].flip_rate) == (0.0, 0.5)


def test_one_runs_attempts_on_slots_with_the_critical_path_and_retries(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true"), task(2, FLAKY_ONCE, 1, ptx_retries=1)])
    assert ptx(root, "run", "-j", "2").returncode == 0
    detail = loaded(root).detail
    assert detail is not None
    assert detail.critical_path == ("1", "2")
    bars = [(bar.task, bar.attempt, bar.status, bar.retried, bar.critical) for bar in detail.bars]
    assert bars == [
        ("1", 1, "succeeded", False, True),
        ("2", 1, "failed", True, False),  # retried: the path runs through its last attempt
        ("2", 2, "succeeded", False, True),
    ]
    assert {bar.slot for bar in detail.bars} == {1}  # each waited for the one before
    assert all(0 <= bar.start <= bar.end <= detail.wall for bar in detail.bars)


def test_a_held_start_says_why_the_run_told(tmp_path: Path) -> None:
    # Both ask for the only db unit: whichever starts second waits for the other to end. The
    # run tells why at once, or within its survey (every 0.5 s) when the machine's guard held
    # every start first: on a busy machine the reason told may be the guard's.
    tasks = [task(n, "sleep 1", ptx_resources={"db": 1}) for n in (1, 2)]
    root = make_project(tmp_path, tasks, resources={"db": 1})
    assert ptx(root, "run", "-j", "2").returncode == 0
    detail = loaded(root).detail
    assert detail is not None
    (held,) = detail.held
    assert held.reason in {"resource db", "cpu", "memory"}
    assert held.start - held.ready >= 1  # it waited for the other task to end
    chosen = loaded(root, run_id=detail.run_id).detail
    assert chosen is not None
    assert chosen.run_id == detail.run_id


def test_held_starts_take_the_last_reason_told_else_a_slot() -> None:
    result = RunResult(
        run_id="r", status="succeeded", jobs=1, started_at=100.0, ended_at=110.0, tasks=(),
        dependencies={"2": ("1",), "3": ()},
        held_starts=(
            Held(id="3", reason="cpu", at=100.5), Held(id="3", reason="breaker db", at=101.0),
        ),
    )  # fmt: skip
    bars = [
        history.Bar(task=unit, title="", attempt=1, slot=1, start=start, end=end,
                    status="succeeded", critical=False, retried=False, cost_usd=None)
        for unit, start, end in (("1", 0.0, 4.0), ("2", 4.01, 6.0), ("3", 6.0, 8.0))
    ]  # fmt: skip
    held = history.held_starts(result, bars)
    assert [(h.task, h.ready, h.start, h.reason) for h in held] == [("3", 0.0, 6.0, "breaker db")]
    result = dataclasses.replace(result, held_starts=())
    (slot,) = history.held_starts(result, bars)
    assert (slot.task, slot.reason) == ("3", "a free slot")


def test_an_empty_journal_has_nothing_to_show(tmp_path: Path) -> None:
    with Journal.open(tmp_path / ".ptx") as journal:
        shown = history.load(journal, limit=10)
    assert (shown.runs, shown.detail, shown.tasks) == ((), None, ())
