"""Status write-back during a run: in-progress, done, or the old status back; never fatal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptx.core.errors import LockTimeoutError, PtxError
from ptx.core.events import Notice
from ptx.core.model import id_key
from ptx.taskmaster import writeback

if TYPE_CHECKING:
    from ptx.core.events import Listener
    from ptx.core.model import Project, TaskId

LOCK_WAIT_SECONDS = 2.0
"""How long one write waits for Taskmaster's lock. Taskmaster holds it for milliseconds, and
the scheduler loop waits with the write, so a lock held longer than this is treated as stuck."""


class StatusWriter:
    """Remembers what each unit's first write changed, so a failure can put exactly that back.

    Starting a subtask also moves its parent (Taskmaster's rules), so a failed unit gets back
    every status its first write changed, written without those rules: re-deriving the parent
    from its subtasks would not give its old status back.

    What a held lock kept back waits in `pending` (and `undo`) and goes with the next write.
    While the lock stays held, writes try it once without waiting: a stuck lock costs one wait,
    not one per write, and never a write through it.
    """

    def __init__(self, project: Project, *, enabled: bool, emit: Listener) -> None:
        self.project, self.enabled, self.emit = project, enabled, emit
        self.parents = {task.id: task.parent for task in project.tasks.tasks if task.parent}
        self.previous: dict[TaskId, dict[TaskId, str]] = {}  # per unit, as its first write found
        self.pending: dict[TaskId, str] = {}  # written with Taskmaster's rules
        self.undo: dict[TaskId, str] = {}  # written exactly, without them
        self.blocked = False

    def started(self, unit: TaskId) -> None:
        self._set(unit, "in-progress")

    def succeeded(self, unit: TaskId) -> None:
        self._set(unit, "done")

    def failed(self, unit: TaskId) -> None:
        previous = self.previous.pop(unit, None)
        if previous is None:  # nothing of it reached the file: nothing to put back
            self.pending.pop(unit, None)
            return
        self.undo.update(previous)
        self._flush()

    def finish(self) -> None:
        """One last try for what a held lock kept back; say what stays unwritten."""
        if self.pending or self.undo:
            self._flush()
        if self.pending or self.undo:
            listed = ", ".join(sorted({*self.pending, *self.undo}, key=id_key))
            self.emit(Notice(message=f"status of {listed} not written", warning=True))

    def unwritten(self) -> tuple[TaskId, ...]:
        """The units whose status stays unwritten after `finish`."""
        return tuple(sorted({*self.pending, *self.undo}, key=id_key))

    def _set(self, unit: TaskId, status: str) -> None:
        if self.enabled:
            self.pending[unit] = status
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            changes = self.pending
            before = self._write(changes, cascade=True)
            if before is None:
                return
            self.pending = {}
            self._remember(changes, before)
        if self.undo and self._write(self.undo, cascade=False) is not None:
            self.undo = {}

    def _remember(self, changes: dict[TaskId, str], before: dict[str, str]) -> None:
        """Keep what each unit's first write changed: the unit and the parent it moved."""
        for unit in changes:
            if unit in before and unit not in self.previous:
                own = (unit, self.parents.get(unit))
                self.previous[unit] = {key: before[key] for key in own if key in before}

    def _write(self, changes: dict[TaskId, str], *, cascade: bool) -> dict[str, str] | None:
        """The statuses the write found; None while the lock is held (the changes wait), {}
        when they are lost."""
        try:
            before = writeback.set_statuses(
                self.project.path,
                self.project.tasks.tag,
                changes,
                lock_timeout=0.0 if self.blocked else LOCK_WAIT_SECONDS,
                cascade=cascade,
            )
        except LockTimeoutError as error:
            if not self.blocked:
                self.emit(Notice(message=f"status write-back held up: {error}", warning=True))
            self.blocked = True
            return None
        except PtxError as error:
            # A file changed or broken under us costs these updates, not the run.
            listed = ", ".join(sorted(changes, key=id_key))
            self.emit(Notice(message=f"status of {listed} not written: {error}", warning=True))
            return {}
        self.blocked = False
        return before
