"""Tests for the live table: frames through Rich's recording console, real process trees, and
a real ptx in a pseudo-terminal."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest
from builders import SCRIPTS
from projects import HANG_GUARD, clean_environment, make_project, q, task
from rich.console import Console

from ptx.cli.live import LiveView
from ptx.cli.treeprobe import TreeProbe
from ptx.core.events import (
    BreakerChanged,
    Degraded,
    Notice,
    RunStarted,
    Status,
    TaskFinished,
    TaskInfo,
    TaskSkipped,
    TaskSpawned,
    TaskStarted,
    TaskWaiting,
)

if TYPE_CHECKING:
    from pathlib import Path


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def view_of(width: int, height: int = 40) -> tuple[LiveView, Console, Clock]:
    console = Console(record=True, width=width, height=height, file=io.StringIO())
    clock = Clock()
    return LiveView(console, clock=clock), console, clock


def frame(view: LiveView, console: Console) -> list[str]:
    console.print(view.render())
    return [line.rstrip() for line in console.export_text().splitlines()]


def infos(count: int, estimate: float | None = 10.0) -> tuple[TaskInfo, ...]:
    return tuple(
        TaskInfo(id=str(n), title=f"task {n}", dependencies=(), estimate=estimate)
        for n in range(1, count + 1)
    )


def started(unit: str, log: Path, attempt: int = 1) -> TaskStarted:
    return TaskStarted(id=unit, title=f"task {unit}", attempt=attempt, command="c", log=str(log))


def finished(unit: str, status: Status = Status.SUCCEEDED) -> TaskFinished:
    code = 0 if status is Status.SUCCEEDED else 1
    return TaskFinished(id=unit, attempt=1, status=status, exit_code=code, duration=1.0, log="")


def small_run(view: LiveView, clock: Clock, tmp_path: Path) -> None:
    title = "[bold]x[/bold] [i]y[/i]"
    tasks = (
        TaskInfo(id="1", title=title, dependencies=(), estimate=10.0),
        TaskInfo(id="2", title="second", dependencies=(), estimate=None),
        TaskInfo(id="3", title="third", dependencies=("1", "2"), estimate=4.0),
    )
    view(RunStarted(run_id="R1", jobs=2, total=3, log_dir=str(tmp_path), tasks=tasks))
    log = tmp_path / "1.log"
    log.write_text("compiling\n\x1b[32m[red]half[/red] done\x1b[0m 10%\r 60%\n")
    view(started("1", log))
    view(TaskWaiting(id="2", reason="resource db"))
    view(Notice(message="[yellow]note[/yellow]", warning=True))
    clock.now += 3.0


def test_a_wide_frame_shows_every_column_and_markup_stays_literal(tmp_path: Path) -> None:
    view, console, clock = view_of(140)
    small_run(view, clock, tmp_path)
    lines = frame(view, console)
    # remaining: 7 s of task 1, or of task 2 (the mean estimate), then task 3's 4 s
    assert lines[0] == (
        "ptx R1  0/3 done  1 running  0 failed  0 skipped  workers 1/2  elapsed 3.0s"
        "  remaining ~11s"
    )
    assert lines[1].split() == [
        *("id", "task", "state", "try", "elapsed", "eta", "cpu", "mem", "output"),
    ]
    row = lines[2]
    assert "[bold]x[/bold] [i]y[/i]" in row
    assert "▶ running" in row
    assert "3.0s" in row
    assert "7.0s" in row  # the estimate (10 s) minus what has elapsed
    assert row.endswith("60%")  # the last thing a terminal would show of the log
    assert "… waiting" in lines[3]
    assert lines[3].endswith("resource db")
    assert "· queued" in lines[4]
    assert lines[5] == "[yellow]note[/yellow]"


def test_a_narrow_frame_drops_columns_but_keeps_id_state_and_elapsed(tmp_path: Path) -> None:
    view, console, clock = view_of(30)
    small_run(view, clock, tmp_path)
    lines = frame(view, console)
    assert all(len(line) <= 30 for line in lines)
    assert lines[0].startswith("0/3 done  1 running  0 failed")  # the run id went first
    assert lines[1].split() == ["id", "state", "elapsed"]
    assert lines[2].split() == ["1", "▶", "running", "3.0s"]


def test_finished_failed_skipped_and_retried_tasks_show_their_states(tmp_path: Path) -> None:
    view, console, _ = view_of(120)
    view(RunStarted(run_id="R", jobs=2, total=4, log_dir=str(tmp_path), tasks=infos(4)))
    for unit in ("1", "2", "3"):
        view(started(unit, tmp_path / f"{unit}.log"))
    view(finished("1"))
    view(finished("2", Status.FAILED))
    retry = TaskFinished(
        id="3", attempt=1, status=Status.FAILED, exit_code=1, duration=1.0, log="", retry_in=4.0
    )
    view(retry)
    view(TaskSkipped(id="4", reason="dependency 2 failed"))
    lines = frame(view, console)
    assert "1/4 done  0 running  1 failed  1 skipped" in lines[0]
    states = {line.split()[0]: line for line in lines[2:6]}
    assert "✓ succeeded" in states["1"]
    assert "✗ failed" in states["2"]
    assert "↻ retry" in states["3"]
    assert states["3"].endswith("retry in 4 s")
    assert "↷ skipped" in states["4"]
    assert states["4"].endswith("dependency 2 failed")


def test_isolated_tasks_show_integrating_then_conflict_or_succeeded(tmp_path: Path) -> None:
    view, console, _ = view_of(120)
    view(RunStarted(run_id="R", jobs=2, total=3, log_dir=str(tmp_path), tasks=infos(3)))
    for unit in ("1", "2", "3"):
        view(started(unit, tmp_path / f"{unit}.log"))
        view(finished(unit, Status.INTEGRATING))
    lines = frame(view, console)
    assert "0/3 done  0 running  0 failed" in lines[0]
    states = {line.split()[0]: line for line in lines[2:5]}
    assert all("⇄ integrating" in states[unit] for unit in ("1", "2", "3"))
    view(finished("1"))
    conflict = TaskFinished(
        id="2",
        attempt=1,
        status=Status.CONFLICT,
        exit_code=0,
        duration=1.0,
        log="",
        error="conflicted in a.py",
    )
    view(conflict)
    lines = frame(view, console)[-6:]
    assert "1/3 done  0 running  1 failed" in lines[0]
    states = {line.split()[0]: line for line in lines[2:5]}
    assert "✓ succeeded" in states["1"]
    assert "✗ conflict" in states["2"]
    assert "⇄ integrating" in states["3"]


def test_with_hundreds_of_tasks_the_rows_that_matter_fit_the_terminal(tmp_path: Path) -> None:
    view, console, _ = view_of(120, height=20)
    view(RunStarted(run_id="R", jobs=4, total=300, log_dir=str(tmp_path), tasks=infos(300)))
    for unit in range(1, 41):
        view(started(str(unit), tmp_path / "x.log"))
        if unit <= 36:
            view(finished(str(unit), Status.FAILED if unit == 5 else Status.SUCCEEDED))
    view(TaskWaiting(id="250", reason="a free slot"))
    view(BreakerChanged(resource="db", state="open", reason="5 failures", at=0.0))
    lines = frame(view, console)
    assert len(lines) <= 20
    shown = [line.split()[0] for line in lines[2:] if line[:1] == " " or line[:1].isdigit()]
    assert shown[:4] == ["37", "38", "39", "40"]  # running first
    assert shown[4] == "5"  # then what failed
    assert shown[5] == "36"  # then what just finished, newest first
    assert "250" in shown  # next up, with why
    assert any(re.fullmatch(r"… and \d+ more", line) for line in lines)
    assert lines[-1] == "breaker db open: 5 failures"


def test_the_fall_back_to_sequential_is_one_notice_that_says_so(tmp_path: Path) -> None:
    view, console, _ = view_of(120)
    view(RunStarted(run_id="R", jobs=4, total=3, log_dir=str(tmp_path), tasks=infos(3)))
    view(Degraded(reason="3 of 5 finished tasks failed (60%)", at=0.0))
    notices = [line for line in frame(view, console) if "sequential" in line]
    assert notices == [
        "fell back to sequential, one task at a time: 3 of 5 finished tasks failed (60%)"
    ]


def test_events_from_many_threads_while_frames_are_drawn(tmp_path: Path) -> None:
    view, console, _ = view_of(100, height=30)
    view(RunStarted(run_id="R", jobs=8, total=800, log_dir=str(tmp_path), tasks=infos(800)))

    def work(offset: int) -> None:
        for n in range(offset, 800, 8):
            view(started(str(n + 1), tmp_path / "none.log"))
            view(TaskSpawned(id=str(n + 1), attempt=1, pid=os.getpid()))
            view(finished(str(n + 1)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        view.render()
    for thread in threads:
        thread.join()
    assert "800/800 done  0 running" in frame(view, console)[0]


def test_cpu_and_memory_cover_the_whole_process_tree(tmp_path: Path) -> None:
    shell = f"{q(sys.executable)} {q(SCRIPTS / 'busy.py')} & sleep 30"
    parent = subprocess.Popen(["sh", "-c", shell], start_new_session=True)
    try:
        probe = TreeProbe()
        deadline = time.monotonic() + HANG_GUARD
        cpu, rss = 0.0, 0
        while cpu < 20 or rss < 60 * 2**20:  # the busy child, not the sleeping shell
            assert time.monotonic() < deadline, (cpu, rss)
            probe.sample([parent.pid])
            cpu_now, rss_now = probe.usage(parent.pid)
            cpu, rss = cpu_now or 0.0, rss_now or 0
            time.sleep(0.2)
        probe.sample([None, 999_999_999])
        assert probe.usage(999_999_999) == (0.0, 0)
    finally:
        os.killpg(parent.pid, 9)
        parent.wait()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_real_run_on_a_terminal_shows_the_table_then_only_the_report(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "echo working; sleep 1"), task(2, "sleep 1", 1)])
    primary, secondary = os.openpty()
    env = {key: value for key, value in clean_environment().items() if key != "NO_COLOR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptx", "run"],
        cwd=root,
        env={**env, "TERM": "xterm", "COLUMNS": "120", "LINES": "30"},
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    output = bytearray()
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if select.select([primary], [], [], 0.1)[0]:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    os.close(primary)
    assert proc.wait(HANG_GUARD) == 0
    text = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", output.decode("utf-8", "replace"))
    assert "▶ running" in text  # frames were drawn
    assert "working" in text  # with the task's last line
    assert "\x1b[?25l" in output.decode()  # the cursor was hidden while it ran ...
    assert output.decode().rstrip().count("\x1b[?25h") >= 1  # ... and given back
    report = text[text.rindex("id  task") :]
    assert "▶" not in report  # the table is gone when the report prints
    assert "speedup" in report


def test_a_notice_before_the_run_starts_shows_while_ptx_waits_for_a_dask_worker() -> None:
    view, console, _clock = view_of(120)
    view(Notice(message="waiting for a first Dask worker at tcp://h:8786 (up to 30 s)"))
    assert "waiting for a first Dask worker at tcp://h:8786 (up to 30 s)" in frame(view, console)
