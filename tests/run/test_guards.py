"""The machine guards in real runs: they never quietly make a parallel run sequential, each can
be switched off, load throttling is asked for, and every hold is reported."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from builders import SCRIPTS
from projects import make_project, ptx, read_report, task
from test_run_safety import intervals, peak, timed

from ptx.run.jobs import available_cores

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BURN_SECONDS = "60"  # a burner's own bound, should its teardown never come


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Every core ptx may use kept busy by programs that are not ptx's."""
    burners = [
        subprocess.Popen([sys.executable, str(SCRIPTS / "burn_cpu.py"), BURN_SECONDS])
        for _ in range(available_cores() + 1)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def fan_out(times: Path, seconds: float = 1.0) -> list[dict[str, object]]:
    """Task 1, then tasks 2-4 on it: they become ready once the guards have read the machine."""
    return [
        task(1, "sleep 0.6"),
        *(task(n, timed(times, f"t{n}", seconds), 1) for n in (2, 3, 4)),
    ]


def fan_spans(times: Path) -> list[tuple[float, float]]:
    spans = intervals(times)
    assert set(spans) == {"t2", "t3", "t4"}
    return list(spans.values())


@pytest.mark.usefixtures("busy_machine")
def test_a_busy_machine_does_not_make_the_run_sequential(tmp_path: Path) -> None:
    times = tmp_path / "times"
    root = make_project(tmp_path, fan_out(times))
    result = ptx(root, "run", "-j", "3", "--report-json", "r.json")
    assert result.returncode == 0, result.stderr
    assert peak(fan_spans(times)) == 3  # the three ran side by side
    assert read_report(root / "r.json")["held_seconds"] == {}
    assert "starts held" not in result.stderr


def test_max_resource_utilization_one_holds_nothing(tmp_path: Path) -> None:
    times = tmp_path / "times"
    # No machine has a tebibyte free per task: only a guard that is off lets them start.
    root = make_project(
        tmp_path,
        fan_out(times),
        safety_thresholds={"max_resource_utilization": 1.0},
        resource_limits={"memory_per_task": "1Ti"},
    )
    result = ptx(root, "run", "-j", "3", "--report-json", "r.json")
    assert result.returncode == 0, result.stderr
    assert peak(fan_spans(times)) == 3
    assert read_report(root / "r.json")["held_seconds"] == {}


def test_a_guard_that_holds_starts_is_named_with_how_long_it_held(tmp_path: Path) -> None:
    times = tmp_path / "times"
    root = make_project(tmp_path, fan_out(times, 0.4), resource_limits={"memory_per_task": "1Ti"})
    result = ptx(root, "run", "-j", "3", "--report-json", "r.json")
    assert result.returncode == 0, result.stderr
    assert peak(fan_spans(times)) == 1
    spans = sorted(fan_spans(times))
    held = read_report(root / "r.json")["held_seconds"]
    assert list(held) == ["memory"]
    # Held from the second task's start until the third's, at the least.
    assert held["memory"] >= spans[2][0] - spans[1][0] - 0.05
    assert "starts held by memory" in result.stderr
    assert "starts no longer held" in result.stderr
    assert "starts held by the machine guards: memory " in result.stdout


@pytest.mark.parametrize(
    ("args", "config"),
    [(("--load-average", "0"), {}), ((), {"safety_thresholds": {"max_load_average": 0}})],
)
def test_load_average_throttling_holds_starts_only_when_asked_for(
    tmp_path: Path, args: tuple[str, ...], config: dict[str, object]
) -> None:
    times = tmp_path / "times"
    root = make_project(tmp_path, fan_out(times, 0.4), **config)
    result = ptx(root, "run", "-j", "3", *args, "--report-json", "r.json")
    assert result.returncode == 0, result.stderr
    assert peak(fan_spans(times)) == 1  # no load is below 0: one task at a time
    assert list(read_report(root / "r.json")["held_seconds"]) == ["load average"]
    waiting = [line for line in result.stderr.splitlines() if " waiting " in line]
    assert waiting
    assert all(line.endswith(": for load average") for line in waiting), waiting


# --- -j: what plan predicts with is what run uses ----------------------------------------------


def test_plan_predicts_with_the_jobs_run_would_use_and_says_why(tmp_path: Path) -> None:
    cores = available_cores()
    tasks = [task(n, "true", ptx_estimate_seconds=1) for n in range(1, 80)]
    limits = {"cpu_per_task": 1, "max_concurrent_tasks": 100}
    root = make_project(tmp_path, tasks, max_concurrency=64, resource_limits=limits)
    result = ptx(root, "plan", "--json")
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)
    word = "core" if cores == 1 else "cores"
    why = (
        f"max_concurrency 64 lowered to {cores}: cpu_per_task 1 allows {cores} on {cores} "
        f"{word} (an explicit -j is not)"
    )
    assert (planned["jobs"], planned["jobs_reason"]) == (cores, why)
    assert why in ptx(root, "plan").stdout.splitlines()
    dry = ptx(root, "run", "-n")
    assert f"dry run: 79 tasks with -j {cores}," in dry.stderr
    explicit = json.loads(ptx(root, "plan", "-j", "64", "--json").stdout)
    assert explicit["jobs"] == 64
    assert explicit["jobs_reason"].startswith("-j 64 runs as asked, though cpu_per_task 1 allows")


def test_load_average_from_the_environment_is_shown_and_checked(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "touch ran")])
    shown = ptx(root, "config", environ={"PTX_LOAD_AVERAGE": "2.5"}).stdout
    [line] = [line for line in shown.splitlines() if "max_load_average" in line]
    assert line.split() == ["safety_thresholds.max_load_average", "=", "2.5", "(PTX_LOAD_AVERAGE)"]
    refused = ptx(root, "run", environ={"PTX_LOAD_AVERAGE": "lots"})
    assert (refused.returncode, refused.stderr) == (
        2,
        'ptx: error: PTX_LOAD_AVERAGE: must be a number >= 0, got "lots"\n',
    )
    assert not (root / "ran").exists()
