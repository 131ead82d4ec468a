"""Widths: the live table, the final report and the plan fit the terminal and shorten the
right things; help is readable at 80 columns. Rendered on Rich consoles of fixed widths and
through the CLI with COLUMNS set."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from projects import make_project, ptx, task
from test_live import Clock, frame, started, view_of

from ptx.cli import livetable
from ptx.core.events import RunStarted, Status, TaskFinished, TaskInfo, TaskWaiting

if TYPE_CHECKING:
    from pathlib import Path

    from ptx.cli.live import LiveView

TITLES = {
    "12": "Implement the OAuth2 authorization code flow with PKCE for the CLI",
    "13": "Write integration tests for the billing webhooks and their retries",
    "14": "Migrate the user settings table to the new schema without downtime",
    "15": "Document the deployment pipeline and the rollback procedure",
    "16": "Add rate limiting to the public search API",
}
OUTPUT = "npm WARN deprecated request@2.88.2: request has been deprecated, see issue 3142 now"
STATES = {
    "12": "▶ running",
    "13": "✓ succeeded",
    "14": "✗ memory-exceeded",
    "15": "… waiting",
    "16": "· queued",
}


def busy_view(tmp_path: Path, width: int) -> tuple[LiveView, list[str]]:
    view, console, clock = view_of(width)
    infos = tuple(
        TaskInfo(id=unit, title=title, dependencies=(), estimate=300.0)
        for unit, title in TITLES.items()
    )
    view(RunStarted(run_id="20261205-010000-abcd", jobs=4, total=5, log_dir="", tasks=infos))
    for unit in ("12", "13", "14"):
        log = tmp_path / f"{unit}.log"
        log.write_text(OUTPUT + "\n")
        view(started(unit, log))
    advance(clock, 125.0)
    for unit, status in (("13", Status.SUCCEEDED), ("14", Status.MEMORY_EXCEEDED)):
        view(TaskFinished(id=unit, attempt=1, status=status, exit_code=0, duration=125, log=""))
    view(TaskWaiting(id="15", reason="resource db"))
    return view, frame(view, console)


def advance(clock: Clock, seconds: float) -> None:
    clock.now += seconds


@pytest.mark.parametrize("width", [60, 70, 80, 100])
def test_the_live_table_keeps_ids_states_and_elapsed_whole(tmp_path: Path, width: int) -> None:
    _, lines = busy_view(tmp_path, width)
    assert all(len(line) <= width for line in lines), lines
    headers = lines[1].split()
    assert {"id", "state", "elapsed"} <= set(headers)
    assert set(headers) <= set(livetable.COLUMNS)  # no header is ever cut
    rows = {line.split()[0]: line for line in lines[2:7]}
    assert set(rows) == set(TITLES)  # every id whole
    for unit, state in STATES.items():
        assert state in rows[unit], (width, rows[unit])
    assert "2m05s" in rows["12"]  # elapsed


def shown_text(lines: list[str]) -> int:
    return sum(len(line.replace(" ", "").replace("…", "")) for line in lines[1:7])


def test_a_wider_terminal_never_shows_less(tmp_path: Path) -> None:
    shown = [shown_text(busy_view(tmp_path, width)[1]) for width in (50, 60, 70, 80, 100, 140)]
    assert shown == sorted(shown), shown


def test_title_and_output_shrink_first_and_no_column_narrows_on_a_wider_terminal() -> None:
    natural = dict.fromkeys(livetable.COLUMNS, 80) | {"id": 2, "state": 17, "elapsed": 7}
    natural |= {"try": 3, "eta": 5, "cpu": 4, "mem": 4}
    before: dict[str, int] = {}
    for width in range(20, 240):
        now = livetable.widths(natural, width)
        assert sum(now.values()) + livetable.GAP * (len(now) - 1) <= max(width, 30)
        assert {name: now[name] for name in livetable.ESSENTIAL} == {
            "id": 2,
            "state": 17,
            "elapsed": 7,
        }
        for name, size in before.items():
            assert now.get(name, 0) >= size, (width, name)
        before = now
    at_80 = livetable.widths(natural, 80)
    assert list(at_80) == ["id", "task", "state", "elapsed", "output"]


# --- the final report -------------------------------------------------------------------------


def test_the_report_table_fits_the_terminal_with_long_log_paths(tmp_path: Path) -> None:
    deep = tmp_path / "a-rather-long-directory-name" / "and-another-one-below-it"
    deep.mkdir(parents=True)
    tasks = [
        task(int(unit), f"echo {unit}; exit {int(unit) % 2}", title=title)
        for unit, title in TITLES.items()
    ]
    root = make_project(deep, tasks)
    result = ptx(root, "run", "--plain", environ={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    table = lines[: lines.index(next(line for line in lines if line.startswith("logs: ")))]
    assert table[0].split() == ["id", "task", "status", "time", "tries", "exit", "log"]
    assert all(len(line) <= 80 for line in table), table
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == set(TITLES)
    assert rows["13"].rstrip().endswith("13.log")
    assert any(line.startswith("logs: .ptx/logs/") for line in lines)


# --- plan, piped --------------------------------------------------------------------------------


def test_plan_piped_never_cuts_ids_or_priorities(tmp_path: Path) -> None:
    tasks = [
        task(int(unit), "true", title=title * 2, priority="medium")
        for unit, title in TITLES.items()
    ]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "plan", environ={"COLUMNS": None})  # piped: no terminal, no COLUMNS
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.match(r"\s*\d*\s+1[2-6]\s", line)]
    assert len(rows) == 5, result.stdout
    for line in rows:
        assert line.rstrip().endswith("medium"), line
        assert re.search(r"\s(1[2-6])\s", line)


# --- help -------------------------------------------------------------------------------------

COMMANDS = ["validate", "plan", "run", "report", "runs", "config"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_readable_at_80_columns(tmp_path: Path, command: str | None) -> None:
    args = [command, "--help"] if command else ["--help"]
    result = ptx(tmp_path, *args, environ={"COLUMNS": "80", "TERM": "xterm"})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in result.stdout  # nothing is cut short
