"""Tests for `ptx run`: a real ptx process, real task processes, real files and journal."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from builders import CORPUS, SCRIPTS, pids_in
from projects import (
    HANG_GUARD,
    QUICK,
    alive,
    attempts,
    kill_guardian,
    lines,
    make_project,
    progress,
    ptx,
    python,
    q,
    read_report,
    spawn,
    statuses,
    task,
    wait_for,
)
from watch import wait_with_peak_rss

from ptx.executors.logfile import LogFile
from ptx.journal.store import Journal

if TYPE_CHECKING:
    import subprocess

# --- timeouts and signals: nothing of a task outlives the run ---------------------------------


def test_timeout_kills_the_task_tree_and_reports_timeout(tmp_path: Path, pid_file: Path) -> None:
    # Every process ignores SIGTERM (the trap is inherited), so only the SIGKILL ends them.
    command = (
        f'trap "" TERM; echo $$ >> {q(pid_file)}; '
        f"sleep 60 & echo $! >> {q(pid_file)}; "
        f"( sleep 60 & echo $! >> {q(pid_file)}; wait ) & echo $! >> {q(pid_file)}; "
        "wait"
    )
    root = make_project(tmp_path, [task(1, command, ptx_timeout_seconds=1.0)])
    result = ptx(root, "run", "--report-json", "report.json")
    assert result.returncode == 1, result.stderr
    pids = pids_in(pid_file)
    assert len(pids) == 4
    assert [pid for pid in pids if alive(pid)] == []
    (entry,) = read_report(root / "report.json")["tasks"]
    assert entry["status"] == "timeout"
    assert statuses(root) == {"1": "timeout"}
    assert "timed out after 1 s" in Path(entry["log"]).read_text()


def _long_task(pid_file: Path, *, trap_term: bool = False) -> str:
    trap = 'trap "" TERM; ' if trap_term else ""
    return f"{trap}echo $$ >> {q(pid_file)}; sleep 60 & echo $! >> {q(pid_file)}; wait"


def test_sigint_stops_the_run_leaves_no_process_and_exits_130(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    tasks = [
        task(1, _long_task(pid_file)),
        task(2, _long_task(pid_file, trap_term=True)),
        task(3, "true", 1),
    ]
    root = make_project(tmp_path, tasks)
    background.append(proc := spawn(root, "run", "-j", "2", "--report-json", "report.json"))
    wait_for(lambda: len(pids_in(pid_file)) == 4, "both tasks to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(HANG_GUARD) == 130
    assert [pid for pid in pids_in(pid_file) if alive(pid)] == []
    assert statuses(root) == {"1": "interrupted", "2": "interrupted"}
    report = read_report(root / "report.json")
    assert report["status"] == "interrupted"
    assert [entry["status"] for entry in report["tasks"]] == [
        "interrupted",
        "interrupted",
        "not-run",
    ]
    with Journal.open(root / ".ptx") as journal:
        last = journal.last_run()
        assert last is not None
        assert last.status == "interrupted"


def test_second_sigint_kills_without_waiting_for_the_grace_period(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    # The grace period outlasts the hang guard: only the second SIGINT can end this run in time.
    root = make_project(
        tmp_path, [task(1, _long_task(pid_file, trap_term=True))], kill_grace_seconds=120
    )
    background.append(proc := spawn(root, "run"))
    wait_for(lambda: len(pids_in(pid_file)) == 2, "the task to start")
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: "Ctrl-C again to kill" in progress(root), "the first SIGINT to be handled")
    assert proc.poll() is None  # waiting out the grace period of a task that ignores TERM
    assert all(alive(pid) for pid in pids_in(pid_file))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(HANG_GUARD) == 130
    assert [pid for pid in pids_in(pid_file) if alive(pid)] == []
    assert statuses(root) == {"1": "interrupted"}


def test_resume_after_kill_9_reaps_the_dead_run_and_skips_what_succeeded(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    runs, marker = tmp_path / "runs", tmp_path / "marker"
    long_task = (
        f"echo 2 >> {q(runs)}; [ -e {q(marker)} ] && exit 0; touch {q(marker)}; "
        + _long_task(pid_file)
    )
    tasks = [
        task(1, f"echo 1 >> {q(runs)}"),
        task(2, long_task),
        task(3, f"echo 3 >> {q(runs)}", 1, 2),
    ]
    root = make_project(tmp_path, tasks)
    background.append(proc := spawn(root, "run", "-j", "2"))
    wait_for(lambda: "succeeded 1 " in progress(root), "task 1 to succeed")
    wait_for(lambda: any(a.pgid for a in attempts(root) if a.task == "2"), "task 2 to spawn")
    wait_for(lambda: len(pids_in(pid_file)) == 2, "task 2 to record its pids")
    kill_guardian(proc)  # else it ends the tasks itself: the journal is what is tested here
    proc.kill()
    proc.wait(HANG_GUARD)
    orphans = pids_in(pid_file)
    assert all(alive(pid) for pid in orphans)  # what the resume must clean up

    result = ptx(root, "run", "--resume")
    assert result.returncode == 0, result.stderr
    assert [pid for pid in orphans if alive(pid)] == []
    assert sorted(lines(runs)) == ["1", "2", "2", "3"]  # 1 ran once, 2 was rerun, 3 ran
    assert statuses(root) == {"2": "succeeded", "3": "succeeded"}
    assert statuses(root, run=0) == {"1": "succeeded", "2": "interrupted"}
    with Journal.open(root / ".ptx") as journal:
        crashed, resumed = sorted(journal.runs(), key=lambda info: info.started_at)
    assert crashed.status == "crashed"
    assert resumed.resumed_from == crashed.run_id


@pytest.mark.slow
def test_a_gigabyte_of_output_keeps_ptx_memory_bounded(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    size = 1_000_000_000
    root = make_project(tmp_path, [task(1, f"head -c {size} /dev/zero")])
    background.append(proc := spawn(root, "run", "--report-json", "report.json"))
    code, peak = wait_with_peak_rss(proc, HANG_GUARD)
    assert code == 0
    log = Path(read_report(root / "report.json")["tasks"][0]["log"])
    try:
        assert log.stat().st_size == size
    finally:
        log.unlink()
    assert 0 < peak < 150 * 2**20


# --- task text reaches commands as data ------------------------------------------------------


@pytest.mark.parametrize(
    "title", ["$(touch pwned)", "'; touch pwned2 #", "`touch pwned3`", '"; touch pwned4; "']
)
def test_titles_arrive_literally_and_execute_nothing(tmp_path: Path, title: str) -> None:
    tasks = [
        task(1, "printf %s {title} > placeholder", title=title),
        task(2, 'printf %s "$PTX_TASK_TITLE" > variable', title=title),
        task(3, ["sh", "-c", 'printf %s "$1" > argv', "sh", "{title}"], title=title),
    ]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    for name in ("placeholder", "variable", "argv"):
        assert (root / name).read_text() == title, name
    assert not list(root.rglob("pwned*"))


def test_ptx_variables_and_the_task_json_reach_the_task(tmp_path: Path) -> None:
    entry = task(
        7,
        [sys.executable, str(SCRIPTS / "dump_task_environment.py")],
        title="Build it",
        description="the description",
        details="the details",
        testStrategy="the strategy",
        priority="high",
        extra={"kept": [1, 2]},
        subtasks=[
            {"id": 1, "title": "First part", "status": "done", "description": "one"},
            {"id": "7.2", "title": "Second part", "details": "line a\nline b"},
        ],
    )
    root = make_project(tmp_path, [entry])
    result = ptx(root, "run", "--report-json", "report.json")
    assert result.returncode == 0, result.stderr
    env = json.loads((root / "env.json").read_text())
    assert {name: value for name, value in env.items() if name.startswith("PTX_")}.keys() == {
        "PTX_TASK_ID",
        "PTX_TASK_TITLE",
        "PTX_TASK_DESCRIPTION",
        "PTX_TASK_DETAILS",
        "PTX_TASK_TEST_STRATEGY",
        "PTX_TASK_PRIORITY",
        "PTX_TASK_PROMPT",
        "PTX_TASK_JSON",
        "PTX_RESULT",
        "PTX_PREVIOUS_SESSION_ID",
        "PTX_TAG",
        "PTX_RUN_ID",
        "PTX_ATTEMPT",
    }
    expected = {
        "PTX_TASK_ID": "7",
        "PTX_TASK_TITLE": "Build it",
        "PTX_TASK_DESCRIPTION": "the description",
        "PTX_TASK_DETAILS": "the details",
        "PTX_TASK_TEST_STRATEGY": "the strategy",
        "PTX_TASK_PRIORITY": "high",
        "PTX_TAG": "master",
        "PTX_RUN_ID": read_report(root / "report.json")["run_id"],
        "PTX_ATTEMPT": "1",
        "PTX_PREVIOUS_SESSION_ID": "",
    }
    assert {name: env[name] for name in expected} == expected
    assert env["PTX_RESULT"].endswith("/7.1.result.json")
    assert json.loads((root / "task.json").read_text()) == entry
    assert not Path(env["PTX_TASK_JSON"]).exists()  # a scratch file: gone with the run
    for text in ("Build it", "the description", "the details", "the strategy"):
        assert text in env["PTX_TASK_PROMPT"]
    assert env["PTX_TASK_PROMPT"].endswith(
        "Subtasks:\n- 7.1 [done] First part\n  one\n- 7.2 [pending] Second part\n  line a\n  line b"
    )
    assert env["PATH"] == os.environ["PATH"]  # the rest of the environment is inherited


def test_every_task_json_is_there_when_the_first_task_starts(tmp_path: Path) -> None:
    listing = 'ls "$(dirname "$PTX_TASK_JSON")" > "$PTX_TASK_ID.listing"'
    root = make_project(tmp_path, [task(1, listing), task(2, "true", 1), task(3, "true", 2)])
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    names = (root / "1.listing").read_text().split()
    assert names == ["1.task.json", "2.task.json", "3.task.json"]


# --- status write-back on a real Taskmaster file ---------------------------------------------


def _corpus_project(root: Path) -> Path:
    tasks_file = root / ".taskmaster" / "tasks" / "tasks.json"
    tasks_file.parent.mkdir(parents=True)
    shutil.copyfile(CORPUS / "5dlabs__toolman.json", tasks_file)
    (root / "config").mkdir()
    (root / "config" / "parallel-execution.yaml").write_text(
        yaml.safe_dump({"parallel_execution": {"command": "true", **QUICK}})
    )
    return tasks_file


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: None if key == "status" else _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


_STATUS_LINE = re.compile(r'\s*"status": "[a-z-]+",?')


def test_update_status_changes_only_statuses_of_a_corpus_file(tmp_path: Path) -> None:
    tasks_file = _corpus_project(tmp_path)
    before = tasks_file.read_text()
    result = ptx(tmp_path, "run", "8", "9", "--update-status")
    assert result.returncode == 0, result.stderr
    after = tasks_file.read_text()
    assert _masked(json.loads(after)) == _masked(json.loads(before))
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert changed
    assert all(_STATUS_LINE.fullmatch(a) and _STATUS_LINE.fullmatch(b) for a, b in changed)
    master = {entry["id"]: entry for entry in json.loads(after)["master"]["tasks"]}
    assert (master[8]["status"], master[9]["status"], master[10]["status"]) == (
        "done",
        "done",
        "pending",
    )


def test_a_held_taskmaster_lock_is_never_written_through(tmp_path: Path) -> None:
    tasks_file = _corpus_project(tmp_path)
    before = tasks_file.read_bytes()
    lock = tasks_file.with_name("tasks.json.lock")
    lock.write_text(json.dumps({"pid": os.getpid()}))
    done = threading.Event()

    def keep_fresh() -> None:  # a live holder: the lock never looks stale
        while not done.wait(0.2):
            os.utime(lock)

    holder = threading.Thread(target=keep_fresh)
    holder.start()
    try:
        result = ptx(tmp_path, "run", "8", "9", "--update-status")
    finally:
        done.set()
        holder.join()
    assert result.returncode == 1, result.stderr  # a status never written fails the run
    assert "status of 8, 9 not written to tasks.json" in result.stdout
    assert tasks_file.read_bytes() == before
    assert "warning:" in result.stderr
    assert "tasks.json.lock" in result.stderr
    assert "status of 8, 9 not written" in result.stderr
    assert statuses(tmp_path) == {"8": "succeeded", "9": "succeeded"}
    assert lock.exists()


# --- failure policy, retries, fail-fast ------------------------------------------------------


def test_a_failure_skips_its_dependents_and_independent_work_goes_on(tmp_path: Path) -> None:
    tasks = [
        task(1, "exit 3"),
        task(2, "touch two", 1),
        task(3, "touch three", 2),
        task(4, "touch four"),
        task(5, "touch five", 4),
    ]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "-j", "1", "--report-json", "report.json")
    assert result.returncode == 1
    by_id = {entry["id"]: entry for entry in read_report(root / "report.json")["tasks"]}
    assert {key: entry["status"] for key, entry in by_id.items()} == {
        "1": "failed",
        "2": "skipped",
        "3": "skipped",
        "4": "succeeded",
        "5": "succeeded",
    }
    assert by_id["1"]["exit_code"] == 3
    assert by_id["2"]["reason"] == "dependency 1 failed"
    assert by_id["3"]["reason"] == "dependency 1 failed"  # the root cause, not the chain
    assert {path.name for path in root.iterdir()} >= {"four", "five"}
    assert not (root / "two").exists()
    assert not (root / "three").exists()
    assert "skipped 2: dependency 1 failed" in result.stderr


def test_retries_rerun_a_failing_task_until_it_succeeds(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    command = f'echo x >> {q(counter)}; [ "$(wc -l < {q(counter)})" -ge 3 ]'
    root = make_project(tmp_path, [task(1, command)])
    result = ptx(root, "run", "--retries", "2", "--report-json", "report.json")
    assert result.returncode == 0, result.stderr
    assert len(lines(counter)) == 3
    records = attempts(root)
    assert [(r.attempt, r.status) for r in records] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert read_report(root / "report.json")["tasks"][0]["attempts"] == 3


def test_retries_run_out(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    root = make_project(tmp_path, [task(1, f"echo x >> {q(counter)}; exit 1")])
    result = ptx(root, "run", "--retries", "1")
    assert result.returncode == 1
    assert len(lines(counter)) == 2
    assert [(r.attempt, r.status) for r in attempts(root)] == [(1, "failed"), (2, "failed")]


def test_fail_fast_starts_nothing_after_a_failure(tmp_path: Path) -> None:
    # -j 1 and priorities make the order certain: the failure comes first.
    tasks = [
        task(1, "exit 1", priority="critical"),
        task(2, "touch two", priority="low"),
        task(3, "touch three", priority="low"),
    ]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "-j", "1", "--fail-fast", "--report-json", "report.json")
    assert result.returncode == 1
    report = read_report(root / "report.json")
    assert [entry["status"] for entry in report["tasks"]] == ["failed", "not-run", "not-run"]
    assert not (root / "two").exists()
    assert not (root / "three").exists()
    assert statuses(root) == {"1": "failed"}


def test_fail_fast_from_the_config(tmp_path: Path) -> None:
    tasks = [task(1, "exit 1", priority="critical"), task(2, "touch two", priority="low")]
    root = make_project(tmp_path, tasks, failure_policy="fail-fast")
    assert ptx(root, "run", "-j", "1").returncode == 1
    assert not (root / "two").exists()


# --- selection, refusal, dry run, report -----------------------------------------------------


def test_dry_run_prints_order_and_commands_and_runs_nothing(tmp_path: Path) -> None:
    tasks = [
        task(1, "touch one"),
        task(2, "touch {title}", 1, title="two words"),
        task(3, ["touch", "{title}", "attempt {attempt}"], 2, title="three"),
    ]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "1\ttouch one",
        "2\ttouch 'two words'",
        "3\ttouch three 'attempt 1'",
    ]
    assert {path.name for path in root.iterdir()} == {".taskmaster", "config"}


def test_dry_run_prints_the_commands_the_real_run_runs(tmp_path: Path) -> None:
    tasks = [
        task(1, "echo {id} {tag}", title="it's"),
        task(2, ["echo", "{title}", "try {attempt}"], 1, title="two words"),
    ]
    root = make_project(tmp_path, tasks)
    dry = ptx(root, "run", "--dry-run")
    real = ptx(root, "run", "--report-json", "report.json")
    assert (dry.returncode, real.returncode) == (0, 0), dry.stderr + real.stderr
    ran = {entry["id"]: entry["command"] for entry in read_report(root / "report.json")["tasks"]}
    assert dict(line.split("\t") for line in dry.stdout.splitlines()) == ran
    assert ran == {"1": "echo 1 master", "2": "echo 'two words' 'try 1'"}


def test_targets_run_with_their_unfinished_dependencies_only(tmp_path: Path) -> None:
    tasks = [
        task(1, "touch one", status="done"),
        task(2, "touch two", 1),
        task(3, "touch three"),
        task(7, "touch seven", 2),
        task(8, "touch eight", 7),
    ]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "7")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in root.iterdir() if path.is_file()) == ["seven", "two"]
    assert sorted(statuses(root)) == ["2", "7"]


def test_satisfied_tasks_are_not_rerun(tmp_path: Path) -> None:
    tasks = [
        task(1, "touch one", status="done"),
        task(2, "touch two", status="cancelled"),
        task(3, "touch three", 1, 2, status="completed"),
        task(4, "touch four", 3),
    ]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in root.iterdir() if path.is_file()) == ["four"]


def test_a_task_without_a_command_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    tasks = [task(1, "touch one"), task(2, None), task(3, "touch three", 1)]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run")
    assert result.returncode == 2
    assert "no command for task 2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "one").exists()
    assert not (root / ".ptx" / "logs").exists()


def test_a_cycle_stops_the_run_before_anything_runs(tmp_path: Path) -> None:
    tasks = [task(1, "touch one"), task(2, "touch two", 3), task(3, "touch three", 2)]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run")
    assert result.returncode == 1
    assert ".taskmaster/tasks/tasks.json [master] task 2: error PTX101" in result.stderr
    assert "2 -> 3 -> 2" in result.stderr
    assert not (root / "one").exists()


def test_report_json_has_the_documented_keys(tmp_path: Path) -> None:
    tasks = [task(1, "sleep 0.2"), task(2, "sleep 0.2"), task(3, "echo out", 1, 2)]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "-j", "2", "--report-json", "out/report.json")
    assert result.returncode == 0, result.stderr
    report = read_report(root / "out" / "report.json")
    assert set(report) >= {
        "run_id",
        "status",
        "jobs",
        "wall_seconds",
        "work_seconds",
        "speedup",
        "efficiency",
        "critical_path",
        "bound_seconds",
        "optimality",
        "level_barrier_seconds",
        "degraded",
        "tasks",
    }
    assert set(report["critical_path"]) == {"tasks", "seconds"}
    assert (report["status"], report["jobs"]) == ("succeeded", 2)
    assert report["critical_path"]["tasks"][-1] == "3"
    assert report["work_seconds"] >= 0.4
    for entry in report["tasks"]:
        assert set(entry) >= {
            "id",
            "title",
            "status",
            "exit_code",
            "attempts",
            "started_at",
            "ended_at",
            "duration_seconds",
            "log",
        }
    third = report["tasks"][2]
    assert (third["id"], third["exit_code"], third["attempts"]) == ("3", 0, 1)
    assert Path(third["log"]).read_text() == "out\n"
    assert third["started_at"] <= third["ended_at"]


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    unknown = ptx(root, "run", "99")
    assert unknown.returncode == 2
    assert "99" in unknown.stderr
    assert not (root / ".ptx" / "logs").exists()
    nothing = ptx(root, "run", "--resume")
    assert nothing.returncode == 2
    assert "nothing to resume" in nothing.stderr
    (root / "config" / "parallel-execution.yaml").write_text("parallel_execution: {retries: -1}\n")
    assert ptx(root, "run").returncode == 2


def test_a_successful_run_exits_0(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true"), task(2, "true", 1)])
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    assert statuses(root) == {"1": "succeeded", "2": "succeeded"}
    assert "run " in result.stderr
    assert "succeeded" in result.stderr


def test_sigterm_is_an_interrupt_too(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    root = make_project(tmp_path, [task(1, _long_task(pid_file))])
    background.append(proc := spawn(root, "run"))
    wait_for(lambda: len(pids_in(pid_file)) == 2, "the task to start")
    proc.terminate()
    assert proc.wait(HANG_GUARD) == 130
    assert [pid for pid in pids_in(pid_file) if alive(pid)] == []
    assert statuses(root) == {"1": "interrupted"}


def test_an_interrupt_during_a_retry_backoff_ends_the_run(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    counter = tmp_path / "counter"
    tasks = [task(1, f"echo x >> {q(counter)}; exit 1"), task(2, "touch two", 1)]
    root = make_project(tmp_path, tasks, retry_backoff_seconds=600)
    background.append(proc := spawn(root, "run", "--retries", "3", "--report-json", "r.json"))
    wait_for(lambda: "retry in" in progress(root), "the first attempt to fail")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(HANG_GUARD) == 130
    assert len(lines(counter)) == 1
    assert [(r.attempt, r.status) for r in attempts(root)] == [(1, "failed")]
    report = read_report(root / "r.json")
    assert [entry["status"] for entry in report["tasks"]] == ["failed", "skipped"]


def test_a_failed_task_gets_its_status_back(tmp_path: Path) -> None:
    tasks_file = _corpus_project(tmp_path)
    seen = tmp_path / "seen.json"  # the file as the task saw it: was anything written at all?
    command = f"cp {q(tasks_file)} {q(seen)}; exit 1"
    config = tmp_path / "config" / "parallel-execution.yaml"
    config.write_text(yaml.safe_dump({"parallel_execution": {"command": command, **QUICK}}))
    before = tasks_file.read_bytes()
    result = ptx(tmp_path, "run", "8", "--update-status")
    assert result.returncode == 1
    assert "warning" not in result.stderr
    running = {entry["id"]: entry for entry in json.loads(seen.read_text())["master"]["tasks"]}
    assert running[8]["status"] == "in-progress"
    assert tasks_file.read_bytes() == before  # pending again now


def test_a_failed_subtask_gives_its_parent_its_status_back_too(tmp_path: Path) -> None:
    # Starting 1.1 makes its parent in-progress (Taskmaster's rule); with 1.2 done, re-deriving
    # the parent after the failure would keep it there, so only an exact undo restores it.
    parent = task(1, None)
    parent["subtasks"] = [
        {"id": 1, "title": "one", "status": "pending", "dependencies": []},
        {"id": 2, "title": "two", "status": "done", "dependencies": []},
    ]
    root = make_project(tmp_path, [parent], command="exit 1")
    tasks_file = root / ".taskmaster" / "tasks" / "tasks.json"
    before = tasks_file.read_bytes()
    result = ptx(root, "run", "--subtasks", "--update-status")
    assert result.returncode == 1, result.stderr
    assert "warning" not in result.stderr
    assert statuses(root) == {"1.1": "failed"}
    assert tasks_file.read_bytes() == before


def test_an_internal_error_mid_run_stops_the_running_tasks(tmp_path: Path, pid_file: Path) -> None:
    # Without a stop, leaving the pool would wait for the endless task 1 forever.
    endless = f"echo $$ >> {q(pid_file)}; while :; do sleep 0.1; done"
    tasks = [task(1, endless), task(3, "true"), task(2, "true", 3)]
    root = make_project(tmp_path, tasks)
    result = python(root, "run_with_task_2_failing_its_write_back.py")
    assert result.returncode != 0
    assert "disk full" in result.stderr
    assert [pid for pid in pids_in(pid_file) if alive(pid)] == []


def test_statuses_a_held_lock_kept_back_are_written_once_it_is_free(tmp_path: Path) -> None:
    tasks_file = _corpus_project(tmp_path)
    lock = tasks_file.with_name("tasks.json.lock")
    settings = {"command": "true", "tasks": {"8": {"command": f"rm {q(lock)}"}}, **QUICK}
    (tmp_path / "config" / "parallel-execution.yaml").write_text(
        yaml.safe_dump({"parallel_execution": settings})
    )
    lock.write_text(json.dumps({"pid": os.getpid()}))  # fresh: held until task 8 removes it
    result = ptx(tmp_path, "run", "8", "9", "--update-status")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("status write-back held up") == 1
    assert "not written" not in result.stderr
    master = {entry["id"]: entry for entry in json.loads(tasks_file.read_text())["master"]["tasks"]}
    assert (master[8]["status"], master[9]["status"]) == ("done", "done")


def test_with_nothing_left_to_run_ptx_says_so_and_succeeds(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true", status="done"), task(2, "true", 1)])
    first = ptx(root, "run", "--update-status")
    again = ptx(root, "run")
    assert (first.returncode, again.returncode) == (0, 0), first.stderr
    assert "nothing to run: every selected task is done already or blocked" in again.stdout
    assert "lowered to" not in first.stderr + again.stderr  # nobody asked for more than -j allows


# --- log files: kept when a task printed or ran long enough to watch ---------------------------

unnamed_logs = pytest.mark.skipif(
    not LogFile.unnamed, reason="no O_TMPFILE here: every log is named at once"
)


@unnamed_logs
def test_a_log_is_kept_only_if_its_task_printed_or_ran_long_enough_to_watch(
    tmp_path: Path,
) -> None:
    # 1 s: far past the 50 ms after which the command is handed over and its log named, even
    # if the scheduler thread is slow to get to it.
    tasks = [task(1, "true"), task(2, "echo hello"), task(3, "exit 3"), task(4, "sleep 1")]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "-j", "4", "--report-json", "report.json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    entries = read_report(root / "report.json")["tasks"]
    assert {entry["id"]: entry["status"] for entry in entries} == {
        "1": "succeeded",
        "2": "succeeded",
        "3": "failed",
        "4": "succeeded",
    }
    # The report names every log where it is or would be; only two were kept.
    logs = {entry["id"]: Path(entry["log"]) for entry in entries}
    (log_dir,) = {path.parent for path in logs.values()}
    assert {unit: path.name for unit, path in logs.items()} == {
        unit: f"{unit}.log" for unit in ("1", "2", "3", "4")
    }
    assert sorted(path.name for path in log_dir.iterdir()) == ["2.log", "4.log"]
    assert logs["2"].read_text() == "hello\n"
    assert logs["4"].read_text() == ""
    # The failed task printed nothing: its block says so instead of naming a missing file.
    assert result.stdout.endswith("FAILED: 3 failed (exit 3)\nexit 3\nno output\n")
    assert "full log" not in result.stdout
    again = ptx(root, "report")
    assert (again.returncode, again.stdout) == (0, result.stdout)


def test_without_o_tmpfile_every_log_is_named_at_once(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true"), task(2, "exit 3")])
    result = python(root, "run_without_o_tmpfile.py")
    assert result.returncode == 1, result.stderr
    (log_dir,) = (root / ".ptx" / "logs").iterdir()
    assert {path.name: path.read_text() for path in log_dir.iterdir()} == {"1.log": "", "2.log": ""}
    relative = (log_dir / "2.log").relative_to(root)
    assert result.stdout.endswith(f"FAILED: 2 failed (exit 3)\nexit 3\nfull log: {relative}\n")


def test_the_log_of_a_running_task_can_be_followed_by_its_name(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    go = tmp_path / "go"
    wait = f"echo $$ >> {q(pid_file)}; while [ ! -e {q(go)} ]; do sleep 0.02; done"
    tasks = [
        task(1, f"echo started; {wait}; echo done", ptx_timeout_seconds=HANG_GUARD),
        task(2, wait, ptx_timeout_seconds=HANG_GUARD),  # prints nothing
    ]
    root = make_project(tmp_path, tasks)
    background.append(proc := spawn(root, "run", "-j", "2"))

    def log(unit: str) -> Path | None:
        return next((root / ".ptx" / "logs").glob(f"*/{unit}.log"), None)

    try:
        wait_for(lambda: log("1") is not None and log("2") is not None, "both logs to be named")
        first, second = log("1"), log("2")
        assert first is not None
        assert second is not None
        seen = bytearray()
        with first.open("rb") as follower:  # what tail -f does

            def read_to(text: bytes) -> bool:
                seen.extend(follower.read())
                return text in seen

            wait_for(lambda: read_to(b"started\n"), "task 1's first line")
            assert proc.poll() is None  # both tasks wait for `go`: neither can have ended
            assert second.read_bytes() == b""
            go.touch()
            assert proc.wait(HANG_GUARD) == 0
            seen.extend(follower.read())
    finally:
        go.touch()
    assert bytes(seen) == b"started\ndone\n"
    assert first.read_bytes() == b"started\ndone\n"
    assert second.read_bytes() == b""
