"""Broken standard streams: a reader that leaves, a full disk behind stdout, streams closed at
start. The run goes on, the journal completes, the exit code says how the tasks did."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from projects import HANG_GUARD, attempts, clean_environment, make_project, ptx, q, task

from ptx.journal.store import Journal


def last_run_status(root: Path) -> str:
    with Journal.open(root / ".ptx") as journal:
        last = journal.last_run()
        assert last is not None
        return last.status


def gated_project(root: Path, *, fail: bool = False) -> Path:
    """Task 1 waits for `go` (so the test decides when ptx next has something to say), three
    more follow it; with `fail`, task 4 fails."""
    gate = f"while [ ! -e {q(root / 'go')} ]; do sleep 0.01; done; echo one"
    last = "echo four; exit 3" if fail else "echo four"
    return make_project(
        root,
        [task(1, gate), task(2, "echo two", 1), task(3, "echo three", 1), task(4, last, 2)],
    )


def run_closing(root: Path, redirect: str) -> subprocess.CompletedProcess[str]:
    """`ptx run` of a gated project with its gate open, under a redirection."""
    (root / "go").touch()
    return ptx(root, "run", redirect=redirect)


def into_a_pipe(
    root: Path, *args: str, first_line: bool, stderr: int | None = None
) -> tuple[int, bytes]:
    """ptx with stdout and stderr (unless given) on one pipe whose reader leaves after the
    first line (or at once), then opens the gate; the exit code and the line read."""
    reader, writer = os.pipe()
    with subprocess.Popen(
        [sys.executable, "-m", "ptx", *args],
        cwd=root,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        stdout=writer,
        stderr=writer if stderr is None else stderr,
    ) as process:
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            line = pipe.readline() if first_line else b""
        # The read end is closed: the next line ptx writes gets EPIPE.
        (root / "go").touch()
        return process.wait(timeout=HANG_GUARD), line


def test_a_run_outlives_the_reader_of_its_output_going_away(tmp_path: Path) -> None:
    """`ptx run 2>&1 | head -1`: every line after the first meets a closed pipe."""
    gated_project(tmp_path)
    code, first = into_a_pipe(tmp_path, "run", "-j", "2", first_line=True)
    assert b" run " in first
    assert code == 0
    assert last_run_status(tmp_path) == "succeeded"
    assert {record.task: record.status for record in attempts(tmp_path)} == dict.fromkeys(
        "1234", "succeeded"
    )


def test_a_failed_run_keeps_exit_1_when_its_reader_goes_away(tmp_path: Path) -> None:
    gated_project(tmp_path, fail=True)
    code, _ = into_a_pipe(tmp_path, "run", first_line=False)
    assert code == 1
    assert last_run_status(tmp_path) == "failed"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_device_loses_the_report_not_the_run(tmp_path: Path) -> None:
    gated_project(tmp_path)
    result = run_closing(tmp_path, "> /dev/full")
    assert result.returncode == 2  # the report could not be written: like any lost output
    assert result.stderr.splitlines()[-1] == (
        "ptx: error: cannot write to stdout: No space left on device"
    )
    assert "Traceback" not in result.stderr
    assert "succeeded 4" in result.stderr  # the progress on stderr went on
    assert last_run_status(tmp_path) == "succeeded"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_failed_run_with_stdout_on_a_full_device_still_exits_1(tmp_path: Path) -> None:
    gated_project(tmp_path, fail=True)
    result = run_closing(tmp_path, "> /dev/full")
    assert result.returncode == 1
    assert last_run_status(tmp_path) == "failed"


@pytest.mark.parametrize("redirect", [">&-", "2>&-", ">&- 2>&-"])
def test_a_run_with_a_standard_stream_closed_runs_and_exits_0(
    tmp_path: Path, redirect: str
) -> None:
    gated_project(tmp_path)
    result = run_closing(tmp_path, redirect)
    assert result.returncode == 0, result.stderr
    assert last_run_status(tmp_path) == "succeeded"
    # Nothing meant for stdout or stderr landed in a file ptx opened on the free number.
    for record in attempts(tmp_path):
        assert record.status == "succeeded"
    logs = sorted((tmp_path / ".ptx" / "logs").rglob("*.log"))
    assert [path.read_text() for path in logs] == ["one\n", "two\n", "three\n", "four\n"]
    if redirect == "2>&-":
        assert "id  task" in result.stdout  # the report still reaches stdout


def test_plan_into_a_reader_that_left_exits_0_without_a_traceback(tmp_path: Path) -> None:
    make_project(tmp_path, [task(n, "true") for n in range(1, 3001)])
    with (tmp_path / "err").open("wb") as err:
        code, _ = into_a_pipe(tmp_path, "plan", first_line=False, stderr=err.fileno())
    assert code == 0
    assert (tmp_path / "err").read_text() == ""


def test_a_closed_stdout_leaves_plan_silent_and_successful(tmp_path: Path) -> None:
    make_project(tmp_path, [task(1, "true")])
    result = ptx(tmp_path, "plan", redirect=">&-")
    assert (result.returncode, result.stderr) == (0, "")
    assert ptx(tmp_path, "plan").returncode == 0


def test_a_live_table_whose_terminal_goes_away_lets_the_run_finish(tmp_path: Path) -> None:
    """The live table draws on a pseudo-terminal whose other end is then closed: every later
    write fails with EIO. The run still ends, journalled; the lost report makes it exit 2."""
    gated_project(tmp_path)
    leader, follower = pty.openpty()
    env = {**clean_environment(), "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    del env["NO_COLOR"]
    with (
        (tmp_path / "err").open("wb") as err,
        subprocess.Popen(
            [sys.executable, "-m", "ptx", "run"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=err,
        ) as process,
    ):
        os.close(follower)
        with os.fdopen(leader, "rb", buffering=0) as terminal:
            seen = b""
            while b"task 1" not in seen:  # the live table is drawn
                ready, _, _ = select.select([terminal], [], [], HANG_GUARD)
                assert ready, f"no live table in {HANG_GUARD:g} s: {seen!r}"
                seen += terminal.read(4096)
        (tmp_path / "go").touch()
        code = process.wait(timeout=HANG_GUARD)
    assert last_run_status(tmp_path) == "succeeded"
    assert code == 2
    assert (tmp_path / "err").read_text() == (
        "ptx: error: cannot write to stdout: Input/output error\n"
    )
