"""Flaky tasks (failed, then passed on a retry) and the budget (--max-cost), through real runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest
from projects import make_project, ptx, read_report, statuses, task

if TYPE_CHECKING:
    from pathlib import Path

# Fails its first attempt (exit 3, saying so), passes the second.
FLAKY = 'if [ "$PTX_ATTEMPT" = 1 ]; then echo "first try broke"; exit 3; fi'
COST = """printf '{"cost_usd": %s}' > "$PTX_RESULT" """


def test_a_task_that_passes_on_a_retry_is_flaky_in_every_output(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, FLAKY, ptx_retries=2), task(2, "true")])
    ran = ptx(root, "run", "--report-json", "r.json", "--junit", "j.xml")
    assert ran.returncode == 0, ran.stderr
    assert "flaky 1: failed (exit 3), then succeeded on attempt 2" in ran.stdout
    report = read_report(root / "r.json")
    assert report["flaky"] == ["1"]
    by_id = {entry["id"]: entry for entry in report["tasks"]}
    assert (by_id["1"]["flaky"], by_id["1"]["failed_attempts"]) == (True, ["failed (exit 3)"])
    assert (by_id["2"]["flaky"], by_id["2"]["failed_attempts"]) == (False, [])
    suite = ET.parse(root / "j.xml").getroot()  # noqa: S314 - our own file
    assert suite.get("failures") == "0"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    flaky_case = cases["1: task 1"]
    assert flaky_case.find("failure") is None  # a pass, as Surefire writes a rerun that passed
    (flaky,) = flaky_case.findall("flakyFailure")
    assert (flaky.get("message"), flaky.get("type")) == (
        "attempt 1 of 2: failed (exit 3)",
        "failed",
    )
    assert flaky.findtext("stackTrace") == "first try broke"
    assert cases["2: task 2"].find("flakyFailure") is None
    again = ptx(root, "report", "--format", "junit")
    assert again.stdout == (root / "j.xml").read_text()


def test_a_task_that_fails_every_attempt_is_not_flaky(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "exit 1", ptx_retries=1)])
    ran = ptx(root, "run", "--report-json", "r.json")
    assert ran.returncode == 1
    (entry,) = read_report(root / "r.json")["tasks"]
    assert (entry["flaky"], entry["failed_attempts"]) == (False, ["failed (exit 1)"] * 2)
    assert "flaky" not in ran.stdout


def test_the_budget_stops_new_starts_and_fails_the_run(tmp_path: Path) -> None:
    tasks = [task(number, COST % 0.4) for number in range(1, 6)]
    root = make_project(tmp_path, tasks)
    ran = ptx(root, "run", "-j", "1", "--max-cost", "1", "--report-json", "r.json")
    assert ran.returncode == 1, ran.stderr
    report = read_report(root / "r.json")
    assert report["budget"] == {"max_cost_usd": 1.0, "stopped": True}
    assert report["cost_usd"] == pytest.approx(1.2)
    ran_tasks = [entry for entry in report["tasks"] if entry["status"] == "succeeded"]
    left = [entry for entry in report["tasks"] if entry["status"] == "not-run"]
    assert (len(ran_tasks), len(left)) == (3, 2)  # the third reached $1.20 >= $1
    assert {entry["reason"] for entry in left} == {"stopped by the budget (--max-cost)"}
    assert "budget reached: $1.20 of $1.00: nothing more starts" in ran.stderr
    assert "budget $1.00 reached (--max-cost): the tasks left were not started" in ran.stdout


def test_a_running_task_finishes_when_the_budget_is_reached(tmp_path: Path) -> None:
    # Task 2 runs until ptx has reaped task 1 (a zombie answers kill -0), so ptx learns of
    # task 1's cost while task 2 still runs; task 3 waits for a slot and never gets one.
    first = 'echo $$ > one.pid; printf \'{"cost_usd": 5}\' > "$PTX_RESULT"'
    second = "until [ -f one.pid ] && ! kill -0 $(cat one.pid) 2>/dev/null; do sleep 0.02; done"
    root = make_project(
        tmp_path, [task(1, first), task(2, second), task(3, "touch three")], max_cost_usd=2
    )
    ran = ptx(root, "run", "-j", "2")
    assert ran.returncode == 1, ran.stderr
    assert statuses(root) == {"1": "succeeded", "2": "succeeded"}
    assert not (root / "three").exists()


def test_a_budget_never_reached_changes_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, COST % 0.1), task(2, "true")])
    ran = ptx(root, "run", "--max-cost", "5", "--report-json", "r.json")
    assert ran.returncode == 0, ran.stderr
    assert read_report(root / "r.json")["budget"] == {"max_cost_usd": 5.0, "stopped": False}


def test_a_failed_attempt_that_spends_the_budget_is_not_retried(tmp_path: Path) -> None:
    command = """printf '{"cost_usd": 3}' > "$PTX_RESULT"; exit 1"""
    root = make_project(tmp_path, [task(1, command, ptx_retries=3)])
    ran = ptx(root, "run", "--max-cost", "2", "--report-json", "r.json")
    assert ran.returncode == 1
    (entry,) = read_report(root / "r.json")["tasks"]
    assert (entry["status"], entry["attempts"]) == ("failed", 1)


def test_a_negative_budget_is_bad_input(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "touch ran")])
    for bad in ("-1", "nan", "inf"):
        ran = ptx(root, "run", "--max-cost", bad)
        assert ran.returncode == 2, bad
        assert "--max-cost" in ran.stderr
    (root / "config" / "parallel-execution.yaml").write_text(
        "parallel_execution:\n  max_cost_usd: -1\n"
    )
    ran = ptx(root, "run")
    assert ran.returncode == 2
    assert "parallel_execution.max_cost_usd: must be a number >= 0, got -1" in ran.stderr
    assert not (root / "ran").exists()
