"""What a run records about each task while it goes on, and the results made from that."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.events import Status, TaskResult

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ptx.core.model import Task, TaskOptions


@dataclass(slots=True)
class Track:
    """What the loop knows about one unit while the run goes on; only the loop's thread
    touches it."""

    task: Task
    options: TaskOptions  # effective: worked out once when the run starts, not per attempt
    attempts: int = 0
    first_started: float | None = None
    last_ended: float | None = None
    exit_code: int | None = None
    status: Status = Status.NOT_RUN
    reason: str | None = None
    log: str | None = None
    command: str | None = None

    def result(self, *, interrupted: bool) -> TaskResult:
        """The unit's entry in the run's result; `interrupted`: the run was."""
        reason = self.reason
        if self.status is Status.NOT_RUN and reason is None:
            reason = "interrupted before it started" if interrupted else "stopped by --fail-fast"
        return TaskResult(
            id=self.task.id,
            title=self.task.title,
            status=self.status,
            exit_code=self.exit_code,
            attempts=self.attempts,
            started_at=self.first_started,
            ended_at=self.last_ended,
            log=self.log,
            reason=reason,
            command=self.command,
        )


def run_status(results: Iterable[TaskResult], *, interrupted: bool) -> str:
    """The run's status: interrupted if it was, succeeded if every task did, else failed."""
    if interrupted:
        return "interrupted"
    return "succeeded" if all(result.status is Status.SUCCEEDED for result in results) else "failed"
