"""Status write-back during a run: in-progress, done, or the old status back; never fatal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptx import writeback
from ptx.errors import PtxError
from ptx.events import Notice

if TYPE_CHECKING:
    from ptx.events import Listener
    from ptx.model import Project, TaskId


class StatusWriter:
    """Remembers each unit's status before ptx touched it, so a failure can put it back."""

    def __init__(self, project: Project, *, enabled: bool, emit: Listener) -> None:
        self.project, self.enabled, self.emit = project, enabled, emit
        self.previous: dict[TaskId, str] = {}

    def started(self, unit: TaskId) -> None:
        before = self._write(unit, "in-progress")
        if before is not None:
            self.previous.setdefault(unit, before)

    def succeeded(self, unit: TaskId) -> None:
        self._write(unit, "done")

    def failed(self, unit: TaskId) -> None:
        if unit in self.previous:
            self._write(unit, self.previous[unit])

    def _write(self, unit: TaskId, status: str) -> str | None:
        if not self.enabled:
            return None
        try:
            before = writeback.set_statuses(
                self.project.path, self.project.tasks.tag, {unit: status}
            )
        except PtxError as error:
            # A held lock or a file changed under us costs one status update, not the run.
            self.emit(Notice(message=f"status of {unit} not written: {error}", warning=True))
            return None
        return before.get(unit)
