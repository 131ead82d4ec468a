"""--resume: which run it continues, the options it keeps, and what -n shows of it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from projects import attempts, lines, make_project, ptx, q, task

from ptx.journal.store import Journal

if TYPE_CHECKING:
    from pathlib import Path


def _flaky(runs: Path, ok: Path, number: int) -> str:
    """Records each start; fails until `ok` exists."""
    return f"echo {number} >> {q(runs)}; test -e {q(ok)}"


def _last_jobs_and_statuses(root: Path) -> tuple[int, list[str]]:
    """The -j of the last run, and the statuses in tasks.json."""
    with Journal.open(root / ".ptx") as journal:
        last = journal.last_run()
    assert last is not None
    tasks_json = json.loads((root / ".taskmaster" / "tasks" / "tasks.json").read_text())
    return last.jobs, [entry["status"] for entry in tasks_json["master"]["tasks"]]


def test_an_empty_run_never_becomes_what_resume_report_and_runs_pick(tmp_path: Path) -> None:
    runs, ok = tmp_path / "runs", tmp_path / "ok"
    tasks = [
        task(1, f"echo 1 >> {q(runs)}"),
        task(2, _flaky(runs, ok, 2)),
        task(3, "true", status="done"),
    ]
    root = make_project(tmp_path, tasks)
    assert ptx(root, "run").returncode == 1
    nothing = ptx(root, "run", "3")  # 3 is done already: a run with nothing to do
    assert nothing.returncode == 0, nothing.stderr

    shown = ptx(root, "report", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "failed"  # the failed run, not the empty one
    listed = ptx(root, "runs", "--json")
    assert [entry["status"] for entry in json.loads(listed.stdout)] == ["failed"]

    ok.touch()
    resumed = ptx(root, "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(lines(runs)) == ["1", "2", "2"]  # 1 is not paid for twice
    assert {record.task for record in attempts(root)} == {"2"}


def test_resume_keeps_the_options_of_the_run_it_continues(tmp_path: Path) -> None:
    runs, ok = tmp_path / "runs", tmp_path / "ok"
    tasks = [task(1, f"echo 1 >> {q(runs)}"), task(2, _flaky(runs, ok, 2)), task(3, "true")]
    root = make_project(tmp_path, tasks)
    first = ptx(root, "run", "2", "1", "-j", "1", "--retries", "1", "--update-status")
    assert first.returncode == 1
    assert lines(runs).count("2") == 2  # --retries 1: two attempts

    dry = ptx(root, "run", "--resume", "-n")
    assert dry.returncode == 0, dry.stderr
    assert [line.split("\t")[0] for line in dry.stdout.splitlines()] == ["2"]  # not 1, nor 3
    assert "-j 1" in dry.stderr

    resumed = ptx(root, "run", "--resume")
    assert resumed.returncode == 1  # still failing: retried once more, as the first run was
    assert [record.attempt for record in attempts(root)] == [1, 2]
    assert _last_jobs_and_statuses(root) == (1, ["done", "pending", "pending"])

    ok.touch()
    again = ptx(root, "run", "--resume", "--retries", "0", "-j", "2")  # given again: they win
    assert again.returncode == 0, again.stderr
    assert [record.attempt for record in attempts(root)] == [1]
    assert _last_jobs_and_statuses(root) == (2, ["done", "done", "pending"])


def _kept(root: Path) -> dict[str, object]:
    """The options the last run keeps for a --resume of it, as the journal holds them."""
    with Journal.open(root / ".ptx") as journal:
        last = journal.last_run()
    assert last is not None
    assert last.options is not None
    kept: dict[str, object] = json.loads(last.options)
    return kept


def test_resume_keeps_the_load_limit_and_the_budget(tmp_path: Path) -> None:
    runs, ok = tmp_path / "runs", tmp_path / "ok"
    root = make_project(tmp_path, [task(1, _flaky(runs, ok, 1))])
    assert ptx(root, "run", "-l", "1000", "--max-cost", "5").returncode == 1
    assert (_kept(root)["load_average"], _kept(root)["max_cost"]) == (1000, 5)
    ok.touch()
    resumed = ptx(root, "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (_kept(root)["load_average"], _kept(root)["max_cost"]) == (1000, 5)


def test_resume_and_its_dry_run_fail_alike_when_nothing_is_left(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    for args in (("run", "--resume", "-n"), ("run", "--resume")):
        none = ptx(root, *args)
        assert none.returncode == 2
        assert "nothing to resume: no earlier run of tag 'master'" in none.stderr
    assert ptx(root, "run").returncode == 0
    for args in (("run", "--resume", "-n"), ("run", "--resume")):
        finished = ptx(root, *args)
        assert finished.returncode == 2
        assert "nothing to resume: every run of tag 'master' finished its work" in finished.stderr
