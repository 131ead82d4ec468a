"""Tests for the log follower behind --stream: real files, a real ptx and a flood of output."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
from projects import HANG_GUARD, clean_environment, make_project, ptx, task
from watch import wait_with_peak_rss

from ptx.cli.follow import MAX_LINE_BYTES, LogFollower, last_line
from ptx.core.events import Notice, Status, TaskFinished, TaskOutput, TaskStarted

if TYPE_CHECKING:
    from pathlib import Path


def started(log: Path, unit: str = "1", attempt: int = 1) -> TaskStarted:
    return TaskStarted(id=unit, title="t", attempt=attempt, command="c", log=str(log))


def finished(log: Path, unit: str = "1", attempt: int = 1) -> TaskFinished:
    return TaskFinished(
        id=unit, attempt=attempt, status=Status.SUCCEEDED, exit_code=0, duration=0.1, log=str(log)
    )


def wait_until(seen: list[object], count: int) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only {len(seen)} events: {seen}"
        time.sleep(0.01)


def test_lines_appended_while_a_task_runs_arrive_in_order_before_it_finishes(
    tmp_path: Path,
) -> None:
    log = tmp_path / "1.log"
    seen: list[object] = []
    with LogFollower(seen.append) as follow, log.open("w") as out:
        follow(started(log))
        out.write("first\nsecond\r\nthi")
        out.flush()
        wait_until(seen, 3)
        assert seen[1:] == [TaskOutput(id="1", line="first"), TaskOutput(id="1", line="second")]
        out.write("rd\nno newline at the end")
        out.flush()
        follow(finished(log))
        follow(Notice(message="after"))
    assert [event.line for event in seen if isinstance(event, TaskOutput)] == [
        "first",
        "second",
        "third",
        "no newline at the end",
    ]
    assert isinstance(seen[-2], TaskFinished)
    assert seen[-1] == Notice(message="after")


def test_a_line_longer_than_the_cap_is_cut_and_the_rest_dropped(tmp_path: Path) -> None:
    log = tmp_path / "1.log"
    log.write_bytes(b"a" * (MAX_LINE_BYTES * 40) + b"\nshort\n" + b"b" * (MAX_LINE_BYTES + 1))
    seen: list[object] = []
    with LogFollower(seen.append) as follow:
        follow(started(log))
        follow(finished(log))
    lines = [event.line for event in seen if isinstance(event, TaskOutput)]
    assert lines == ["a" * MAX_LINE_BYTES + "…", "short", "b" * MAX_LINE_BYTES + "…"]


def test_each_attempt_is_followed_in_its_own_file_and_tasks_interleave(tmp_path: Path) -> None:
    first, retry, other = tmp_path / "1.log", tmp_path / "1.2.log", tmp_path / "2.log"
    first.write_text("try one\n")
    retry.write_text("try two\n")
    other.write_text("two says hi\n")
    seen: list[object] = []
    with LogFollower(seen.append) as follow:
        follow(started(first))
        follow(started(other, unit="2"))
        follow(finished(first))
        follow(started(retry, attempt=2))
        follow(finished(retry, attempt=2))
        follow(finished(other, unit="2"))
    outputs = [event for event in seen if isinstance(event, TaskOutput)]
    assert sorted((event.id, event.line) for event in outputs) == [
        ("1", "try one"),
        ("1", "try two"),
        ("2", "two says hi"),
    ]


def test_a_failing_downstream_raises_in_the_caller_when_the_follower_closes() -> None:
    def broken(_: object) -> None:
        raise BrokenPipeError

    with pytest.raises(BrokenPipeError), LogFollower(broken) as follow:
        follow(Notice(message="x"))


def test_last_line_is_what_a_terminal_would_show(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"x" * 10_000 + b"\nbuilding\n\x1b[32mok\x1b[0m 10%\r 50%\r\n\n")
    assert last_line(str(log), log.stat().st_size) == "50%"
    log.write_bytes(b"\x1b[1m[bold]done[/bold]\x1b[0m\n")
    assert last_line(str(log), log.stat().st_size) == "[bold]done[/bold]"
    assert last_line(str(tmp_path / "missing"), 10) == ""


def test_stream_with_200_mb_of_output_keeps_ptx_memory_bounded(tmp_path: Path) -> None:
    command = "head -c 200000000 /dev/zero | tr '\\0' a; printf '\\nthe end\\n'"
    root = make_project(tmp_path, [task(1, command)])
    err = (root / "ptx.err").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptx", "run", "--stream"],
        cwd=root,
        env=clean_environment(),
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    try:
        code, peak = wait_with_peak_rss(proc, HANG_GUARD)
        assert code == 0
    finally:
        err.close()
        if proc.poll() is None:
            proc.kill()
    lines = (root / "ptx.err").read_text().splitlines()
    output = [line.split(" ", 1)[1] for line in lines if " 1| " in line]
    assert output == ["1| " + "a" * MAX_LINE_BYTES + "…", "1| the end"]
    assert 0 < peak < 150 * 2**20


def test_stream_shows_the_output_of_quick_tasks(tmp_path: Path) -> None:
    # A quick command's log gets its name only as it is closed, after the command ended: the
    # follower must still find it before the task's `succeeded` line.
    tasks = [task(1, "echo hello"), task(2, "true"), task(3, "printf 'no newline'")]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run", "-j", "1", "--stream")
    assert result.returncode == 0, result.stderr
    lines = [line.split(" ", 1)[1] for line in result.stderr.splitlines()]
    assert [line for line in lines if "| " in line] == ["1| hello", "3| no newline"]
    succeeded = {line.split()[1]: i for i, line in enumerate(lines) if line.startswith("succeeded")}
    assert lines.index("1| hello") < succeeded["1"]
    assert lines.index("3| no newline") < succeeded["3"]
