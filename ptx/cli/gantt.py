"""The run's timeline as lines of characters: one row per task, or per worker slot when many."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ptx.core.model import seconds_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ptx.core.events import RunResult, TaskResult

PER_TASK_LIMIT = 30  # more rows than this stop reading as a picture: draw worker slots instead
MIN_WIDTH = 40
# Succeeded work alternates between two marks so that back-to-back tasks on one slot stay apart.
_DONE_MARKS = ("#", "=")
_STATUS_MARK = {"failed": "x", "timeout": "x", "memory-exceeded": "x", "interrupted": "~"}
_WAIT = "."  # between a task's attempts: waiting to retry, not running
# Every character a timeline may use, in the order the legend names them.
_MEANING = {
    "#": "ran",
    "=": "ran (the next task)",
    "x": "failed",
    "~": "interrupted",
    _WAIT: "retry wait",
}


def gantt_lines(result: RunResult, width: int = 80) -> list[str]:
    """The timeline of the tasks that ran, `width` characters wide at most; [] if none ran."""
    ran = sorted(
        (task for task in result.tasks if task.started_at is not None),
        key=lambda task: (task.started_at, task.id),
    )
    if not ran:
        return []
    per_task = len(ran) <= PER_TASK_LIMIT
    rows = _task_rows(ran) if per_task else _slot_rows(ran)
    label_width = max(len(label) for label, _ in rows)
    columns = max(MIN_WIDTH, width) - label_width - 3  # "label |...|"
    start, wall = result.started_at, max(result.ended_at - result.started_at, 1e-9)
    scale = columns / wall
    lines = [_header(per_task=per_task, wall=wall, columns=columns)]
    used: set[str] = set()
    for label, tasks in rows:
        cells = [" "] * columns
        for index, task in enumerate(tasks):
            _draw(cells, task, start, scale, _mark(task, index))
        used.update(cells)
        lines.append(f"{label.rjust(label_width)} |{''.join(cells)}|")
    lines.append(_axis(label_width, columns, wall))
    lines.append(" " * (label_width + 2) + legend(used))
    return lines


def legend(used: set[str]) -> str:
    """What each character drawn means, only those drawn: "# ran, x failed"."""
    return ", ".join(f"{mark} {meaning}" for mark, meaning in _MEANING.items() if mark in used)


def _task_rows(ran: Sequence[TaskResult]) -> list[tuple[str, list[TaskResult]]]:
    return [(task.id, [task]) for task in ran]


def _slot_rows(ran: Sequence[TaskResult]) -> list[tuple[str, list[TaskResult]]]:
    """Give each task the lowest slot free when it started, as a pool hands out workers.

    A retried task spans its backoff too, so a run can need more slots than it had workers.
    """
    # Every run's report loads this module for seconds_text; only big timelines need slots.
    from ptx.outputs.trace import worker_slots  # noqa: PLC0415 - only many tasks are drawn by slot

    intervals = [
        (task.started_at or 0.0, math.inf if task.ended_at is None else task.ended_at)
        for task in ran
    ]
    slots: dict[int, list[TaskResult]] = {}  # slots appear in number order
    for task, slot in zip(ran, worker_slots(intervals), strict=True):
        slots.setdefault(slot, []).append(task)
    return [(f"w{number}", tasks) for number, tasks in slots.items()]


def _mark(task: TaskResult, index: int) -> str:
    return _STATUS_MARK.get(task.status.value, _DONE_MARKS[index % 2])


def _draw(cells: list[str], task: TaskResult, start: float, scale: float, mark: str) -> None:
    """The task's attempts in `mark`, the waits between them as `_WAIT`; the last attempt
    carries the task's outcome, the earlier ones failed."""
    began = task.started_at if task.started_at is not None else start
    ended = task.ended_at if task.ended_at is not None else began
    spans = task.spans or ((began, ended),)
    _fill(cells, (spans[0][0], spans[-1][1]), start, scale, _WAIT)
    for index, span in enumerate(spans):
        final = index == len(spans) - 1
        _fill(cells, span, start, scale, mark if final else _STATUS_MARK["failed"])


def _fill(
    cells: list[str], span: tuple[float, float], start: float, scale: float, mark: str
) -> None:
    began, ended = span
    first = min(len(cells) - 1, max(0, int((began - start) * scale)))
    last = min(len(cells), max(first + 1, math.ceil((ended - start) * scale)))  # always shows
    for column in range(first, last):
        cells[column] = mark


def _header(*, per_task: bool, wall: float, columns: int) -> str:
    per = "task" if per_task else "worker slot"
    return f"timeline per {per}, 1 column = {_short(wall / columns)}"


def _axis(label_width: int, columns: int, wall: float) -> str:
    left, right = "0", _short(wall)
    gap = max(1, columns + 2 - len(left) - len(right))
    return " " * (label_width + 1) + left + " " * gap + right


def _short(seconds: float) -> str:
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"
    return seconds_text(seconds)
