"""Tests for plain mode: a real run's lines, every event kind, --quiet and --stream."""

from __future__ import annotations

import io
import re
import threading
import time
from typing import TYPE_CHECKING

from projects import make_project, ptx, task

from ptx.cli.plain import PlainView
from ptx.core.events import (
    BreakerChanged,
    Degraded,
    Notice,
    RunStarted,
    Status,
    TaskFinished,
    TaskOutput,
    TaskSkipped,
    TaskSpawned,
    TaskStarted,
    TaskWaiting,
)

if TYPE_CHECKING:
    from pathlib import Path

NO_FALLBACK = {"safety_thresholds": {"max_failure_rate": 1.0}}


def masked(text: str, run_id: str) -> list[str]:
    text = text.replace(run_id, "RUN")
    text = re.sub(r"^\d\d:\d\d:\d\d ", "T ", text, flags=re.MULTILINE)
    return re.sub(r"in \d+\.\d s", "in N s", text).splitlines()


def run_id_of(root: Path) -> str:
    (run_dir,) = (root / ".ptx" / "logs").iterdir()
    return run_dir.name


def test_the_plain_lines_of_a_real_run(tmp_path: Path) -> None:
    tasks = [
        task(1, "echo hi"),
        task(2, "echo oops; exit 3", 1),
        task(3, "true", 2),
        task(4, "true"),
    ]
    root = make_project(tmp_path, tasks, **NO_FALLBACK)
    result = ptx(root, "run", "-j", "1")
    assert result.returncode == 1
    assert masked(result.stderr, run_id_of(root)) == [
        f"T run RUN: 4 tasks, -j 1, logs in {root}/.ptx/logs/RUN",
        "T started 1: task 1",
        "T succeeded 1 in N s",
        "T started 2: task 2",
        "T failed 2 (exit 3) in N s",
        "T skipped 3: dependency 2 failed",
        "T started 4: task 4",
        "T succeeded 4 in N s",
        "T run RUN failed",
    ]


def test_quiet_keeps_failures_and_stream_prefixes_output_with_the_task_id(tmp_path: Path) -> None:
    tasks = [task(1, "echo one; echo two"), task(2, "printf 'bad\\nworse'; exit 2", 1)]
    root = make_project(tmp_path, tasks, **NO_FALLBACK)
    result = ptx(root, "run", "-j", "1", "--quiet", "--stream")
    assert result.returncode == 1
    assert masked(result.stderr, run_id_of(root)) == [
        "T 1| one",
        "T 1| two",
        "T 2| bad",
        "T 2| worse",
        "T failed 2 (exit 2) in N s",
    ]
    assert "FAILED: 2 failed (exit 2)" in result.stdout
    assert "timeline" not in result.stdout  # quiet: failures and the summary only


def test_without_stream_task_output_stays_in_the_log(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "echo secret-output")])
    result = ptx(root, "run", "--plain")
    assert result.returncode == 0
    assert "secret-output" not in result.stderr + result.stdout
    (log,) = (root / ".ptx" / "logs" / run_id_of(root)).iterdir()
    assert log.read_text() == "secret-output\n"


def lines_of(*events: object, quiet: bool = False) -> list[str]:
    stream = io.StringIO()
    view = PlainView(stream, quiet=quiet)
    for event in events:
        view(event)
    return [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]


EVENTS = (
    RunStarted(run_id="R", jobs=2, total=3, log_dir="/logs/R"),
    TaskWaiting(id="3", reason="resource db"),
    TaskStarted(id="3", title="[bold]x[/bold]", attempt=2, command="c", log="/l"),
    TaskSpawned(id="3", attempt=2, pid=123),
    TaskOutput(id="3", line="[red]literal[/red]"),
    TaskFinished(
        id="3",
        attempt=2,
        status=Status.TIMEOUT,
        exit_code=None,
        duration=1.25,
        log="/l",
        retry_in=2.0,
    ),
    TaskSkipped(id="4", reason="dependency 3 timeout"),
    BreakerChanged(resource="db", state="open", reason="5 failures", at=0.0),
    Degraded(reason="40% failed", at=0.0),
    Notice(message="heads up", warning=True),
)


def test_every_event_kind_has_its_line_and_markup_stays_literal() -> None:
    assert lines_of(*EVENTS) == [
        "run R: 3 tasks, -j 2, logs in /logs/R",
        "waiting 3: for resource db",
        "started 3 (attempt 2): [bold]x[/bold]",
        "3| [red]literal[/red]",
        "timeout 3 in 1.2 s, retry in 2.0 s",
        "skipped 4: dependency 3 timeout",
        "breaker db open: 5 failures",
        "warning: fell back to sequential, one task at a time: 40% failed",
        "warning: heads up",
    ]


def test_quiet_drops_progress_but_not_problems() -> None:
    assert lines_of(*EVENTS, quiet=True) == [
        "3| [red]literal[/red]",
        "timeout 3 in 1.2 s, retry in 2.0 s",
        "breaker db open: 5 failures",
        "warning: fell back to sequential, one task at a time: 40% failed",
        "warning: heads up",
    ]


class _SlowStream(io.StringIO):
    """Writes one character at a time and lets other threads run in between, as a pipe may
    take a long line in pieces: only the view's lock keeps a line whole."""

    def write(self, text: str) -> int:
        for character in text:
            super().write(character)
            time.sleep(0)
        return len(text)


def test_lines_written_from_many_threads_never_interleave() -> None:
    stream = _SlowStream()
    view = PlainView(stream)

    def shout(unit: str) -> None:
        for _ in range(20):  # each character costs a sleep: 160 lines are plenty
            view(TaskOutput(id=unit, line=unit * 50))

    threads = [threading.Thread(target=shout, args=(str(n),)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 160
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d (\d)\| \1{50}", line) for line in lines)
