"""Status write-back during a run: in-progress, done, or the old status back; never fatal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptx import writeback
from ptx.errors import LockTimeoutError, PtxError
from ptx.events import Notice
from ptx.model import id_key

if TYPE_CHECKING:
    from ptx.events import Listener
    from ptx.model import Project, TaskId

LOCK_WAIT_SECONDS = 2.0
"""How long one write waits for Taskmaster's lock. Taskmaster holds it for milliseconds, and
the scheduler loop waits with the write, so a lock held longer than this is treated as stuck."""


class StatusWriter:
    """Remembers each unit's status before ptx touched it, so a failure can put it back.

    What a held lock kept back waits in `pending` and goes with the next write. While the lock
    stays held, writes try it once without waiting: a stuck lock costs one wait, not one per
    write, and never a write through it.
    """

    def __init__(self, project: Project, *, enabled: bool, emit: Listener) -> None:
        self.project, self.enabled, self.emit = project, enabled, emit
        self.previous: dict[TaskId, str] = {}
        self.pending: dict[TaskId, str] = {}
        self.blocked = False

    def started(self, unit: TaskId) -> None:
        self._set(unit, "in-progress")

    def succeeded(self, unit: TaskId) -> None:
        self._set(unit, "done")

    def failed(self, unit: TaskId) -> None:
        if unit in self.previous:
            self._set(unit, self.previous[unit])
        else:  # nothing of it reached the file: nothing to put back
            self.pending.pop(unit, None)

    def finish(self) -> None:
        """One last try for what a held lock kept back; say what stays unwritten."""
        if self.pending:
            self._flush()
        if self.pending:
            listed = ", ".join(sorted(self.pending, key=id_key))
            self.emit(Notice(message=f"status of {listed} not written", warning=True))

    def _set(self, unit: TaskId, status: str) -> None:
        if self.enabled:
            self.pending[unit] = status
            self._flush()

    def _flush(self) -> None:
        changes = self.pending
        try:
            before = writeback.set_statuses(
                self.project.path,
                self.project.tasks.tag,
                changes,
                lock_timeout=0.0 if self.blocked else LOCK_WAIT_SECONDS,
            )
        except LockTimeoutError as error:
            if not self.blocked:
                self.emit(Notice(message=f"status write-back held up: {error}", warning=True))
            self.blocked = True
            return
        except PtxError as error:
            # A file changed or broken under us costs these updates, not the run.
            listed = ", ".join(sorted(changes, key=id_key))
            self.emit(Notice(message=f"status of {listed} not written: {error}", warning=True))
            self.pending = {}
            return
        self.blocked, self.pending = False, {}
        for unit in changes:
            if unit in before:
                self.previous.setdefault(unit, before[unit])
