"""A run's orphans: what escapes its tasks' groups comes back to ptx, and ends with the run."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from ptx.executors import process

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ptx.core.model import TaskId
    from ptx.run.runner import Run

_REAP_SECONDS = 1.0  # how often orphans that exited on their own are reaped


class Orphans:
    """ptx adopts the orphans of a local run's tasks while it runs (see executors/reaper.py)."""

    def __init__(self) -> None:
        self.adopting = False
        self.reap_due = 0.0

    @contextlib.contextmanager
    def adopted(self, run: Run) -> Iterator[None]:
        """For the block, adopt what escapes the tasks' groups and keep a guardian that ends the
        run's tasks should ptx be killed with SIGKILL; at its end, end what they left running,
        except the daemons of `keep_daemons` tasks. Local tasks only."""
        if not run.executor.local:
            yield
            return
        keep = [unit for unit, track in run.tracks.items() if track.options.keep_daemons]
        grace = run.config.kill_grace_seconds
        with process.adopt_orphans() as self.adopting, process.guarding(run.run_id, keep, grace):
            try:
                yield
            finally:
                self.end(run.run_id, keep, 0.0 if run.stop.immediate else grace)

    def tick(self) -> None:
        """Reap the orphans that exited on their own, at most once a second, so zombies never
        pile up in a long run."""
        if self.adopting and time.monotonic() >= self.reap_due:
            self.reap_due = time.monotonic() + _REAP_SECONDS
            process.reap_orphans()

    def end(self, run_id: str, keep: Iterable[TaskId], grace: float) -> None:
        """End what the run's tasks left running, except the daemons of the tasks in `keep`."""
        if self.adopting:
            spare = [{"PTX_RUN_ID": run_id, "PTX_TASK_ID": unit} for unit in keep]
            process.end_leftovers(spare, min(grace, process.SWEEP_GRACE_CAP))
