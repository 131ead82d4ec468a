"""Plain mode: one timestamped line per run event, nothing rewritten; for CI, pipes and logs."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from ptx.core.events import (
    BreakerChanged,
    Degraded,
    Notice,
    RunFinished,
    RunStarted,
    StartsHeld,
    Status,
    TaskFinished,
    TaskOutput,
    TaskSkipped,
    TaskStarted,
    TaskWaiting,
)
from ptx.core.model import counted


class PlainView:
    """A listener that writes lines to a stream (stderr: progress is a message, not data).

    Events come from the scheduler thread and from pool threads, so each line is written
    whole under a lock. `quiet` keeps failures, notices and streamed output (asked for
    explicitly with --stream) and drops the rest.
    """

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream, self.quiet = stream, quiet
        self._lock = threading.Lock()

    def __call__(self, event: object) -> None:
        line = self._line(event)
        if line is not None:
            stamped = f"{time.strftime('%H:%M:%S')} {line}\n"
            with self._lock:
                self.stream.write(stamped)
                self.stream.flush()

    def _line(self, event: object) -> str | None:
        line = _always(event)
        if line is not None or self.quiet:
            return line
        return _progress(event)


_PROGRESS = frozenset({Status.SUCCEEDED, Status.INTEGRATING})  # not worth a line with --quiet


def _always(event: object) -> str | None:
    """Lines that even --quiet prints: what went wrong, what changed how the run runs."""
    if isinstance(event, Notice):
        return ("warning: " if event.warning else "") + event.message
    if isinstance(event, TaskFinished) and event.status not in _PROGRESS:
        return _finished(event)
    if isinstance(event, TaskOutput):
        return f"{event.id}| {event.line}"
    if isinstance(event, BreakerChanged):
        return event.text
    if isinstance(event, Degraded):
        return f"warning: {event.text}"
    return None


def _progress(event: object) -> str | None:  # noqa: PLR0911 - one return per event kind
    if isinstance(event, RunStarted):
        tasks = counted(event.total, "task")
        return f"run {event.run_id}: {tasks}, -j {event.jobs}, logs in {event.log_dir}"
    if isinstance(event, TaskStarted):
        again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        return f"started {event.id}{again}: {event.title}"
    if isinstance(event, TaskFinished):
        return _finished(event)
    if isinstance(event, TaskSkipped):
        return f"skipped {event.id}: {event.reason}"
    if isinstance(event, TaskWaiting):
        return f"waiting {event.id}: for {event.reason}"
    if isinstance(event, StartsHeld):
        return "starts no longer held" if event.guard is None else f"starts held by {event.guard}"
    if isinstance(event, RunFinished):
        return f"run {event.result.run_id} {event.result.status}"
    return None


def _finished(event: TaskFinished) -> str:
    code = "" if event.exit_code in (None, 0) else f" (exit {event.exit_code})"
    line = f"{event.status.value} {event.id}{code} in {event.duration:.1f} s"
    if event.error is not None:
        line += f": {event.error}"
    if event.retry_in is not None:
        line += f", retry in {event.retry_in:.1f} s"
    return line
