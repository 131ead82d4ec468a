"""Where an attempt's process runs: this machine, or a Dask cluster (the optional extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ptx.core.errors import PtxError, UsageError
from ptx.executors import process

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

KINDS = ("local", "dask")
MISSING_DASK = "the dask executor needs ptx[dask]: pip install 'ptx[dask]'"


class Executor(Protocol):
    """Runs one attempt to its end from a driver pool thread; safe to call from many threads."""

    slots: int | None  # attempts it can run at once (the default -j); None: ptx's own default
    lost: str | None  # why it can start nothing more (a cluster went away); None while it can

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int, float], None] | None = None,
    ) -> process.ProcessOutcome: ...

    def close(self) -> None: ...


class LocalExecutor:
    """This machine: process.run_process in the calling thread."""

    slots: int | None = None
    lost: str | None = None

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int, float], None] | None = None,
    ) -> process.ProcessOutcome:
        return process.run_process(spec, stop, on_start)

    def close(self) -> None:
        """Nothing to release."""


def open_executor(
    kind: str,
    *,
    scheduler: str | None = None,
    environ: Mapping[str, str],
    worker_wait: float = 30.0,
    notify: Callable[[str, bool], None] | None = None,
) -> Executor:
    """`kind` "local" or "dask". For Dask the address is `scheduler`, else
    DASK_SCHEDULER_ADDRESS, else a loopback cluster started now and stopped by close();
    `worker_wait`: seconds a cluster may have no worker; `notify(message, warning)` tells
    what the cluster does meanwhile."""
    if kind == "local":
        return LocalExecutor()
    if kind != "dask":
        raise UsageError(f"unknown executor {kind!r}: use {' or '.join(KINDS)}")
    try:
        # distributed is slow to import, so only a Dask run pays for it.
        from ptx.executors import dask as dask_executor  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in {"distributed", "dask"}:
            raise
        raise PtxError(MISSING_DASK) from exc
    address = scheduler or environ.get("DASK_SCHEDULER_ADDRESS") or None
    if notify is None:
        return dask_executor.connect(address, worker_wait=worker_wait)
    return dask_executor.connect(address, worker_wait=worker_wait, notify=notify)
