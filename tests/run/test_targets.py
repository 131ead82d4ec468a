"""Targets that cannot run, and blocked tasks in the report of a plain run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from projects import lines, make_project, ptx, q, read_report, task

if TYPE_CHECKING:
    from pathlib import Path


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """14 waits for 12 (runnable) and 13 (deferred); 11 is independent."""
    ran = tmp_path / "ran"
    tasks = [
        task(11, f"echo 11 >> {q(ran)}"),
        task(12, f"echo 12 >> {q(ran)}"),
        task(13, f"echo 13 >> {q(ran)}", status="deferred"),
        task(14, f"echo 14 >> {q(ran)}", 12, 13),
        task(15, f"echo 15 >> {q(ran)}", 11),
    ]
    return make_project(tmp_path, tasks), ran


def test_a_target_waiting_on_a_deferred_task_fails_and_starts_nothing(tmp_path: Path) -> None:
    root, ran = _project(tmp_path)
    result = ptx(root, "run", "14")
    assert result.returncode == 1
    assert "cannot run target 14: waits for 13 (deferred)" in result.stderr
    assert lines(ran) == []  # 12 serves only 14, which cannot run: not started
    assert json.loads(ptx(root, "runs", "--json").stdout) == []  # no run was recorded

    dry = ptx(root, "run", "14", "-n")
    assert dry.returncode == 1
    assert "cannot run target 14: waits for 13 (deferred)" in dry.stderr


def test_a_target_that_cannot_run_fails_the_run_of_those_that_can(tmp_path: Path) -> None:
    root, ran = _project(tmp_path)
    result = ptx(root, "run", "15", "14", "--report-json", "report.json")
    assert result.returncode == 1
    assert sorted(lines(ran)) == ["11", "15"]  # 15 and what it needs; nothing for 14
    assert "cannot run target 14: waits for 13 (deferred)" in result.stdout
    report = read_report(root / "report.json")
    assert report["status"] == "failed"
    assert report["blocked"] == [
        {"id": "13", "reason": "status is deferred", "target": False},
        {"id": "14", "reason": "waits for 13 (deferred)", "target": True},
    ]


def test_a_plain_run_lists_blocked_tasks_without_failing(tmp_path: Path) -> None:
    root, ran = _project(tmp_path)
    result = ptx(root, "run", "--report-json", "report.json")
    assert result.returncode == 0, result.stderr
    assert sorted(lines(ran)) == ["11", "12", "15"]
    assert "blocked 13: status is deferred" in result.stdout
    assert "blocked 14: waits for 13 (deferred)" in result.stdout
    report = read_report(root / "report.json")
    assert report["status"] == "succeeded"
    assert [entry["id"] for entry in report["blocked"]] == ["13", "14"]
    again = ptx(root, "report", "--json")
    assert json.loads(again.stdout)["blocked"] == report["blocked"]


def test_review_is_not_run_unless_the_config_says_so(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    tasks = [task(1, f"echo 1 >> {q(ran)}", status="review"), task(2, f"echo 2 >> {q(ran)}")]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    assert lines(ran) == ["2"]
    assert "blocked 1: status is review" in result.stdout

    other = make_project(
        tmp_path / "other", tasks, held_statuses=["deferred", "blocked", "cancelled"]
    )
    assert ptx(other, "run").returncode == 0
    assert sorted(lines(ran)) == ["1", "2", "2"]
