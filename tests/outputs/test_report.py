"""Tests for the final report: figures, the JSON round trip, the Gantt layout, `ptx report`."""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
from typing import TYPE_CHECKING

import pytest
from builders import drop_schema_5, drop_schema_6, tasklist
from builders import task as graph_task
from projects import make_project, ptx, task
from rich.console import Console

from ptx.cli.gantt import PER_TASK_LIMIT, gantt_lines
from ptx.cli.render import run_report
from ptx.core.events import RunResult, Status, TaskResult
from ptx.core.model import DEFAULT_SATISFIED
from ptx.graph.plan import make_plan
from ptx.graph.units import PATH_ENDS, path_text
from ptx.journal.schema import SCHEMA_VERSION
from ptx.journal.store import DB_NAME, Journal
from ptx.outputs.report import figures, report_dict, report_json, result_from_dict

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_700_000_000.0


def done(task_id: str, start: float, end: float, status: Status = Status.SUCCEEDED) -> TaskResult:
    return TaskResult(
        id=task_id,
        title=f"task {task_id}",
        status=status,
        exit_code=0 if status is Status.SUCCEEDED else 1,
        attempts=1,
        started_at=T0 + start,
        ended_at=T0 + end,
        log=f"/logs/{task_id}.log",
        command=f"run {task_id}",
    )


def run_of(
    tasks: list[TaskResult], deps: dict[str, tuple[str, ...]], jobs: int, wall: float
) -> RunResult:
    return RunResult(
        run_id="20261125-000000-abcd",
        status="succeeded",
        jobs=jobs,
        started_at=T0,
        ended_at=T0 + wall,
        tasks=tuple(tasks),
        dependencies={item.id: deps.get(item.id, ()) for item in tasks},
    )


def eight_and_one() -> RunResult:
    """Eight 1 s tasks, then a 0.5 s task that depends on all of them, at -j 8."""
    firsts = [done(str(n), 0.0, 1.0) for n in range(1, 9)]
    last = done("9", 1.0, 1.5)
    return run_of([*firsts, last], {"9": tuple(str(n) for n in range(1, 9))}, 8, 1.5)


def test_figures_of_eight_parallel_tasks_and_their_dependent() -> None:
    numbers = figures(eight_and_one())
    assert numbers.work == pytest.approx(8.5)
    assert numbers.wall == pytest.approx(1.5)
    assert numbers.speedup == pytest.approx(8.5 / 1.5)
    assert numbers.efficiency == pytest.approx(8.5 / 1.5 / 8)
    assert numbers.critical_seconds == pytest.approx(1.5)
    assert len(numbers.critical_path) == 2
    assert numbers.critical_path[-1] == "9"
    assert numbers.bound == pytest.approx(1.5)  # max(L = 1.5, W/P = 8.5/8)
    assert numbers.optimality == pytest.approx(1.0)
    assert numbers.level_barrier == pytest.approx(1.5)


def test_a_short_chain_is_shown_whole_and_a_long_one_by_its_ends() -> None:
    ids = [str(number) for number in range(1, 2 * PATH_ENDS + 4)]
    whole = ids[: 2 * PATH_ENDS]
    assert path_text(whole, PATH_ENDS) == " -> ".join(whole)
    elided = [*ids[:PATH_ENDS], "... 3 more ...", *ids[-PATH_ENDS:]]
    assert path_text(ids, PATH_ENDS) == " -> ".join(elided)
    assert path_text(["1", "2"], PATH_ENDS, " → ") == "1 → 2"
    assert path_text([], PATH_ENDS) == ""


def test_a_long_critical_path_keeps_the_run_summary_to_one_line(tmp_path: Path) -> None:
    chain = [task(1, ["true"])] + [task(n, ["true"], n - 1) for n in range(2, 31)]
    root = make_project(tmp_path, chain)
    result = ptx(root, "run", "-q", "--report-json", "report.json")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("critical path")]
    assert line.startswith("critical path 1 -> 2 -> 3 -> 4 -> 5 -> ... 20 more ... -> 26 -> ")
    assert "-> 30 " in line
    report = json.loads((root / "report.json").read_text())
    assert report["critical_path"]["tasks"] == [str(n) for n in range(1, 31)]


def test_figures_count_a_task_the_dependencies_do_not_list() -> None:
    # A result whose dependencies leave out a task that waits for nothing (as a hand-made
    # report may): it still ran, so it is still work, a chain and part of a level.
    result = dataclasses.replace(
        run_of([done("1", 0.0, 2.0), done("2", 0.0, 1.0)], {}, 1, 3.0), dependencies={}
    )
    numbers = figures(result)
    assert numbers.critical_path == ("1",)
    assert numbers.critical_seconds == pytest.approx(2.0)
    assert numbers.level_barrier == pytest.approx(3.0)


def test_the_level_barrier_wall_differs_from_the_real_wall() -> None:
    """a (2 s) -> b (0.1 s) and c (0.1 s) -> d (2 s) on 2 workers: d starts as soon as c is
    done (wall 2.1 s), where level by level {a, c} then {b, d} takes 2 + 2 s."""
    tasks = [done("1", 0, 2), done("2", 2, 2.1), done("3", 0, 0.1), done("4", 0.1, 2.1)]
    result = run_of(tasks, {"2": ("1",), "4": ("3",)}, 2, 2.1)
    numbers = figures(result)
    assert numbers.level_barrier == pytest.approx(4.0)
    assert numbers.wall == pytest.approx(2.1)
    assert numbers.critical_path == ("1", "2")  # 3 -> 4 is as long: a tie goes to the lower id
    assert numbers.critical_seconds == pytest.approx(2.1)


def test_plan_and_report_name_the_same_critical_path_on_a_tie() -> None:
    """1 and 2 (1 s each) both before 3: two chains of 2 s, and both say `1 -> 3`."""
    tasks = tasklist(graph_task("1"), graph_task("2"), graph_task("3", "1", "2"))
    seconds = {"1": 1.0, "2": 1.0, "3": 1.0}
    planned = make_plan(tasks, jobs=2, satisfied=DEFAULT_SATISFIED, history=seconds)
    ran = run_of([done("1", 0, 1), done("2", 0, 1), done("3", 1, 2)], {"3": ("1", "2")}, 2, 2.0)
    numbers = figures(ran)
    assert planned.critical_path.tasks == numbers.critical_path == ("1", "3")
    assert planned.critical_path.seconds == numbers.critical_seconds == 2.0


def test_the_level_barrier_packs_a_wide_level_onto_the_workers() -> None:
    tasks = [done("1", 0, 3), done("2", 0, 1), done("3", 1, 2), done("4", 2, 3)]
    assert figures(run_of(tasks, {}, 2, 3)).level_barrier == pytest.approx(3.0)


def _text(result: RunResult, width: int = 80) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    for part in run_report(result, width=width):
        console.print(part, overflow="ignore", crop=False)
    return console.export_text()


def test_a_report_rebuilt_from_its_json_is_the_same_report() -> None:
    failed = done("10", 0.25, 0.75, Status.FAILED)
    skipped = TaskResult(id="11", title="t", status=Status.SKIPPED, reason="dependency 10 failed")
    original = run_of([*eight_and_one().tasks, failed, skipped], {"11": ("10",)}, 8, 1.5)
    rebuilt = result_from_dict(json.loads(report_json(original)))
    assert report_dict(rebuilt) == report_dict(original)
    assert _text(rebuilt) == _text(original)
    assert rebuilt.tasks == original.tasks


def test_a_memory_exceeded_task_gets_a_failed_block() -> None:
    greedy = done("10", 0.25, 0.75, Status.MEMORY_EXCEEDED)
    text = _text(run_of([*eight_and_one().tasks, greedy], {}, 8, 1.5))
    assert "FAILED: 10 memory-exceeded (exit 1)" in text


def test_report_json_carries_every_figure_and_the_graph() -> None:
    data = report_dict(eight_and_one())
    assert data["speedup"] == pytest.approx(8.5 / 1.5, abs=1e-3)
    assert data["optimality"] == pytest.approx(1.0)
    assert data["critical_path"]["seconds"] == pytest.approx(1.5)
    assert data["tasks"][8]["dependencies"] == [str(n) for n in range(1, 9)]
    assert data["tasks"][0]["command"] == "run 1"


# --- the Gantt timeline -----------------------------------------------------------------------


def test_gantt_draws_one_row_per_task_placed_in_time() -> None:
    lines = gantt_lines(eight_and_one(), width=80)
    assert "per task" in lines[0]
    rows = lines[1:-2]
    assert len(rows) == 9
    assert all(len(line) <= 80 for line in lines)
    bars = {row.split("|")[0].strip(): row.split("|")[1] for row in rows}
    first, last = bars["1"], bars["9"]
    assert len(first) == len(last) == 80 - 1 - 3
    assert first.rstrip() == first.rstrip(" ").replace(" ", "")  # starts at the left edge
    assert first.count("#") == pytest.approx(len(first) * 2 / 3, abs=1)
    assert last.lstrip().count("#") == pytest.approx(len(last) / 3, abs=1)
    assert last.startswith(" " * (len(first.rstrip()) - 1))
    assert lines[-2].strip().endswith("1.5 s")
    assert lines[-1].strip() == "# ran"  # only what the timeline draws


def test_gantt_marks_failures_and_uses_worker_slots_for_many_tasks() -> None:
    count = PER_TASK_LIMIT + 10
    tasks = [done(str(n), n // 4, n // 4 + 1) for n in range(1, count)]
    tasks.append(done(str(count), 0, 0.5, Status.FAILED))
    result = run_of(tasks, {}, 4, count // 4 + 1)
    lines = gantt_lines(result, width=60)
    assert "per worker slot" in lines[0]
    rows = lines[1:-2]
    assert [row.split("|")[0].strip() for row in rows] == [f"w{n}" for n in range(1, len(rows) + 1)]
    assert len(rows) <= 5  # four workers, and a slot at most for the overlap at the edges
    assert any("x" in row for row in rows)
    assert any("=" in row for row in rows)  # back-to-back tasks alternate their mark
    assert all(len(line) <= 60 for line in lines)


def test_gantt_of_many_overlapping_tasks_says_it_draws_worker_slots() -> None:
    """As many slots as tasks once every task overlaps every other: still slots, not tasks."""
    count = PER_TASK_LIMIT + 1
    result = run_of([done(str(n), 0, 1) for n in range(1, count + 1)], {}, count, 1)
    lines = gantt_lines(result, width=80)
    assert "per worker slot" in lines[0]
    assert lines[1].split("|")[0].strip() == "w1"


def test_gantt_of_a_run_where_nothing_ran_is_empty() -> None:
    skipped = TaskResult(id="1", title="t", status=Status.NOT_RUN)
    assert gantt_lines(run_of([skipped], {}, 1, 0.1)) == []


# --- the journal keeps the report; `ptx report` and `ptx runs` ---------------------------------


def test_ptx_report_prints_what_the_run_printed(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        [task(1, "echo one"), task(2, "echo two; exit 3", 1), task(3, "true", 2), task(4, "true")],
    )
    ran = ptx(root, "run", "-j", "2", "--report-json", "out.json")
    assert ran.returncode == 1
    again = ptx(root, "report")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ran.stdout
    assert "FAILED: 2 failed (exit 3)" in again.stdout
    assert "timeline" in again.stdout
    as_json = ptx(root, "report", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stdout == (root / "out.json").read_text()
    run_id = json.loads(as_json.stdout)["run_id"]
    by_id = ptx(root, "report", run_id)
    assert (by_id.returncode, by_id.stdout) == (0, ran.stdout)


def test_ptx_runs_lists_runs_newest_first(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true"), task(2, "true")])
    first = ptx(root, "run", "--report-json", "a.json")
    second = ptx(root, "run", "--report-json", "b.json")
    assert (first.returncode, second.returncode) == (0, 0)
    listed = ptx(root, "runs")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["run", "started", "status", "tasks", "wall", "speedup"]
    ids = [json.loads((root / name).read_text())["run_id"] for name in ("b.json", "a.json")]
    assert [line.split()[0] for line in lines[1:]] == ids
    assert lines[1].split()[3:5] == ["succeeded", "2"]
    data = json.loads(ptx(root, "runs", "--json").stdout)
    assert [entry["run_id"] for entry in data] == ids


def test_ptx_report_without_runs_or_with_an_unknown_run_exits_2(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    nothing = ptx(root, "report")
    assert (nothing.returncode, nothing.stderr) == (2, "ptx: error: no runs recorded in .ptx\n")
    assert ptx(root, "run").returncode == 0
    unknown = ptx(root, "report", "20000101-000000-0000")
    assert (unknown.returncode, unknown.stderr) == (2, "ptx: error: no run 20000101-000000-0000\n")


def test_a_version_1_journal_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    state = tmp_path / ".ptx"
    with Journal.open(state) as journal:
        run_id = journal.start_run(tag="master", jobs=1, tasks_file="t.json", argv=["ptx"])
    with sqlite3.connect(state / DB_NAME) as db:  # what a version-1 ptx left behind
        drop_schema_6(db)
        for column in ("report", "units", "options"):
            db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        drop_schema_5(db)
        db.execute("PRAGMA user_version = 1")
    db.close()
    with Journal.open(state) as journal:
        assert journal.run(run_id) is not None
        assert journal.report(run_id) is None
        journal.save_report(run_id, '{"kept": true}')
        assert journal.report(run_id) == '{"kept": true}'
    with sqlite3.connect(state / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    db.close()


def test_the_report_of_a_run_is_the_same_bytes_as_the_report_json_file(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true", title="Ünïcode")])
    assert ptx(root, "run", "--report-json", "r.json").returncode == 0
    written = (root / "r.json").read_text()
    printed = ptx(root, "report", "--json")
    assert printed.returncode == 0
    assert printed.stdout == written
    with Journal.open(root / ".ptx") as journal:
        last = journal.last_run()
        assert last is not None
        kept = journal.report(last.run_id)
    assert kept is not None
    assert "\n" not in kept  # kept on one line; printed indented
    assert json.loads(kept) == json.loads(written)


def test_a_report_kept_indented_by_an_older_ptx_prints_the_same(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    assert ptx(root, "run", "--report-json", "r.json").returncode == 0
    written = (root / "r.json").read_text()
    with Journal.open(root / ".ptx") as journal:
        last = journal.last_run()
        assert last is not None
        journal.save_report(last.run_id, written)
    assert ptx(root, "report", "--json").stdout == written
