"""The journal under faults, with real files, mounts and processes: another program's SQLite
file, damaged pages, a read-only project, a full disk, a ptx killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
from typing import TYPE_CHECKING

import pytest
from projects import (
    HANG_GUARD,
    make_project,
    progress,
    ptx,
    q,
    spawn,
    task,
    wait_for,
)

from ptx.journal.schema import APPLICATION_ID
from ptx.journal.store import DB_NAME

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="a read-only bind mount or a small tmpfs can only be mounted as root"
)


def journal_files(state: Path) -> dict[str, bytes]:
    """The journal and its -wal and -shm files, as they are on disk."""
    return {path.name: path.read_bytes() for path in sorted(state.glob(f"{DB_NAME}*"))}


def foreign_database(path: Path, application_id: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA application_id = {application_id}")
        db.execute("CREATE TABLE notes (body TEXT)")
        db.executemany("INSERT INTO notes VALUES (?)", [(f"note {n}",) for n in range(200)])
        db.commit()


def pragma(path: Path, name: str) -> object:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


# --- item 8: the journal is ptx's, or ptx leaves it alone -----------------------------------


@pytest.mark.parametrize("application_id", [0, 0x4C4F4F4B])
def test_another_programs_sqlite_file_is_refused_and_left_byte_for_byte(
    tmp_path: Path, application_id: int
) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    state = root / ".ptx"
    foreign_database(state / DB_NAME, application_id)
    before = journal_files(state)
    for command in (("run",), ("runs",), ("report",), ("plan",), ("run", "--resume")):
        result = ptx(root, *command)
        assert result.returncode == 2, (command, result.stderr)
        assert "an SQLite database of another program" in result.stderr
        assert "ptx leaves it unchanged" in result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert journal_files(state) == before  # not even switched to WAL: no -wal, no -shm


def test_a_new_journal_carries_ptx_application_id(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    assert ptx(root, "run").returncode == 0
    assert pragma(root / ".ptx" / DB_NAME, "application_id") == APPLICATION_ID


def test_a_journal_from_before_the_application_id_is_read_and_then_adopted(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    assert ptx(root, "run").returncode == 0
    path = root / ".ptx" / DB_NAME
    with contextlib.closing(sqlite3.connect(path)) as db:  # as every ptx before it left it
        db.execute("PRAGMA application_id = 0")
        db.commit()
    before = path.read_bytes()
    listed = ptx(root, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["status"] for row in json.loads(listed.stdout)] == ["succeeded"]
    assert path.read_bytes() == before  # reading never writes
    assert ptx(root, "run").returncode == 0
    assert pragma(path, "application_id") == APPLICATION_ID
    assert len(json.loads(ptx(root, "runs", "--json").stdout)) == 2


def damage(path: Path) -> None:
    """Overwrite the pages after the first two with noise (the header stays valid)."""
    page = int(str(pragma(path, "page_size")))
    size = path.stat().st_size
    assert size > 6 * page
    with path.open("r+b") as db:
        db.seek(2 * page)
        db.write(bytes(range(256)) * ((size - 2 * page) // 256))


def test_a_damaged_journal_is_refused_alike_by_run_runs_report_and_plan(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(n, "true") for n in range(1, 41)])
    assert ptx(root, "run").returncode == 0
    path = root / ".ptx" / DB_NAME
    damage(path)
    before = path.read_bytes()
    for command in (("run",), ("runs",), ("report",), ("plan",)):
        result = ptx(root, *command)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith(f"ptx: error: the journal {path} is damaged")
        assert "move it away" in result.stderr
        assert "Traceback" not in result.stderr
    assert path.read_bytes() == before  # the run wrote nothing into it
    wal = path.with_name(DB_NAME + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


# --- item 4: a run whose owner died, tasks it left in progress ------------------------------


def pgids(root: Path) -> list[int]:
    """The recorded process groups, read without writing (a writer's close would fold the
    WAL into the journal)."""
    path = root / ".ptx" / DB_NAME
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT pgid FROM attempts WHERE pgid IS NOT NULL").fetchall()
    return [pgid for (pgid,) in rows]


@contextlib.contextmanager
def killed_mid_run(root: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A `ptx run` killed with SIGKILL while task 1 runs; the task's group is killed on exit."""
    proc = spawn(root, "run", *args)
    try:
        wait_for(lambda: "started 1" in progress(root), "task 1 to start")
        wait_for(lambda: bool(pgids(root)), "task 1's group to be recorded")
        proc.kill()
        proc.wait(HANG_GUARD)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pgid in pgids(root):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def test_a_run_whose_owner_died_is_listed_as_crashed_before_any_run_reaps_it(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, [task(1, "sleep 60")])
    with killed_mid_run(root):
        state = root / ".ptx"
        listed = ptx(root, "runs", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert [row["status"] for row in rows] == ["crashed"]
        assert "crashed" in ptx(root, "runs").stdout.splitlines()[1]
        shown = ptx(root, "report", rows[0]["run_id"])
        assert shown.returncode == 2
        assert "(status crashed)" in shown.stderr
        with contextlib.closing(sqlite3.connect(state / DB_NAME)) as db:
            assert db.execute("SELECT status FROM runs").fetchall() == [("running",)]


def tasks_json_statuses(root: Path) -> dict[int, str]:
    document = json.loads((root / ".taskmaster" / "tasks" / "tasks.json").read_text())
    return {entry["id"]: entry["status"] for entry in document["master"]["tasks"]}


def test_tasks_a_crash_left_in_progress_go_back_to_pending_on_the_next_run(
    tmp_path: Path,
) -> None:
    gate = tmp_path / "go"
    tasks = [task(1, f"while [ ! -e {q(gate)} ]; do sleep 0.01; done"), task(2, "true")]
    root = make_project(tmp_path, tasks)
    with killed_mid_run(root, "--update-status", "-j", "1"):
        assert tasks_json_statuses(root) == {1: "in-progress", 2: "pending"}
    result = ptx(root, "run", "--update-status", "2")  # task 1 is not even asked for
    assert result.returncode == 0, result.stderr
    assert "crashed: 1 put back to pending" in result.stderr
    assert tasks_json_statuses(root) == {1: "pending", 2: "done"}


def test_resume_after_a_crash_puts_back_and_reruns_what_was_in_progress(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    tasks = [task(1, f"while [ ! -e {q(gate)} ]; do sleep 0.01; done"), task(2, "true", 1)]
    root = make_project(tmp_path, tasks, update_status=True)
    with killed_mid_run(root):
        assert tasks_json_statuses(root) == {1: "in-progress", 2: "pending"}
    gate.touch()
    result = ptx(root, "run", "--resume")
    assert result.returncode == 0, result.stderr
    assert "crashed: 1 put back to pending" in result.stderr
    assert tasks_json_statuses(root) == {1: "done", 2: "done"}


def test_a_run_stopped_by_ctrl_c_is_not_a_crash_and_keeps_in_progress(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    root = make_project(tmp_path, [task(1, f"while [ ! -e {q(gate)} ]; do sleep 0.01; done")])
    proc = spawn(root, "run", "--update-status")
    wait_for(lambda: "started 1" in progress(root), "task 1 to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(HANG_GUARD) == 130
    assert tasks_json_statuses(root) == {1: "in-progress"}
    result = ptx(root, "runs", "--json")
    assert [row["status"] for row in json.loads(result.stdout)] == ["interrupted"]


# --- item 4: read-only project, full disk (root: real mounts) -------------------------------


@contextlib.contextmanager
def mounted(*options: str, source: str, target: Path) -> Iterator[Path]:
    subprocess.run(["mount", *options, source, str(target)], check=True, timeout=HANG_GUARD)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True, timeout=HANG_GUARD)


@contextlib.contextmanager
def read_only(directory: Path, view: Path) -> Iterator[Path]:
    """`directory` seen read-only at `view`, through a bind mount remounted read-only."""
    view.mkdir()
    with mounted("--bind", source=str(directory), target=view):
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(view)], check=True, timeout=HANG_GUARD
        )
        yield view


@needs_root
def test_on_a_read_only_project_readers_work_and_run_exits_2_naming_the_cause(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "project", [task(1, "true"), task(2, "true", 1)])
    assert ptx(root, "run").returncode == 0
    before = journal_files(root / ".ptx")
    with read_only(root, tmp_path / "ro") as view:
        for command in (("plan",), ("runs",), ("report",), ("report", "--json")):
            result = ptx(view, *command)
            assert (result.returncode, result.stderr) == (0, ""), command
        assert "succeeded" in ptx(view, "runs").stdout
        for command in (("run",), ("run", "--resume"), ("run", "--update-status")):
            result = ptx(view, *command)
            assert result.returncode == 2, (command, result.stderr)
            assert result.stderr == (
                f"ptx: error: cannot write {view}/.ptx/run.lock: read-only file system\n"
            )
    assert journal_files(root / ".ptx") == before


@needs_root
def test_a_read_only_project_without_a_journal_is_planned_and_refuses_to_run(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "project", [task(1, "true")])
    with read_only(root, tmp_path / "ro") as view:
        assert ptx(view, "plan").returncode == 0
        result = ptx(view, "run")
        assert result.returncode == 2
        assert result.stderr == f"ptx: error: cannot write {view}/.ptx: read-only file system\n"
        runs = ptx(view, "runs")  # before a first run, nothing to list is no error
        assert (runs.returncode, runs.stderr) == (0, "ptx: no runs yet\n")


@needs_root
def test_on_a_full_disk_run_exits_2_naming_the_cause_and_readers_still_read(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=2m", source="tmpfs", target=disk):
        root = make_project(disk / "project", [task(1, "true")])
        assert ptx(root, "run").returncode == 0
        with (disk / "filler").open("wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        result = ptx(root, "run")
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert "no space left on device" in result.stderr
        assert str(root / ".ptx") in result.stderr
        assert "remove" not in result.stderr
        assert "move it away" not in result.stderr
        for command in (("plan",), ("runs",), ("report",)):
            read = ptx(root, *command)
            assert (read.returncode, read.stderr) == (0, ""), command


@needs_root
def test_a_disk_that_fills_during_a_run_ends_it_with_one_line_and_exit_2(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=2m", source="tmpfs", target=disk):
        fill = f"cat /dev/zero > {q(disk / 'filler')}; true"
        tasks = [task(1, fill), *(task(n, "echo more", 1) for n in range(2, 40))]
        root = make_project(disk / "project", tasks)
        result = ptx(root, "run", "-j", "1")
        assert result.returncode == 2, result.stderr
        last = result.stderr.splitlines()[-1]
        assert last.startswith("ptx: error: ")
        assert "no space left on device" in last
        assert "Traceback" not in result.stderr
        (disk / "filler").unlink()
        listed = ptx(root, "runs", "--json")
        assert [row["status"] for row in json.loads(listed.stdout)] == ["crashed"]


@needs_root
def test_a_crashed_run_left_in_the_wal_is_read_on_a_read_only_project(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", [task(1, "sleep 60")])
    with killed_mid_run(root):
        pass
    wal = root / ".ptx" / f"{DB_NAME}-wal"
    assert wal.stat().st_size > 0  # the run's commits are still only in the WAL
    with read_only(root, tmp_path / "ro") as view:
        listed = ptx(view, "runs", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [row["status"] for row in json.loads(listed.stdout)] == ["crashed"]
        assert ptx(view, "plan").returncode == 0
