"""Resources and safety in real runs: real ptx processes, real tasks, times they record."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from builders import SCRIPTS
from projects import make_project, ptx, python, q, read_report, statuses, task
from typer.testing import CliRunner

from ptx.cli.app import app

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


# --- times recorded by the tasks themselves ---------------------------------------------------


def timed(times: Path, name: str, seconds: float, *, code: int = 0) -> str:
    """A command that appends `start NAME T` and `end NAME T` (wall clock) around a sleep."""
    stamp = f"{q(sys.executable)} {q(SCRIPTS / 'wall_clock.py')}"
    return (
        f'echo "start {name} $({stamp})" >> {q(times)}; sleep {seconds}; '
        f'echo "end {name} $({stamp})" >> {q(times)}; exit {code}'
    )


def intervals(times: Path) -> dict[str, tuple[float, float]]:
    starts: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for line in times.read_text().splitlines():
        kind, name, at = line.split()
        if kind == "start":
            starts[name] = float(at)
        else:
            spans[name] = (starts[name], float(at))
    return spans


def peak(spans: Sequence[tuple[float, float]], weights: Sequence[int] | None = None) -> int:
    """The most weight running at any one instant (an end before a start at the same time)."""
    weights = weights or [1] * len(spans)
    moments = sorted(
        [(start, 1, weight) for (start, _), weight in zip(spans, weights, strict=True)]
        + [(end, 0, -weight) for (_, end), weight in zip(spans, weights, strict=True)]
    )
    level = highest = 0
    for _, _, change in moments:
        level += change
        highest = max(highest, level)
    return highest


# --- named resources -------------------------------------------------------------------------


def test_capacities_are_never_exceeded_while_free_slots_keep_working(tmp_path: Path) -> None:
    times = tmp_path / "times"
    wants = {
        **{f"db{i}": {"db": 1} for i in range(3)},
        **{f"gpu{i}": {"gpu": 1} for i in range(3)},
        "big": {"gpu": 2},
        "both": {"db": 1, "gpu": 1},
        **{f"free{i}": {} for i in range(3)},
    }
    tasks = [
        task(number, timed(times, name, 0.3), ptx_resources=request or None)
        for number, (name, request) in enumerate(wants.items(), start=1)
    ]
    root = make_project(tmp_path, tasks, resources={"db": 1, "gpu": 2})
    result = ptx(root, "run", "-j", "6")
    assert result.returncode == 0, result.stderr
    spans = intervals(times)
    assert set(spans) == set(wants)
    for resource, capacity in (("db", 1), ("gpu", 2)):
        names = [name for name, request in wants.items() if resource in request]
        used = peak([spans[name] for name in names], [wants[name][resource] for name in names])
        assert used == capacity
    assert peak(list(spans.values())) >= 4  # tasks without resources used the free slots
    assert "waiting" in result.stderr
    assert "resource db" in result.stderr or "resource gpu" in result.stderr


def test_a_request_above_capacity_or_for_an_unknown_resource_runs_nothing(tmp_path: Path) -> None:
    tasks = [
        task(1, "touch one", ptx_resources={"db": 2}),
        task(2, "touch two", ptx_resources={"tpu": 1}),
    ]
    root = make_project(tmp_path, tasks, resources={"db": 1})
    result = ptx(root, "run")
    assert result.returncode == 1
    assert "PTX122" in result.stderr
    assert "PTX121" in result.stderr
    assert not (root / "one").exists()
    assert not (root / "two").exists()


# --- breakers and the fall-back to sequential ------------------------------------------------


def test_an_open_breaker_stops_its_tasks_and_they_end_skipped(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    failing = f"echo x >> {q(counter)}; exit 1"
    tasks = [task(n, failing, ptx_resources={"db": 1}) for n in range(1, 6)]
    tasks += [task(6, "true", 5), task(7, "true")]
    root = make_project(
        tmp_path,
        tasks,
        resources={"db": 1},
        circuit_breaker={"failure_threshold": 2, "timeout_seconds": 600},
        safety_thresholds={"max_failure_rate": 1},
    )
    result = ptx(root, "run", "-j", "3", "--report-json", "r.json")
    assert result.returncode == 1
    assert len(counter.read_text().split()) == 2  # the breaker opened after two failures
    report = read_report(root / "r.json")
    by_id = {entry["id"]: entry for entry in report["tasks"]}
    skipped = [entry for entry in report["tasks"] if entry["status"] == "skipped"]
    assert len(skipped) == 4  # three behind the breaker, and task 6 behind task 5
    assert sum(entry["reason"] == "breaker db is open" for entry in skipped) == 3
    assert by_id["7"]["status"] == "succeeded"
    # Task 5 goes first (it has a dependent), fails, and takes task 6 with it.
    assert (by_id["5"]["status"], by_id["6"]["reason"]) == ("failed", "dependency 5 failed")
    [change] = report["breakers"]
    assert (change["resource"], change["state"]) == ("db", "open")
    assert change["reason"] == "2 failures in a row"
    assert "breaker db open" in result.stderr


def test_many_failures_fall_back_to_one_task_at_a_time(tmp_path: Path) -> None:
    times = tmp_path / "times"
    tasks = [task(n, timed(times, f"t{n}", 0.2, code=1)) for n in range(1, 13)]
    thresholds = {"max_failure_rate": 0.1, "failure_rate_min_tasks": 5}
    root = make_project(tmp_path, tasks, safety_thresholds=thresholds)
    result = ptx(root, "run", "-j", "4", "--report-json", "r.json")
    assert result.returncode == 1
    [told] = [line for line in result.stderr.splitlines() if "sequential" in line]
    assert "warning: fell back to sequential, one task at a time: 5 of 5 finished" in told
    report = read_report(root / "r.json")
    degraded = report["degraded"]
    assert degraded["reason"].startswith("5 of 5 finished tasks failed (100%)")
    spans = intervals(times)
    assert len(spans) == 12  # every task still ran
    later = [span for span in spans.values() if span[0] > degraded["at"]]
    assert len(later) >= 4
    for start, _ in later:  # nothing else ran when one of them started
        assert not [s for s in spans.values() if s[0] < start < s[1]]
    assert peak(later) == 1
    assert peak(list(spans.values())) > 1  # it did run in parallel before
    [said] = [line for line in result.stdout.splitlines() if "sequential" in line]
    assert said.startswith("fell back to sequential, one task at a time: 5 of 5 finished tasks")
    assert said.endswith(" s into the run)")


def test_one_failure_among_a_few_finished_tasks_keeps_the_run_parallel(tmp_path: Path) -> None:
    times = tmp_path / "times"
    tasks = [task(1, "exit 1"), *(task(n, timed(times, f"t{n}", 0.5)) for n in range(2, 9))]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "-j", "4", "--report-json", "r.json")
    assert result.returncode == 1
    assert "sequential" not in result.stderr + result.stdout
    assert read_report(root / "r.json")["degraded"] is None
    assert peak(list(intervals(times).values())) == 4  # like make -k, it keeps going as it was


def test_enabled_false_runs_one_task_at_a_time_from_the_start(tmp_path: Path) -> None:
    times = tmp_path / "times"
    tasks = [task(n, timed(times, f"t{n}", 0.1)) for n in range(1, 5)]
    root = make_project(tmp_path, tasks, enabled=False)
    result = ptx(root, "run", "-j", "4")
    assert result.returncode == 0, result.stderr
    assert peak(list(intervals(times).values())) == 1


# --- the machine, through the probe seam -----------------------------------------------------


def probed_run(
    root: Path,
    reading: Mapping[str, float] | None = None,
    *,
    jobs: int | None = 3,
    cores: int = 8,
) -> str:
    """A run on fixed readings: "used", "available", "load", and "limit" (--load-average)."""
    values = {"used": 0.3, "available": 8 * 2**30, "load": 0.1, **(reading or {})}
    limit = "-" if "limit" not in values else str(values["limit"])
    figures = (str(values["used"]), str(int(values["available"])), str(values["load"]), limit)
    result = python(root, "probed_run.py", "-" if jobs is None else str(jobs), str(cores), *figures)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        ({"used": 0.95}, "memory"),
        ({"available": 2**20}, "memory"),
        ({"load": 9.0, "limit": 4.0}, "load average"),
    ],
)
def test_a_machine_short_of_memory_or_over_the_asked_load_runs_one_task_at_a_time(
    tmp_path: Path, reading: dict[str, float], reason: str
) -> None:
    times = tmp_path / "times"
    root = make_project(tmp_path, [task(n, timed(times, f"t{n}", 0.7)) for n in range(1, 4)])
    stderr = probed_run(root, reading)
    assert peak(list(intervals(times).values())) == 1
    waiting = [line for line in stderr.splitlines() if "waiting" in line]
    assert waiting
    assert all(line.endswith(reason) for line in waiting), waiting


@pytest.mark.parametrize("reading", [{}, {"load": 9.0}])
def test_a_calm_machine_or_one_loaded_by_others_runs_in_parallel(
    tmp_path: Path, reading: dict[str, float]
) -> None:
    times = tmp_path / "times"
    root = make_project(tmp_path, [task(n, timed(times, f"t{n}", 0.3)) for n in range(1, 4)])
    probed_run(root, reading)
    assert peak(list(intervals(times).values())) == 3


def test_an_explicit_jobs_above_the_cpu_cap_runs_as_asked_with_a_notice(tmp_path: Path) -> None:
    times = tmp_path / "times"
    tasks = [task(n, timed(times, f"t{n}", 0.4)) for n in range(1, 5)]
    root = make_project(tmp_path, tasks, resource_limits={"cpu_per_task": 1})
    stderr = probed_run(root, jobs=4, cores=2)
    [notice] = [line for line in stderr.splitlines() if "cpu_per_task" in line]
    assert notice.endswith("-j 4 runs as asked, though cpu_per_task 1 allows 2 on 2 cores")
    assert peak(list(intervals(times).values())) == 4


def test_cpu_per_task_caps_the_default_jobs_without_a_word(tmp_path: Path) -> None:
    times = tmp_path / "times"
    tasks = [task(n, timed(times, f"t{n}", 0.4)) for n in range(1, 5)]
    root = make_project(tmp_path, tasks, resource_limits={"cpu_per_task": 1})
    stderr = probed_run(root, jobs=None, cores=2)
    assert "lowered" not in stderr
    assert "as asked" not in stderr
    assert peak(list(intervals(times).values())) == 2


def test_a_task_over_its_memory_limit_is_killed(tmp_path: Path) -> None:
    hog = f"{q(sys.executable)} {q(SCRIPTS / 'memory_hog.py')}"
    tasks = [task(1, hog, ptx_memory_limit="50Mi"), task(2, "true", 1), task(3, "true")]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "--report-json", "r.json")
    assert result.returncode == 1
    assert statuses(root) == {"1": "memory-exceeded", "3": "succeeded"}
    report = read_report(root / "r.json")
    first = report["tasks"][0]
    assert first["status"] == "memory-exceeded"
    assert first["duration_seconds"] < 15
    assert report["tasks"][1]["status"] == "skipped"
    assert "over the limit of 50 MiB" in Path(first["log"]).read_text()


# --- ptx config --------------------------------------------------------------------------------


def invoke(root: Path, *args: str, **environ: str) -> tuple[int, str, str]:
    old = Path.cwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(app, list(args), env=environ, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def test_ptx_config_prints_each_value_and_where_it_came_from(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")], retries=2, resources={"db": 1})
    code, out, _ = invoke(root, "config", PTX_JOBS="3", PTX_TIMEOUT="")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "# config file: config/parallel-execution.yaml"
    source = "(config/parallel-execution.yaml)"
    assert any(line.split() == ["retries", "=", "2", source] for line in lines), out
    assert any(line.split() == ["max_concurrency", "=", "3", "(PTX_JOBS)"] for line in lines)
    assert any(line.split() == ["resources", "=", '{"db":', "1}", source] for line in lines)
    assert any(
        line.split()[:3] == ["circuit_breaker.failure_threshold", "=", "5"] for line in lines
    )
    assert "(default)" in out
    code, out, _ = invoke(root, "config", "-j", "7", "--json", PTX_JOBS="3")
    settings = json.loads(out)["settings"]
    assert settings["max_concurrency"] == {"value": 7, "source": "flag --jobs"}
    assert settings["resource_limits.memory_per_task"] == {
        "value": 512 * 2**20,
        "source": "default",
    }
    assert settings["kill_grace_seconds"]["source"] == "config/parallel-execution.yaml"


def test_ptx_config_outside_a_project_shows_the_defaults(tmp_path: Path) -> None:
    code, out, _ = invoke(tmp_path, "config", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["file"] is None
    assert {entry["source"] for entry in data["settings"].values()} == {"default"}


# --- bad configs: exit 2 and one clear message, from every command ----------------------------

BAD_CONFIGS = [  # (what the file sets, the message after its key path's "parallel_execution.")
    ("max_concurrency: -1", "max_concurrency: must be a positive integer, got -1"),
    (
        "safety_thresholds: {max_failure_rate: 7}",
        "safety_thresholds.max_failure_rate: must be a number from 0 to 1, got 7",
    ),
    ("resources: {db: 0}", "resources.db: must be a positive integer, got 0"),
    (
        "resource_limits: {memory_per_tsk: 1Gi}",
        "resource_limits.memory_per_tsk: unknown key (did you mean 'memory_per_task'?)",
    ),
    (
        "tasks: {'1': {memory_limit: lots}}",
        (
            "tasks.1.memory_limit: must be a byte count > 0 or a quantity such as"
            ' "512Mi" or "2G", got "lots"'
        ),
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_CONFIGS)
@pytest.mark.parametrize("command", ["validate", "plan", "run", "config"])
def test_a_bad_config_exits_2_with_one_message(
    tmp_path: Path, body: str, message: str, command: str
) -> None:
    root = make_project(tmp_path, [task(1, "touch ran")])
    config = root / "config" / "parallel-execution.yaml"
    config.write_text(f"parallel_execution:\n  {body}\n")
    args = [command] if command == "validate" else [command, "-c", str(config)]
    code, _, err = invoke(root, *args)
    assert code == 2
    assert err.strip().splitlines() == [
        f"ptx: error: config/parallel-execution.yaml: parallel_execution.{message}"
    ]
    assert not (root / "ran").exists()
