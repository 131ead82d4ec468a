"""What the header and the report count and predict: interrupted is not failed, what holds
starts is named, and the remaining time is measured when nothing was estimated."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from projects import HANG_GUARD, make_project, ptx, spawn, task, wait_for
from test_live import Clock, finished, frame, infos, started, view_of

from ptx.core.events import RunStarted, StartsHeld, Status

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


# --- interrupted is not failed ---------------------------------------------------------------


def test_the_header_counts_interrupted_tasks_apart_from_failed(tmp_path: Path) -> None:
    view, console, _ = view_of(140)
    view(RunStarted(run_id="R", jobs=3, total=3, log_dir=str(tmp_path), tasks=infos(3)))
    for unit in ("1", "2", "3"):
        view(started(unit, tmp_path / f"{unit}.log"))
    view(finished("1", Status.FAILED))
    view(finished("2", Status.INTERRUPTED))
    view(finished("3", Status.INTERRUPTED))
    header = frame(view, console)[0]
    assert "  1 failed  2 interrupted  " in header


def test_the_report_counts_interrupted_tasks_apart_from_failed(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    marks = tmp_path / "marks"
    tasks = [task(n, f"echo {n} >> marks; sleep 60") for n in (1, 2)] + [
        task(3, "exit 4"),
        task(4, "true", 1),
    ]
    root = make_project(tmp_path, tasks)
    background.append(proc := spawn(root, "run", "-j", "3"))
    wait_for(lambda: marks.exists() and len(marks.read_text().split()) == 2, "two tasks to start")
    wait_for(lambda: "failed 3" in (root / "ptx.err").read_text(), "task 3 to fail")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(HANG_GUARD) == 130
    report = ptx(root, "report").stdout
    assert "4 tasks: 1 failed, 2 interrupted, 1 not-run" in report
    assert "INTERRUPTED: 1\n" in report
    assert "INTERRUPTED: 2\n" in report
    assert "FAILED: 3 failed (exit 4)" in report
    assert "FAILED: 1" not in report
    assert "FAILED: 2" not in report


# --- what holds starts, right now -------------------------------------------------------------


def test_the_header_names_the_guard_that_holds_starts_now(tmp_path: Path) -> None:
    view, console, _ = view_of(140)
    view(RunStarted(run_id="R", jobs=3, total=3, log_dir=str(tmp_path), tasks=infos(3)))
    view(started("1", tmp_path / "1.log"))
    view(StartsHeld(guard="memory"))
    assert "starts held: memory" in frame(view, console)[0]
    view(StartsHeld(guard=None))
    assert "held" not in frame(view, console)[-0]


# --- remaining time --------------------------------------------------------------------------


def header_after(view_clock: tuple[object, object, Clock], seconds: float) -> str:
    view, console, clock = view_clock
    clock.now += seconds
    return frame(view, console)[0]  # type: ignore[arg-type]


def test_without_estimates_the_remaining_time_is_the_mean_of_this_run(tmp_path: Path) -> None:
    view, console, clock = view_of(140)
    tasks = infos(4, estimate=None)
    view(RunStarted(run_id="R", jobs=1, total=4, log_dir=str(tmp_path), tasks=tasks))
    view(started("1", tmp_path / "1.log"))
    assert frame(view, console)[0].endswith("remaining ?")  # nothing measured yet
    clock.now += 4.0
    view(finished("1"))
    view(started("2", tmp_path / "2.log"))
    clock.now += 1.0
    # Three tasks of 4 s left, one of them 1 s in, on one worker.
    assert frame(view, console)[0].endswith("remaining ~11s")


def test_the_remaining_time_never_reaches_zero_while_work_is_left(tmp_path: Path) -> None:
    view, console, clock = view_of(140)
    view(RunStarted(run_id="R", jobs=2, total=2, log_dir=str(tmp_path), tasks=infos(2, 2.0)))
    view(started("1", tmp_path / "1.log"))
    view(started("2", tmp_path / "2.log"))
    for _ in range(6):  # both run past their estimates
        clock.now += 0.9
        header = frame(view, console)[0]
        assert "remaining ~0" not in header
        assert "remaining ~" in header
    view(finished("1"))
    view(finished("2"))
    clock.now += 1.0
    assert frame(view, console)[0].endswith("remaining ~0s")
