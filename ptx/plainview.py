"""Plain mode: one timestamped line per run event, nothing rewritten; for CI, pipes and logs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from ptx.events import (
    Notice,
    RunFinished,
    RunStarted,
    Status,
    TaskFinished,
    TaskSkipped,
    TaskStarted,
)

if TYPE_CHECKING:
    from ptx.events import Event


class PlainView:
    """A listener that writes lines to a stream (stderr: progress is a message, not data)."""

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream, self.quiet = stream, quiet

    def __call__(self, event: Event) -> None:
        line = self._line(event)
        if line is not None:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            self.stream.flush()

    def _line(self, event: Event) -> str | None:  # noqa: PLR0911 - one return per event kind
        if isinstance(event, Notice):
            return ("warning: " if event.warning else "") + event.message
        if isinstance(event, TaskFinished) and event.status is not Status.SUCCEEDED:
            return _finished(event)
        if self.quiet:
            return None
        if isinstance(event, RunStarted):
            return (
                f"run {event.run_id}: {event.total} tasks, -j {event.jobs}, logs in {event.log_dir}"
            )
        if isinstance(event, TaskStarted):
            again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return f"started {event.id}{again}: {event.title}"
        if isinstance(event, TaskFinished):
            return _finished(event)
        if isinstance(event, TaskSkipped):
            return f"skipped {event.id}: {event.reason}"
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
