"""Small things users noticed: plurals, an empty run list, one wall everywhere, a critical path
of tasks that ran, a timeline legend that explains what it draws, sizes as written, counts
that agree between validate and plan, help that names only options a command has."""

from __future__ import annotations

import json
import re
import shutil
from typing import TYPE_CHECKING

import pytest
from builders import REPO
from projects import make_project, ptx, read_report, task

from ptx.journal.store import Journal

if TYPE_CHECKING:
    from pathlib import Path


def test_a_count_of_one_is_singular(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    result = ptx(root, "run", "-j", "1")
    assert result.returncode == 0, result.stderr
    assert re.search(r"run \S+: 1 task, -j 1,", result.stderr)
    assert "1 task: 1 succeeded\n" in result.stdout
    assert " on 1 worker (" in result.stdout
    assert "dry run: 1 task with -j 1," in ptx(root, "run", "-n", "-j", "1").stderr
    broken = make_project(tmp_path / "broken", [task(1, "true", 9), task(2, None)])
    refused = ptx(broken, "run")
    assert refused.returncode == 1
    assert refused.stderr.endswith(
        "ptx: error: 1 validation error: fix them or run `ptx validate`\n"
    )
    (broken / ".taskmaster" / "tasks" / "tasks.json").write_text(
        json.dumps({"master": {"tasks": [task(2, None)]}})
    )
    assert "ptx: error: no command for task 2: " in ptx(broken, "run").stderr


def test_runs_before_the_first_run_is_not_an_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    listed = ptx(root, "runs")
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "ptx: no runs yet\n")
    as_json = ptx(root, "runs", "--json")
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])


def test_runs_and_report_show_the_same_wall(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    assert ptx(root, "run").returncode == 0
    with Journal.open(root / ".ptx") as journal:
        [info] = journal.runs()
        stored = json.loads(journal.report(info.run_id) or "{}")
        # A wall whose rounded and unrounded forms print differently, past a minute.
        stored["ended_at"] = stored["started_at"] + 75.04951
        journal.save_report(info.run_id, json.dumps(stored))
    [row] = ptx(root, "runs").stdout.splitlines()[1:]
    report = ptx(root, "report").stdout
    wall = re.search(r"^wall (.+?), work", report, re.MULTILINE)
    assert wall is not None
    assert wall[1] == "1 min 15.0 s"
    assert f"  {wall[1]}  " in row


def test_the_critical_path_holds_only_tasks_that_ran(tmp_path: Path) -> None:
    tasks = [task(1, "sleep 0.2; exit 3"), task(2, "true", 1), task(3, "true", 2)]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "--report-json", "r.json")
    assert result.returncode == 1
    assert read_report(root / "r.json")["critical_path"]["tasks"] == ["1"]
    assert "critical path 1 " in result.stdout


def test_the_timeline_draws_retry_waits_and_its_legend_explains_every_mark(
    tmp_path: Path,
) -> None:
    flaky = "if [ -e tried ]; then sleep 0.4; else touch tried; sleep 0.2; exit 1; fi"
    root = make_project(tmp_path, [task(1, flaky)], retry_backoff_seconds=1.0)
    result = ptx(root, "run", "--retries", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [header] = [n for n, line in enumerate(lines) if line.startswith("timeline per task")]
    bar = lines[header + 1].split("|")[1]
    assert re.fullmatch(r" *x+\.+#+ *", bar), bar  # failed, waited, ran: never drawn as running
    legend = lines[header + 3].strip()
    assert legend == "# ran, x failed, . retry wait"
    explained = {part.split()[0] for part in legend.split(", ")}
    assert set(bar) - {" "} <= explained


@pytest.mark.parametrize(("written", "shown"), [(None, "512Mi"), ("2G", "2G"), ("3Gi", "3Gi")])
def test_config_shows_sizes_as_written(tmp_path: Path, written: str | None, shown: str) -> None:
    limits = {} if written is None else {"resource_limits": {"memory_per_task": written}}
    root = make_project(tmp_path, [task(1, "true")], **limits)
    out = ptx(root, "config").stdout
    [line] = [line for line in out.splitlines() if "memory_per_task" in line]
    assert line.split()[:3] == ["resource_limits.memory_per_task", "=", shown]


def test_validate_counts_tasks_as_plan_does(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples" / "demo" / ".taskmaster", tmp_path / ".taskmaster")
    validated = ptx(tmp_path, "validate")
    assert validated.stderr.strip() == "0 errors, 0 warnings in 13 tasks and 2 subtasks"
    header = ptx(tmp_path, "plan").stdout.splitlines()[0]
    counts = re.fullmatch(
        r"tag master: (\d+) tasks to run in \d+ parallel groups, (\d+) already done, "
        r"(\d+) blocked",
        header,
    )
    assert counts is not None, header
    assert sum(int(number) for number in counts.groups()) == 13


@pytest.mark.parametrize("command", ["runs", "config"])
def test_help_names_only_options_the_command_has(tmp_path: Path, command: str) -> None:
    shown = ptx(tmp_path, command, "--help").stdout
    assert "--json" in shown
    assert "--format" not in shown
