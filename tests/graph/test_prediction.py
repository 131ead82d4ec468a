"""The plan's prediction is the runner's schedule: same queue, same ranking, same order."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import groupby
from typing import TYPE_CHECKING

from ptx.core.model import Task, TaskList, TaskOptions
from ptx.graph import plan, schedule

if TYPE_CHECKING:
    from pathlib import Path

# Steps and seconds disagree: B-D-E is the longest chain in steps, A-C in seconds, so a
# step-counting scheduler (ninja) would start B first and finish later.
DURATIONS = {"1": 1.2, "2": 0.3, "3": 0.3, "4": 0.3, "5": 0.3, "6": 0.6, "7": 0.3}
DEPENDENCIES = {"1": (), "2": (), "3": ("1",), "4": ("2",), "5": ("4",), "6": (), "7": ("5",)}


def _tasks() -> TaskList:
    return TaskList(
        tag="master",
        tasks=tuple(
            Task(
                id=unit,
                token=int(unit),
                parent=None,
                title=f"task {unit}",
                dependencies=DEPENDENCIES[unit],
                options=TaskOptions(command=("sleep", str(seconds)), estimate_seconds=seconds),
            )
            for unit, seconds in DURATIONS.items()
        ),
    )


def _write_project(root: Path) -> None:
    tasks = [
        {
            "id": int(unit),
            "title": f"task {unit}",
            "status": "pending",
            "dependencies": [int(dep) for dep in DEPENDENCIES[unit]],
            "metadata": {"ptx": {"command": ["sleep", str(seconds)], "estimate_seconds": seconds}},
        }
        for unit, seconds in DURATIONS.items()
    ]
    path = root / ".taskmaster" / "tasks" / "tasks.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"master": {"tasks": tasks}}))


def test_the_plan_predicts_the_seconds_critical_path_not_the_steps_one() -> None:
    predicted = plan.make_plan(_tasks(), jobs=2, satisfied=frozenset({"done"}))
    assert predicted.critical_path.tasks == ("1", "3")
    assert predicted.predicted is not None
    # By hand: 1 and 2 start; 4 at 0.3; at 0.6 the tie between 5 and 6 (0.6 s of path each)
    # goes to the longer task 6; 3 and 5 at 1.2, 7 at 1.5, done at 1.8. No order does better:
    # W / 2 = 1.65 and tasks come in 0.3 s pieces.
    assert predicted.predicted.makespan_seconds == 1.8


def test_a_real_run_starts_tasks_in_the_order_the_plan_simulated(tmp_path: Path) -> None:
    predicted = plan.make_plan(_tasks(), jobs=2, satisfied=frozenset({"done"}))
    simulated = schedule.simulate(predicted.work, DURATIONS, 2)
    expected = [
        {slot.unit for slot in group}
        for _, group in groupby(sorted(simulated.slots, key=lambda s: s.start), lambda s: s.start)
    ]
    _write_project(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ptx", "run", "-j", "2", "-q", "--report-json", "report.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    started = sorted(report["tasks"], key=lambda task: task["started_at"])
    order = [task["id"] for task in started]
    position = 0
    for group in expected:  # tasks the simulation starts together may start in either order
        assert set(order[position : position + len(group)]) == group, (order, expected)
        position += len(group)
    assert order[0] == "1"  # the long task goes first although "2" heads the longer chain
