"""`ptx plan` agrees with `ptx run`: validation errors fail it, broken work is never ready."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from projects import make_project, ptx, task

if TYPE_CHECKING:
    from pathlib import Path


def test_plan_reports_the_errors_run_refuses_and_exits_1(tmp_path: Path) -> None:
    tasks = [task(1, "true", 99), task(2, "true", 1), task(3, "true", 4), task(4, "true", 3)]
    root = make_project(tmp_path, [*tasks, task(5, "true")])
    planned = ptx(root, "plan", "--json")
    assert planned.returncode == 1
    assert "PTX102" in planned.stderr
    assert "PTX101" in planned.stderr
    data = json.loads(planned.stdout)
    assert data["groups"] == [["5"]]  # 1 names a task that does not exist: never ready
    assert {entry["id"]: entry["reason"] for entry in data["blocked"]} == {
        "1": "dependency 99 does not exist",
        "2": "waits for 1 (missing dependency 99)",
        "3": "in dependency cycle 3 -> 4 -> 3",
        "4": "in dependency cycle 3 -> 4 -> 3",
    }
    ran = ptx(root, "run")
    assert ran.returncode == 1  # the same errors make run refuse
    assert "PTX102" in ran.stderr


def test_plan_all_tags_plans_every_tag(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true"), task(2, "true", 1)])
    tasks_file = root / ".taskmaster" / "tasks" / "tasks.json"
    data = json.loads(tasks_file.read_text())
    data["feature"] = {"tasks": [task(7, "true"), task(8, "true")]}
    tasks_file.write_text(json.dumps(data, indent=2))
    planned = ptx(root, "plan", "--all-tags", "--json")
    assert planned.returncode == 0, planned.stderr
    plans = json.loads(planned.stdout)
    assert [(p["tag"], p["groups"]) for p in plans] == [
        ("master", [["1"], ["2"]]),
        ("feature", [["7", "8"]]),
    ]
    text = ptx(root, "plan", "--all-tags")
    assert "tag master: 2 tasks" in text.stdout
    assert "tag feature: 2 tasks" in text.stdout
    assert ptx(root, "plan", "--all-tags", "--tag", "master").returncode == 2
