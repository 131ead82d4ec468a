"""Taskmaster's statuses during a run, with a real second program editing tasks.json under
the lock the way tm-core does (proper-lockfile's lock directory, re-read, rename)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from projects import (
    HANG_GUARD,
    make_project,
    progress,
    ptx,
    q,
    read_report,
    spawn,
    task,
    wait_for,
)

from ptx.taskmaster.lock import STALE_LOCK_SECONDS

if TYPE_CHECKING:
    from pathlib import Path

# proper-lockfile's lock(), as tm-core calls it (stale 10 s, 5 retries from 100 ms to 1 s):
# mkdir the lock; if it exists and its mtime is older than `stale`, rmdir it and try again.
# rmdir is what proper-lockfile removes a stale lock with: a *file* there makes it fail.
_TASKMASTER = r"""
import json, os, sys, time
path, edits = sys.argv[1], json.loads(sys.argv[2])
lock = path + ".lock"
for attempt in range(6):
    try:
        os.mkdir(lock)
        break
    except FileExistsError:
        if time.time() - os.stat(lock).st_mtime > 10:
            os.rmdir(lock)
            continue
        time.sleep(min(0.1 * 2**attempt, 1.0))
else:
    sys.exit("ELOCKED: Lock file is already being held")
try:
    if edits == "snapshot":
        data = json.loads(open(sys.argv[3]).read())
    else:
        data = json.loads(open(path).read())
        for task in data["master"]["tasks"]:
            task["status"] = edits.get(str(task["id"]), task["status"])
    with open(path + ".tmp", "w") as out:
        out.write(json.dumps(data, indent=2))
    os.replace(path + ".tmp", path)
finally:
    os.rmdir(lock)
"""


# A ptx process holding the lock, to be killed with SIGKILL.
_HOLDER = """
import sys, time
from pathlib import Path
from ptx.taskmaster.lock import taskmaster_lock
with taskmaster_lock(Path(sys.argv[1]), timeout=5):
    print("held", flush=True)
    time.sleep(600)
"""


def _taskmaster(tasks_file: Path, edits: dict[str, str] | str, *extra: str) -> None:
    """Run the other program to its end; it fails the test if it cannot take the lock."""
    done = subprocess.run(
        [sys.executable, "-c", _TASKMASTER, str(tasks_file), json.dumps(edits), *extra],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _gated(tmp_path: Path, number: int, code: int = 0) -> str:
    """Says it started, waits for the test to let it go, exits with `code`."""
    started, go = tmp_path / f"started{number}", tmp_path / f"go{number}"
    return f"touch {q(started)}; while [ ! -e {q(go)} ]; do sleep 0.02; done; exit {code}"


def _statuses(tasks_file: Path) -> dict[str, str]:
    data: dict[str, Any] = json.loads(tasks_file.read_text())
    return {str(entry["id"]): entry["status"] for entry in data["master"]["tasks"]}


def _tasks_file(root: Path) -> Path:
    return root / ".taskmaster" / "tasks" / "tasks.json"


@pytest.mark.parametrize("write_back", [True, False])
def test_a_task_deferred_during_the_run_is_not_started_nor_overwritten(
    tmp_path: Path, background: list[subprocess.Popen[bytes]], *, write_back: bool
) -> None:
    ran = tmp_path / "ran"
    tasks = [task(1, _gated(tmp_path, 1)), task(2, f"touch {q(ran)}", 1), task(3, "true", 2)]
    root = make_project(tmp_path, tasks)
    args = ["run", "--report-json", "report.json"]
    background.append(proc := spawn(root, *args, *(["--update-status"] if write_back else [])))
    wait_for((tmp_path / "started1").exists, "task 1 to start")
    _taskmaster(_tasks_file(root), {"2": "deferred"})
    (tmp_path / "go1").touch()
    assert proc.wait(HANG_GUARD) == 0, progress(root)

    assert not ran.exists()
    assert "not starting 2: its status is now deferred" in progress(root)
    expected = {"1": "done" if write_back else "pending", "2": "deferred", "3": "pending"}
    assert _statuses(_tasks_file(root)) == expected
    report = read_report(root / "report.json")
    assert [entry["id"] for entry in report["tasks"]] == ["1"]
    assert report["blocked"] == [
        {"id": "2", "reason": "status set to deferred during the run", "target": False},
        {"id": "3", "reason": "waits for 2 (deferred)", "target": False},
    ]


def test_a_status_set_while_a_task_ran_is_not_overwritten_when_it_fails(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    root = make_project(tmp_path, [task(1, _gated(tmp_path, 1, code=3))])
    background.append(proc := spawn(root, "run", "--update-status"))
    wait_for((tmp_path / "started1").exists, "task 1 to start")
    wait_for(lambda: _statuses(_tasks_file(root))["1"] == "in-progress", "in-progress written")
    _taskmaster(_tasks_file(root), {"1": "blocked"})
    (tmp_path / "go1").touch()
    assert proc.wait(HANG_GUARD) == 1

    assert _statuses(_tasks_file(root)) == {"1": "blocked"}  # not put back to pending
    assert "status of 1 left as blocked: set outside ptx during the run" in progress(root)


def test_a_status_another_program_reverted_is_written_again_at_the_end(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    root = make_project(tmp_path, [task(1, "true"), task(2, _gated(tmp_path, 2), 1)])
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(_tasks_file(root).read_text())  # what a stale writer holds in memory
    background.append(proc := spawn(root, "run", "--update-status"))
    wait_for((tmp_path / "started2").exists, "task 2 to start")
    wait_for(lambda: _statuses(_tasks_file(root))["1"] == "done", "done written for 1")
    _taskmaster(_tasks_file(root), "snapshot", str(snapshot))  # writes back the old statuses
    (tmp_path / "go2").touch()
    assert proc.wait(HANG_GUARD) == 0, progress(root)

    assert _statuses(_tasks_file(root)) == {"1": "done", "2": "done"}
    assert "status of 1 reverted by another program: written again" in progress(root)


def test_a_lock_left_by_a_killed_ptx_does_not_fail_taskmaster_nor_the_next_run(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    tasks_file = _tasks_file(root)
    lock = tasks_file.with_name("tasks.json.lock")
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            _HOLDER,
            str(tasks_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
        finally:
            holder.kill()  # SIGKILL: nothing is released
            holder.wait(HANG_GUARD)
    assert lock.exists()
    old = time.time() - STALE_LOCK_SECONDS - 1  # as it is 11 s after the kill: nobody refreshes
    os.utime(lock, (old, old))

    _taskmaster(tasks_file, {"1": "review"})  # tm-core breaks it as proper-lockfile does
    _taskmaster(tasks_file, {"1": "pending"})
    lock.mkdir()  # the same leftover again, for the next ptx run
    os.utime(lock, (old, old))
    result = ptx(root, "run", "--update-status")
    assert result.returncode == 0, result.stderr
    assert "held up" not in result.stderr  # broken at the first write, not waited out
    assert _statuses(tasks_file) == {"1": "done"}
    assert not lock.exists()


def test_while_the_lock_is_held_a_status_is_still_checked_before_a_start(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    ran = tmp_path / "ran"
    tasks = [task(1, _gated(tmp_path, 1)), task(2, f"touch {q(ran)}", 1)]
    root = make_project(tmp_path, tasks)
    tasks_file = _tasks_file(root)
    lock = tasks_file.with_name("tasks.json.lock")
    lock.mkdir()  # a live holder that never lets go: it keeps the lock fresh
    stop = threading.Event()

    def keep_fresh() -> None:
        while not stop.wait(0.2):
            os.utime(lock)

    holder = threading.Thread(target=keep_fresh)
    holder.start()
    try:
        background.append(proc := spawn(root, "run", "--update-status"))
        wait_for((tmp_path / "started1").exists, "task 1 to start")
        data = json.loads(tasks_file.read_text())
        data["master"]["tasks"][1]["status"] = "deferred"  # a person's edit, not locked
        tasks_file.with_suffix(".new").write_text(json.dumps(data, indent=2))
        tasks_file.with_suffix(".new").replace(tasks_file)
        (tmp_path / "go1").touch()
        assert proc.wait(HANG_GUARD) == 1, progress(root)  # 1's statuses never got written
    finally:
        stop.set()
        holder.join()
    assert "not starting 2: its status is now deferred" in progress(root)
    assert not ran.exists()
    assert _statuses(tasks_file) == {"1": "pending", "2": "deferred"}
