"""The live Rich table on a terminal: events only record state, Live's thread draws it."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group
from rich.live import Live
from rich.text import Text

from ptx.cli import livetable
from ptx.cli.follow import last_line
from ptx.cli.treeprobe import TreeProbe
from ptx.cli.ui import STATUS_STYLE, short_duration, short_size
from ptx.core.events import (
    FAILURES,
    BreakerChanged,
    Degraded,
    Notice,
    RunStarted,
    StartsHeld,
    Status,
    TaskFinished,
    TaskSkipped,
    TaskSpawned,
    TaskStarted,
    TaskWaiting,
)
from ptx.core.model import id_key
from ptx.outputs.report import graph_of, remaining_bound

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from rich.console import Console, RenderableType
    from rich.table import Table
    from typing_extensions import Self

    from ptx.core.model import TaskId

REFRESHES_PER_SECOND = 4  # "a few times a second"; each frame is drawn on Live's own thread
SAMPLE_SECONDS = 1.0  # process-tree CPU and memory, and the remaining-time prediction
RECENT = 20  # finished and failed tasks remembered for "just finished"
JUST_FINISHED = 3  # shown before the tasks that wait; more only if there is room
NOTICES = 3  # shown under the table; all are printed again when the view closes
_SYMBOL = {
    "queued": "·",
    "waiting": "…",
    "running": "▶",
    "retry": "↻",
    "succeeded": "✓",
    "failed": "✗",
    "timeout": "⏱",
    "memory-exceeded": "✗",
    "skipped": "↷",
    "interrupted": "■",
    "not-run": "·",
    "integrating": "⇄",
    "conflict": "✗",
}
# Counted as failed in the header (rows keep a status's value as their state); interrupted
# tasks are counted apart: they did not fail, they were stopped.
_FAILED = frozenset(status.value for status in FAILURES | {Status.CONFLICT})
_BAD = _FAILED | {Status.INTERRUPTED.value}
_OPEN = frozenset({"queued", "waiting", "running", "retry"})


@dataclasses.dataclass(slots=True)
class _Row:
    """One task as the view knows it; changed only under the view's lock."""

    id: TaskId
    title: str
    estimate: float | None
    state: str = "queued"
    attempt: int = 0
    started: float | None = None  # monotonic, of the current attempt
    ended: float | None = None
    log: str | None = None
    pid: int | None = None
    reason: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Snapshot:
    """What one frame draws, copied under the lock so that drawing never holds it."""

    rows: list[_Row]
    hidden: int
    counts: Counter[str]
    running: int
    notices: list[tuple[str, str]]
    held: str | None


class LiveView:
    """A listener (thread-safe; it never draws) and a context manager that shows the table."""

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.console, self.clock = console, clock
        self._lock = threading.Lock()
        self._rows: dict[TaskId, _Row] = {}
        self._graph = graph_of({}, ())  # the run's, for the predictions
        self._running: dict[TaskId, None] = {}  # dicts as insertion-ordered sets
        self._waiting: dict[TaskId, None] = {}
        self._recent: deque[TaskId] = deque(maxlen=RECENT)
        self._failed: deque[TaskId] = deque(maxlen=RECENT)
        self._counts: Counter[str] = Counter()
        self._notices: list[tuple[str, str]] = []
        self._run_id, self._jobs, self._began = "", 1, clock()
        self._held: str | None = None  # the machine guard holding every start now
        # Touched only by the drawing thread (and `_sampled` once more when the run starts):
        self._probe = TreeProbe()
        self._tails: dict[str, tuple[int, str]] = {}  # log -> (size when read, last line)
        self._sampled = -SAMPLE_SECONDS
        self._left: float | None = None
        self._live = Live(
            console=console,
            get_renderable=self.render,
            refresh_per_second=REFRESHES_PER_SECOND,
            transient=True,  # the final report takes its place
        )

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._live.stop()
        with self._lock:
            notices = list(self._notices)
        for message, style in notices:  # they vanished with the table: keep them on screen
            self.console.print(Text(message, style=style))

    def __call__(self, event: object) -> None:
        now = self.clock()
        with self._lock:
            if isinstance(event, RunStarted):
                self._run_started(event, now)
            elif isinstance(event, TaskStarted):
                self._task_started(event, now)
            elif isinstance(event, TaskFinished):
                self._task_finished(event, now)
            elif isinstance(event, TaskSpawned):
                row = self._row(event.id)
                row.pid = event.pid if event.attempt == row.attempt else row.pid
            elif isinstance(event, TaskWaiting | TaskSkipped):
                self._not_running(event)
            elif isinstance(event, StartsHeld):
                self._held = event.guard
            else:
                self._notice(event)

    def _row(self, unit: TaskId) -> _Row:
        return self._rows.setdefault(unit, _Row(id=unit, title="", estimate=None))

    def _run_started(self, event: RunStarted, now: float) -> None:
        self._run_id, self._jobs, self._began = event.run_id, event.jobs, now
        self._sampled = now - SAMPLE_SECONDS  # the next frame predicts: there is work now
        for info in event.tasks:
            self._rows[info.id] = _Row(id=info.id, title=info.title, estimate=info.estimate)
        self._graph = graph_of({info.id: info.dependencies for info in event.tasks}, ())

    def _task_started(self, event: TaskStarted, now: float) -> None:
        row = self._row(event.id)
        row.title = row.title or event.title
        row.state, row.attempt, row.log, row.pid = "running", event.attempt, event.log, None
        row.started, row.ended, row.reason = now, None, ""
        self._running[event.id] = None
        self._waiting.pop(event.id, None)

    def _task_finished(self, event: TaskFinished, now: float) -> None:
        row = self._row(event.id)
        self._running.pop(event.id, None)
        row.ended, row.log = now, event.log or row.log
        if event.retry_in is not None:
            row.state, row.reason = "retry", f"retry in {event.retry_in:.0f} s"
            return
        if event.status is Status.INTEGRATING:  # its work waits for its merge
            row.state, row.reason = "integrating", "merging into the integration branch"
            self._recent.append(event.id)
            return
        row.state = event.status.value
        self._counts[row.state] += 1
        (self._failed if row.state in _BAD else self._recent).append(event.id)

    def _not_running(self, event: TaskWaiting | TaskSkipped) -> None:
        row = self._row(event.id)
        row.state = "waiting" if isinstance(event, TaskWaiting) else "skipped"
        row.reason = event.reason
        if isinstance(event, TaskWaiting):
            self._waiting[event.id] = None
        else:
            self._counts["skipped"] += 1
            self._waiting.pop(event.id, None)

    def _notice(self, event: object) -> None:
        if isinstance(event, Notice):
            self._notices.append((event.message, "yellow" if event.warning else "cyan"))
        elif isinstance(event, BreakerChanged):
            style = "cyan" if event.state == "closed" else "yellow"
            self._notices.append((event.text, style))
        elif isinstance(event, Degraded):
            self._notices.append((event.text, "bold yellow"))

    # --- drawing: on Live's refresh thread, never under the lock for long -------------------

    def render(self) -> RenderableType:
        """One frame sized to the console: header, the rows that matter, notices."""
        now = self.clock()
        width, height = self.console.size
        snapshot = self._snapshot(max(3, height - 4 - NOTICES))
        if now - self._sampled >= SAMPLE_SECONDS:
            self._sampled = now
            self._probe.sample([row.pid for row in snapshot.rows if row.state == "running"])
            self._left = self._predict(now)
        parts: list[RenderableType] = [self._header(snapshot, now, width)]
        parts.append(self._table(snapshot.rows, width, now))
        if snapshot.hidden:
            parts.append(Text(f"… and {snapshot.hidden} more", style="dim"))
        parts.extend(Text(message, style=style) for message, style in snapshot.notices)
        return Group(*parts)

    def _snapshot(self, room: int) -> _Snapshot:
        with self._lock:
            rows = [dataclasses.replace(self._rows[unit]) for unit in self._choose(room)]
            return _Snapshot(
                rows=rows,
                hidden=len(self._rows) - len(rows),
                counts=Counter(self._counts),
                running=len(self._running),
                notices=self._notices[-NOTICES:],
                held=self._held,
            )

    def _choose(self, room: int) -> list[TaskId]:
        """Every task when they fit, in id order; else what matters: running, failed, just
        finished, next up (waiting, with why), then whatever is queued."""
        if len(self._rows) <= room:
            return sorted(self._rows, key=id_key)
        queued = (row.id for row in self._rows.values() if row.state in _OPEN)
        picked: dict[TaskId, None] = {}
        recent = list(reversed(self._recent))
        groups: tuple[Iterable[TaskId], ...] = (
            self._running,
            reversed(self._failed),
            recent[:JUST_FINISHED],
            self._waiting,
            recent,
            queued,
        )
        for group in groups:
            for unit in group:
                if len(picked) >= room:
                    return list(picked)
                picked[unit] = None
        return list(picked)

    def _header(self, snapshot: _Snapshot, now: float, width: int) -> Text:
        """The run in one line; on a narrow terminal the least useful parts go first."""
        counts = snapshot.counts
        failed = sum(counts[state] for state in _FAILED)
        interrupted = counts[Status.INTERRUPTED.value]
        parts = [  # (text, style, droppable)
            (f"ptx {self._run_id}", "bold", True),
            (f"{counts['succeeded']}/{len(self._rows)} done", "green", False),
            (f"{snapshot.running} running", "", False),
            (f"{failed} failed", "bold red" if failed else "", False),
            (f"{counts['skipped']} skipped", "", True),
            (f"workers {snapshot.running}/{self._jobs}", "", True),
            (f"elapsed {short_duration(now - self._began)}", "", False),
            (f"remaining {self._remaining(now)}", "", False),
        ]
        if interrupted:
            parts.insert(4, (f"{interrupted} interrupted", "magenta", False))
        if snapshot.held is not None:
            parts.insert(2, (f"starts held: {snapshot.held}", "bold yellow", False))
        while sum(len(part) + 2 for part, _, _ in parts) > width and any(p[2] for p in parts):
            parts.remove(next(part for part in parts if part[2]))  # the first droppable goes
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, (part, style, _) in enumerate(parts):
            text.append(("  " if index else "") + part, style=style)
        return text

    def _table(self, rows: Sequence[_Row], width: int, now: float) -> Table:
        return livetable.table([self._cells(row, now) for row in rows], width)

    def _cells(self, row: _Row, now: float) -> dict[str, Text]:
        symbol, style = _SYMBOL.get(row.state, "?"), STATUS_STYLE.get(row.state, "")
        elapsed = None if row.started is None else (row.ended or now) - row.started
        cpu, rss = self._probe.usage(row.pid) if row.state == "running" else (None, None)
        return {
            "id": Text(row.id),
            "task": Text(row.title),  # a Text is never read as markup: "[bold]" stays literal
            "state": Text(f"{symbol} {row.state}", style=style),
            "try": Text(str(row.attempt) if row.attempt else ""),
            "elapsed": Text("" if elapsed is None else short_duration(elapsed)),
            "eta": Text(_eta(row, elapsed)),
            "cpu": Text("" if cpu is None else f"{cpu:.0f}%"),
            "mem": Text("" if rss is None else short_size(rss)),
            "output": Text(row.reason or self._last_line(row.log), style="dim"),
        }

    def _last_line(self, log: str | None) -> str:
        """The log's last line, re-read only when the file grew."""
        if log is None:
            return ""
        try:
            size = Path(log).stat().st_size
        except OSError:
            return ""
        cached = self._tails.get(log)
        if cached is None or cached[0] != size:
            cached = (size, last_line(log, size))
            self._tails[log] = cached
        return cached[1]

    def _remaining(self, now: float) -> str:
        """Predicted once a second, counted down in between; never under a second while work
        is left (a task past its estimate is not about to end for that)."""
        if self._left is None:
            return "?"
        if self._left <= 0:
            return "~0s"
        return "~" + short_duration(max(1.0, self._left - now + self._sampled))

    def _predict(self, now: float) -> float | None:
        """Remaining time as max(longest open chain, open work / workers) on the estimates
        (the mean one for a task without; with none at all, the mean duration of the tasks
        this run finished): the same bound the final report uses."""
        with self._lock:
            open_rows = [
                (row.id, row.estimate, row.started if row.state == "running" else None)
                for row in self._rows.values()
                if row.state in _OPEN
            ]
            measured = [
                row.ended - row.started
                for row in self._rows.values()
                if row.state == "succeeded" and row.started is not None and row.ended is not None
            ]
            shape = self._graph
        if not open_rows:
            return 0.0
        known = [estimate for _, estimate, _ in open_rows if estimate is not None] or measured
        if not known:
            return None
        mean = sum(known) / len(known)
        left = {
            unit: max(0.0, (mean if estimate is None else estimate) - (now - (started or now)))
            for unit, estimate, started in open_rows
        }
        return max(1.0, remaining_bound(left, shape, self._jobs))


def _eta(row: _Row, elapsed: float | None) -> str:
    if row.estimate is None or row.state not in _OPEN:
        return ""
    if row.state != "running" or elapsed is None:
        return short_duration(row.estimate)
    left = row.estimate - elapsed
    return short_duration(left) if left >= 0 else "+" + short_duration(-left)
