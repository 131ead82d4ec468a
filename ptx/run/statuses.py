"""Status write-back during a run: in-progress, done, or the old status back; never fatal.
Taskmaster's statuses win: one someone set during the run is never overwritten."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ptx.core.errors import LockTimeoutError, PtxError
from ptx.core.events import Notice
from ptx.core.model import id_key
from ptx.taskmaster import writeback
from ptx.taskmaster.lock import STALE_LOCK_SECONDS

if TYPE_CHECKING:
    from typing_extensions import Self

    from ptx.core.events import Listener
    from ptx.core.model import Project, TaskId
    from ptx.taskmaster.config import Config

LOCK_WAIT_SECONDS = 2.0
"""How long one write waits for Taskmaster's lock. Taskmaster holds it for milliseconds, and
the scheduler loop waits with the write, so a lock held longer than this is treated as stuck."""
FINAL_WAIT_SECONDS = STALE_LOCK_SECONDS + LOCK_WAIT_SECONDS
"""The last try at the end of a run waits until even a dead holder's lock has turned stale."""


class StatusWriter:
    """Remembers what each unit's first write changed, so a failure can put exactly that back.

    Starting a subtask also moves its parent (Taskmaster's rules), so a failed unit gets back
    every status its first write changed, written without those rules: re-deriving the parent
    from its subtasks would not give its old status back.

    What a held lock kept back waits in `pending` (and `undo`) and goes with the next write.
    While the lock stays held, writes try it once without waiting: a stuck lock costs one wait,
    not one per write, and never a write through it.
    """

    def __init__(
        self,
        project: Project,
        *,
        enabled: bool,
        emit: Listener,
        hands_off: frozenset[str] = frozenset(),
    ) -> None:
        """`hands_off`: statuses a unit must not have to be started (satisfied or held)."""
        self.project, self.enabled, self.emit = project, enabled, emit
        self.hands_off = hands_off
        self.parents = {task.id: task.parent for task in project.tasks.tasks if task.parent}
        self.previous: dict[TaskId, dict[TaskId, str]] = {}  # per unit, as its first write found
        self.pending: dict[TaskId, str] = {}  # written with Taskmaster's rules
        self.undo: dict[TaskId, str] = {}  # written exactly, without them
        self.wrote: dict[TaskId, str] = {}  # the status ptx last wrote to each id
        self.blocked = False
        self.seen: tuple[int, int, int] | None = None  # tasks.json as last read without a lock
        self.statuses: dict[str, str] = {}

    @classmethod
    def for_run(cls, project: Project, config: Config, enabled: bool, emit: Listener) -> Self:
        """A run's writer: a unit must not start once its status satisfies or is held."""
        hands_off = config.satisfied_statuses | config.held_statuses
        return cls(project, enabled=enabled, emit=emit, hands_off=hands_off)

    def started(self, unit: TaskId) -> str | None:
        """Before `unit` starts: the status that forbids it (someone set it `deferred`,
        `done`...), else None and, with write-back, it is now `in-progress`. Checked under the
        lock with the write; without write-back, from the file whenever it changed."""
        if not self.enabled:
            status = self._read_status(unit)
            return status if status in self.hands_off else None
        self.pending[unit] = "in-progress"
        refused = self._flush()
        status = refused.pop(unit, None)
        self._said_refused(refused)
        if unit in self.pending:  # the lock is held: the file, read without it, has to do
            status = self._read_status(unit)
            if status not in self.hands_off:
                return None
            del self.pending[unit]
        return status

    def succeeded(self, unit: TaskId) -> None:
        if self.enabled:
            self.pending[unit] = "done"
            refused = self._flush()
            self._said_refused({k: v for k, v in refused.items() if v not in {"done", "completed"}})

    def failed(self, unit: TaskId) -> None:
        previous = self.previous.pop(unit, None)
        if previous is None:  # nothing of it reached the file: nothing to put back
            self.pending.pop(unit, None)
            return
        self.undo.update(previous)
        self._flush()

    def finish(self) -> None:
        """One last try for what a held lock kept back, waiting until even a dead holder's
        lock is stale; put back what another program reverted; say what stays unwritten."""
        if self.pending or self.undo:
            self.blocked = False
            self._flush(wait=FINAL_WAIT_SECONDS)
        if self.pending or self.undo:
            listed = ", ".join(sorted({*self.pending, *self.undo}, key=id_key))
            self.emit(Notice(message=f"status of {listed} not written", warning=True))
        elif self.wrote:
            self._rewrite_reverted()

    def _rewrite_reverted(self) -> None:
        """Statuses ptx wrote that another program set back to what they were before ptx
        (a stale whole-file write) are written again; any other change stands, reported."""
        before = {key: old for found in self.previous.values() for key, old in found.items()}

        def reverted(key: TaskId, now: str) -> bool:
            return now in {self.wrote[key], before.get(key)}

        try:
            written = writeback.write_statuses(
                self.project.path,
                self.project.tasks.tag,
                dict(self.wrote),
                lock_timeout=FINAL_WAIT_SECONDS,
                cascade=False,
                allow=reverted,
            )
        except PtxError as error:
            self.emit(Notice(message=f"statuses not checked at the end: {error}", warning=True))
            return
        again = sorted((k for k, v in written.previous.items() if v != self.wrote[k]), key=id_key)
        if again:
            listed = ", ".join(again)
            message = f"status of {listed} reverted by another program: written again"
            self.emit(Notice(message=message, warning=True))
        for key, now in sorted(written.refused.items()):
            message = f"status of {key} is now {now} (ptx wrote {self.wrote[key]}): left as it is"
            self.emit(Notice(message=message, warning=True))

    def unwritten(self) -> tuple[TaskId, ...]:
        """The units whose status stays unwritten after `finish`."""
        return tuple(sorted({*self.pending, *self.undo}, key=id_key))

    def _read_status(self, unit: TaskId) -> str | None:
        """The unit's status in the file, read again only when the file changed (one stat)."""
        path = self.project.path
        with contextlib.suppress(OSError):
            info = path.stat()
            seen = (info.st_mtime_ns, info.st_size, info.st_ino)
            if seen != self.seen:
                self.seen = seen
                with contextlib.suppress(PtxError):
                    self.statuses = writeback.read_statuses(path, self.project.tasks.tag)
        return self.statuses.get(unit)

    def _startable(self, key: TaskId, now: str) -> bool:
        """May a pending change go in? Not over a status someone set that forbids running."""
        del key  # every pending change is held to the same rule
        return now.lower() not in self.hands_off

    def _restorable(self, key: TaskId, now: str) -> bool:
        """May the old status go back? Only over the status ptx wrote itself."""
        return self.wrote.get(key, now) == now

    def _flush(self, wait: float | None = None) -> dict[TaskId, str]:
        """Write what waits; the changes refused because of a status someone else set."""
        refused: dict[TaskId, str] = {}
        if self.pending:
            changes = self.pending
            written = self._write(changes, cascade=True, allow=self._startable, wait=wait)
            if written is None:
                return refused
            self.pending = {}
            refused.update(written.refused)
            self._remember(changes, written)
        if self.undo:
            written = self._write(self.undo, cascade=False, allow=self._restorable, wait=wait)
            if written is not None:
                self.undo = {}
                self.wrote.update(written.writes)
                self._said_refused(written.refused)
        return refused

    def _said_refused(self, refused: dict[TaskId, str]) -> None:
        for key, now in sorted(refused.items()):
            message = f"status of {key} left as {now}: set outside ptx during the run"
            self.emit(Notice(message=message, warning=True))

    def _remember(self, changes: dict[TaskId, str], written: writeback.Written) -> None:
        """Keep what each unit's first write changed (the unit and the parent it moved) and
        what ptx wrote."""
        before = written.previous
        for unit in changes:
            if unit in before and unit not in self.previous and unit not in written.refused:
                own = (unit, self.parents.get(unit))
                self.previous[unit] = {key: before[key] for key in own if key in before}
        self.wrote.update(written.writes)

    def _write(
        self,
        changes: dict[TaskId, str],
        *,
        cascade: bool,
        allow: writeback.Allow,
        wait: float | None,
    ) -> writeback.Written | None:
        """What the write found; None while the lock is held (the changes wait); nothing
        previous when they are lost."""
        timeout = wait if wait is not None else 0.0 if self.blocked else LOCK_WAIT_SECONDS
        try:
            written = writeback.write_statuses(
                self.project.path,
                self.project.tasks.tag,
                changes,
                lock_timeout=timeout,
                cascade=cascade,
                allow=allow,
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
            return writeback.Written(previous={}, refused={}, writes={})
        self.blocked = False
        return written
