"""The final report's table of tasks, fitted to the terminal: long titles and log paths give
way, ids and statuses never do."""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import TYPE_CHECKING

from rich.text import Text

from ptx.core.model import seconds_text

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from ptx.core.events import TaskResult

COLUMNS = ("id", "task", "status", "time", "tries", "exit", "log")
_RIGHT = frozenset({"id", "time", "tries", "exit"})
_TITLE, _LOG = 1, 6
TITLE_WIDTH = 60  # plan's, and the report's when the terminal has room
_SHORTEST_TITLE = 12


def task_table(
    tasks: Sequence[TaskResult], width: int, styles: Mapping[str, str]
) -> Iterator[Text]:
    """The table as one Text (a Rich Table measures every cell: seconds on thousands of
    tasks), then, when the log paths did not fit, where the logs are."""
    rows = [_row(task) for task in tasks]
    logs = _log_dir(tasks)
    named = logs is not None and _width(rows) > width  # each row names its file, once the place
    if named:
        rows = [
            (*row[:_LOG], _file_name(task) or row[_LOG])
            for task, row in zip(tasks, rows, strict=True)
        ]
    rows = _titles_fitted(rows, width)
    widths = _widths(rows)
    text = Text()
    text.append(_aligned(COLUMNS, widths) + "\n", style="bold")
    for task, row in zip(tasks, rows, strict=True):
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            padded = cell if last else _pad(cell, COLUMNS[i], widths[i])
            text.append(padded, style=styles.get(task.status.value, "") if i == 2 else "")
            text.append("\n" if last else "  ")
    text.rstrip()
    yield text
    if named and logs is not None:
        yield Text(f"logs: {relative(logs)}{os.sep}", style="dim")


def _file_name(task: TaskResult) -> str | None:
    return None if task.log is None else PurePath(task.log).name


def _row(task: TaskResult) -> tuple[str, ...]:
    duration = task.duration
    return (
        task.id,
        shortened(task.title),
        task.status.value,
        "" if duration is None else seconds_text(duration),
        str(task.attempts),
        "" if task.exit_code is None else str(task.exit_code),
        relative(task.log) if task.log else task.reason or "",
    )


def _log_dir(tasks: Sequence[TaskResult]) -> str | None:
    """The one directory every log is in (a run's logs are), or None."""
    places = {os.path.dirname(task.log) for task in tasks if task.log}  # noqa: PTH120 - str paths
    return places.pop() if len(places) == 1 else None


def _titles_fitted(rows: list[tuple[str, ...]], width: int) -> list[tuple[str, ...]]:
    """Titles shortened until the table fits `width`, but never below a dozen characters."""
    excess = _width(rows) - width
    if excess <= 0:
        return rows
    longest = max(len(row[_TITLE]) for row in rows)
    room = max(_SHORTEST_TITLE, longest - excess, len(COLUMNS[_TITLE]))
    return [(row[0], shortened(row[_TITLE], room), *row[2:]) for row in rows]


def shortened(title: str, room: int = TITLE_WIDTH) -> str:
    """A title on one line and at most `room` characters, ending in … when cut."""
    if not title.isprintable():
        title = " ".join(title.split())
    return title if len(title) <= room else title[: room - 1] + "…"


def _widths(rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(COLUMNS)]


def _width(rows: Sequence[Sequence[str]]) -> int:
    return sum(_widths(rows)) + 2 * (len(COLUMNS) - 1)


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> str:
    columns = zip(COLUMNS, cells, widths, strict=True)
    return "  ".join(_pad(cell, name, width) for name, cell, width in columns).rstrip()


def _pad(cell: str, column: str, width: int) -> str:
    return cell.rjust(width) if column in _RIGHT else cell.ljust(width)


def relative(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path
