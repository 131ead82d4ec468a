"""`ptx run -j 2` in this directory, with an internal error (a full disk) when task 2's
success is written back."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ptx.cli import app
from ptx.run import statuses

if TYPE_CHECKING:
    from ptx.core.model import TaskId

real = statuses.StatusWriter.succeeded


def broken(self: statuses.StatusWriter, unit: TaskId) -> None:
    if unit == "2":
        raise OSError("disk full")
    real(self, unit)


statuses.StatusWriter.succeeded = broken  # type: ignore[method-assign]  # on purpose
sys.exit(app.main(["run", "-j", "2"]))
