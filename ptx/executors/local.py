"""The local executor: each attempt's process on this machine, run by `process.run_process`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptx.executors import process

if TYPE_CHECKING:
    from collections.abc import Callable

    from ptx.executors.base import Settings


class LocalExecutor:
    """This machine: the attempt runs and is supervised in the calling pool thread."""

    slots: int | None = None
    lost: str | None = None
    local = True

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int | None, float | None], None] | None = None,
    ) -> process.ProcessOutcome:
        return process.run_process(spec, stop, on_start)

    def close(self) -> None:
        """Nothing to release."""


def open_executor(settings: Settings) -> LocalExecutor:
    del settings  # nothing to configure
    return LocalExecutor()
