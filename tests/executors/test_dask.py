"""The Dask executor on a loopback LocalCluster: logs, timeouts, stops, worker death, cwd."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

pytest.importorskip("distributed")

import distributed
from builders import REPO, SCRIPTS
from projects import keep_track, no_leftovers  # noqa: F401 - an autouse fixture

from ptx.core.errors import PtxError, UsageError
from ptx.executors import dask as dask_executor
from ptx.executors import daskworker, process
from ptx.executors.base import Settings, missing_extra, open_executor
from ptx.executors.local import LocalExecutor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ptx.executors.base import Executor

HANG_GUARD = 30.0  # only stops a broken test from hanging the suite


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    with dask_executor.start_local_cluster(workers=2, threads=2) as started:
        yield started


@pytest.fixture(scope="module")
def executor(cluster: distributed.LocalCluster) -> Iterator[dask_executor.DaskExecutor]:
    opened = dask_executor.connect(cluster.scheduler_address)
    yield opened
    opened.client.wait_for_workers(2, timeout=HANG_GUARD)  # a killed worker may be restarting
    opened.close()


def _spec(
    tmp_path: Path,
    script: str,
    *,
    cwd: str | None = None,
    timeout: float | None = None,
    grace: float = 5.0,
) -> process.ProcessSpec:
    return process.ProcessSpec(
        argv=("/bin/sh", "-c", script),
        cwd=cwd or str(tmp_path),
        env={"PATH": os.environ["PATH"], "PTX_X": "explicit"},
        log_path=str(tmp_path / "logs" / "run" / "7.log"),
        timeout=timeout,
        grace=grace,
    )


def _pids(path: Path) -> list[int]:
    """The pids a task wrote, once it wrote both lines (its shell and its background sleep)."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) == 2:
            pids = [int(line) for line in lines]
            keep_track(pids)
            return pids
        time.sleep(0.02)
    pytest.fail(f"the task never wrote {path}")


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if _is_alive(pid)]


def _is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int]) -> bool:
    """Whether the processes end within a few seconds (some kills travel through Dask)."""
    deadline = time.monotonic() + 5.0
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _alive(pids) == []


def _in_thread(
    executor: Executor, spec: process.ProcessSpec, stop: process.Stop
) -> tuple[threading.Thread, list[process.ProcessOutcome]]:
    results: list[process.ProcessOutcome] = []
    thread = threading.Thread(target=lambda: results.append(executor.run(spec, stop)))
    thread.start()
    return thread, results


# Writes its own pid and a background sleep's pid, so the test can look for both afterwards.
_TWO_PIDS = "echo $$ > pids; sleep 300 & echo $! >> pids; "


def test_runs_a_command_and_brings_its_log_back(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, 'pwd; echo "x=$PTX_X"; echo oops >&2; exit 3')
    outcome = executor.run(spec, process.Stop())
    assert (outcome.exit_code, outcome.signal, outcome.error) == (3, None, None)
    lines = Path(spec.log_path).read_text().splitlines()
    assert lines[0].startswith("[ptx] ran on Dask worker tcp://127.0.0.1:")
    assert f"pid {outcome.pid})" in lines[0]
    assert lines[1:] == [str(tmp_path), "x=explicit", "oops"]


def test_on_start_is_told_of_the_submission_without_a_local_group(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    told: list[tuple[int | None, float | None]] = []

    def on_start(pgid: int | None, created: float | None) -> None:
        assert not Path(tmp_path / "ran").exists()  # told before the command ran
        told.append((pgid, created))

    outcome = executor.run(_spec(tmp_path, "touch ran"), process.Stop(), on_start)

    assert outcome.exit_code == 0
    assert told == [(None, None)]


def test_a_signal_that_ends_the_command_is_reported_as_locally(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "echo before; kill -KILL $$")
    outcome = executor.run(spec, process.Stop())
    assert (outcome.exit_code, outcome.signal) == (None, signal.SIGKILL)
    assert Path(spec.log_path).read_text().splitlines()[1:] == ["before"]


def test_a_command_that_handles_sigterm_keeps_its_exit_code(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, _TWO_PIDS + "trap 'echo got TERM; exit 5' TERM; wait", timeout=0.5)
    outcome = executor.run(spec, process.Stop())
    assert (outcome.timed_out, outcome.exit_code, outcome.signal) == (True, 5, None)
    assert "got TERM" in Path(spec.log_path).read_text()


def test_slots_are_the_workers_threads(executor: dask_executor.DaskExecutor) -> None:
    assert executor.slots == 4


def test_a_remote_timeout_leaves_no_process_behind(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, _TWO_PIDS + "wait", timeout=0.5, grace=0.5)
    outcome = executor.run(spec, process.Stop())
    assert outcome.timed_out
    assert _alive(_pids(tmp_path / "pids")) == []
    assert "[ptx] timed out after 0.5 s: SIGTERM" in Path(spec.log_path).read_text()


def test_a_graceful_stop_terms_the_remote_group_and_waits_for_it(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    script = _TWO_PIDS + "trap 'echo got TERM; exit 5' TERM; wait"
    stop = process.Stop()
    thread, results = _in_thread(executor, _spec(tmp_path, script), stop)
    pids = _pids(tmp_path / "pids")
    stop.request()
    thread.join(HANG_GUARD)
    assert results[0].interrupted
    assert _alive(pids) == []
    assert "got TERM" in Path(tmp_path / "logs" / "run" / "7.log").read_text()


def test_an_immediate_stop_kills_a_group_that_ignores_term(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    script = "trap '' TERM; " + _TWO_PIDS + "wait"
    stop = process.Stop()
    thread, results = _in_thread(executor, _spec(tmp_path, script, grace=60.0), stop)
    pids = _pids(tmp_path / "pids")
    stop.request()
    time.sleep(0.3)  # the graceful stop reaches the worker first; the group shrugs it off
    assert _alive(pids) == pids
    stop.request(immediate=True)
    thread.join(HANG_GUARD)
    assert not thread.is_alive()
    assert results[0].interrupted
    assert _alive(pids) == []


def test_a_stop_before_the_attempt_starts_sends_nothing(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    stop = process.Stop()
    stop.request()
    outcome = executor.run(_spec(tmp_path, "touch ran"), stop)
    assert outcome.interrupted
    assert not (tmp_path / "ran").exists()


def test_a_stop_cancels_queued_attempts_and_ends_running_ones(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    stop = process.Stop()  # one per run, as the runner shares it
    folders = [tmp_path / str(number) for number in range(5)]
    started = []
    # Fill the cluster's four threads with tasks that take a second to end after SIGTERM, so
    # no thread frees up before the queued attempt has been cancelled.
    busy = _TWO_PIDS + "trap 'sleep 1; exit 5' TERM; wait"
    for folder in folders[:4]:
        folder.mkdir()
        started.append(_in_thread(executor, _spec(folder, busy), stop))
    pids = [pid for folder in folders[:4] for pid in _pids(folder / "pids")]
    folders[4].mkdir()
    queued = _in_thread(executor, _spec(folders[4], "touch ran"), stop)
    time.sleep(0.3)  # the fifth is submitted and waits for a thread
    stop.request()
    for thread, _results in [*started, queued]:
        thread.join(HANG_GUARD)
    assert [results[0].interrupted for _thread, results in [*started, queued]] == [True] * 5
    assert queued[1][0].error == "interrupted before it started"
    assert _alive(pids) == []
    time.sleep(0.3)  # had the cancel not reached Dask, the fifth would run now
    assert not (folders[4] / "ran").exists()


def test_a_killed_worker_is_a_failed_attempt_and_takes_its_processes(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    thread, results = _in_thread(executor, _spec(tmp_path, _TWO_PIDS + "wait"), process.Stop())
    pids = _pids(tmp_path / "pids")
    workers = set(executor.client.run(os.getpid).values())
    victim = next(p.pid for p in psutil.Process(pids[0]).parents() if p.pid in workers)
    os.kill(victim, signal.SIGKILL)
    thread.join(HANG_GUARD)
    assert not thread.is_alive()
    assert results[0].error is not None
    assert results[0].error.startswith("cluster: worker died: ")
    assert (results[0].exit_code, results[0].infrastructure) == (None, True)
    assert _gone(pids)
    assert "[ptx] cluster: worker died: " in Path(tmp_path / "logs" / "run" / "7.log").read_text()


def test_the_scheduler_tells_which_attempts_a_dead_worker_was_running(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    # ptx's backstop for re-runs whose first execution's announcement never left its worker.
    client = executor.client
    (tmp_path / "calm").mkdir()
    calm = client.submit(daskworker.remote_attempt, _spec(tmp_path / "calm", "true"), "c", "t")
    assert calm.result(timeout=HANG_GUARD).outcome.exit_code == 0
    spec = _spec(tmp_path, _TWO_PIDS + "wait")
    doomed = client.submit(daskworker.remote_attempt, spec, "d", "t", key="ptx-test-d")
    pids = _pids(tmp_path / "pids")
    workers = set(client.run(os.getpid).values())
    victim = next(p.pid for p in psutil.Process(pids[0]).parents() if p.pid in workers)
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(distributed.KilledWorker):  # the module's cluster allows no re-run
        doomed.result(timeout=HANG_GUARD)
    keys = [calm.key, doomed.key, "ptx-never-submitted"]
    assert client.run_on_scheduler(daskworker.rerun, keys) == ["ptx-test-d"]


def test_a_missing_cwd_is_named_with_the_worker(
    executor: dask_executor.DaskExecutor, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "true", cwd=str(tmp_path / "absent"))
    outcome = executor.run(spec, process.Stop())
    assert outcome.error is not None
    assert outcome.error.startswith(f"cwd {tmp_path / 'absent'} does not exist on worker tcp://")
    assert outcome.exit_code == 126
    assert outcome.error in Path(spec.log_path).read_text()


def test_a_driver_that_goes_away_leaves_no_remote_process(
    cluster: distributed.LocalCluster, tmp_path: Path
) -> None:
    driver = open_executor(
        "dask", Settings(environ={"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address})
    )
    thread, results = _in_thread(driver, _spec(tmp_path, _TWO_PIDS + "wait"), process.Stop())
    pids = _pids(tmp_path / "pids")
    driver.close()  # the scheduler releases its keys; the worker plugin stops the attempt
    thread.join(HANG_GUARD)
    assert _gone(pids)
    # Nobody asked for a stop: the attempt failed, because of the cluster, not the command.
    assert (results[0].interrupted, results[0].infrastructure) == (False, True)
    assert results[0].error == f"cluster: lost the Dask scheduler at {cluster.scheduler_address}"


def test_the_local_executor_is_process_run_process(tmp_path: Path) -> None:
    executor = open_executor("local", Settings())
    assert isinstance(executor, LocalExecutor)
    assert executor.slots is None
    spec = _spec(tmp_path, "echo local")
    assert executor.run(spec, process.Stop()).exit_code == 0
    assert Path(spec.log_path).read_text() == "local\n"


def test_an_unknown_executor_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown executor 'ray': use local or dask"):
        open_executor("ray", Settings())


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    with pytest.raises(PtxError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        dask_executor.connect("tcp://127.0.0.1:9", timeout=0.5)


def test_without_distributed_the_dask_executor_says_how_to_install_it() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "dask_without_distributed.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == f"PtxError 2 {missing_extra('dask', 'dask')}\n"


# --- whole runs through the CLI, on the module's cluster -----------------------------------


def _ptx(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PTX_", "TASKMASTER_"))}
    return subprocess.run(
        [sys.executable, "-m", "ptx", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _statuses(report: Path) -> dict[str, tuple[str, int | None]]:
    tasks = json.loads(report.read_text())["tasks"]
    return {task["id"]: (task["status"], task["exit_code"]) for task in tasks}


def test_the_example_project_gives_the_same_results_as_locally(
    cluster: distributed.LocalCluster, tmp_path: Path
) -> None:
    for name in ("local", "dask"):
        shutil.copytree(REPO / "examples" / "demo" / ".taskmaster", tmp_path / name / ".taskmaster")
    local = _ptx(tmp_path / "local", "run", "-j", "4", "-q", "--report-json", "r.json")
    remote = _ptx(
        tmp_path / "dask",
        *("run", "-j", "4", "-q", "--report-json", "r.json"),
        *("--executor", "dask", "--scheduler", cluster.scheduler_address),
    )
    assert (local.returncode, remote.returncode) == (0, 0), remote.stderr
    assert _statuses(tmp_path / "dask" / "r.json") == _statuses(tmp_path / "local" / "r.json")
    logs = sorted((tmp_path / "dask" / ".ptx" / "logs").glob("*/12.log"))
    assert "ran on Dask worker" in logs[0].read_text()
    assert "done" in logs[0].read_text()  # the task's own output came back to the driver


def test_capacities_hold_across_workers(cluster: distributed.LocalCluster, tmp_path: Path) -> None:
    times = tmp_path / "times"
    record = f"echo start $(date +%s.%N) >> {times}; sleep 0.4; echo end $(date +%s.%N) >> {times}"
    tasks = [
        {
            "id": number,
            "title": f"uses the db {number}",
            "status": "pending",
            "dependencies": [],
            "metadata": {"ptx": {"command": record, "resources": {"db": 1}}},
        }
        for number in range(1, 5)
    ]
    path = tmp_path / ".taskmaster" / "tasks" / "tasks.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"master": {"tasks": tasks}}))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "parallel-execution.yaml").write_text(
        "parallel_execution:\n  resources: {db: 1}\n"
    )
    done = _ptx(
        tmp_path, "run", "-j", "4", "--executor", "dask", "--scheduler", cluster.scheduler_address
    )
    assert done.returncode == 0, done.stderr
    events = sorted(
        (float(stamp), 1 if kind == "start" else -1)
        for kind, stamp in (line.split() for line in times.read_text().splitlines())
    )
    running, most = 0, 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert len(events) == 8
    assert most == 1  # four workers' threads were free, the db allowed one at a time


def test_isolation_works_on_workers_that_share_the_filesystem(
    cluster: distributed.LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver makes, commits and merges the worktrees; the worker runs the task in one."""
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Tess Ter")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "tess@example.com")
    tasks = [
        {"id": 1, "title": "one", "status": "pending", "dependencies": [],
         "metadata": {"ptx": {"command": "echo one > one.txt"}}},
        {"id": 2, "title": "two", "status": "pending", "dependencies": [1],
         "metadata": {"ptx": {"command": "cat one.txt ready > two.txt"}}},
    ]  # fmt: skip
    path = tmp_path / ".taskmaster" / "tasks" / "tasks.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"master": {"tasks": tasks}}))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "parallel-execution.yaml").write_text(
        "parallel_execution:\n  workspace: {setup: 'echo set > ready'}\n"
    )
    (tmp_path / ".gitignore").write_text("ready\n")
    for argv in (("init", "-q"), ("add", "--all"), ("commit", "-q", "-m", "start")):
        subprocess.run(["git", "-C", str(tmp_path), *argv], check=True, capture_output=True)
    done = _ptx(
        tmp_path,
        *("run", "--isolate", "-j", "2", "--report-json", "r.json"),
        *("--executor", "dask", "--scheduler", cluster.scheduler_address),
    )
    assert done.returncode == 0, done.stderr
    branch = json.loads((tmp_path / "r.json").read_text())["integration"]["branch"]
    shown = subprocess.run(
        ["git", "-C", str(tmp_path), "show", f"{branch}:two.txt"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == "one\nset\n"
    logs = sorted((tmp_path / ".ptx" / "logs").glob("*/2.log"))
    assert "ran on Dask worker" in logs[0].read_text()
