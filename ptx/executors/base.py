"""Where an attempt's process runs: the protocol every executor follows, and the registry
that maps each `--executor` name to the module that provides it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ptx.core.errors import PtxError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ptx.executors import process


class Executor(Protocol):
    """Runs one attempt to its end from a pool thread of the run; safe to call from many
    threads at once. Every attempt of every executor goes through `run`."""

    slots: int | None  # attempts it can run at once (the default -j); None: ptx's own default
    lost: str | None  # why it can start nothing more (a cluster went away); None while it can
    # Its processes are ptx's own children on this machine: ptx adopts what escapes their
    # groups and ends it with the run (run/orphans.py).
    local: bool

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int | None, float | None], None] | None = None,
    ) -> process.ProcessOutcome:
        """Run the attempt until it ended, and end it early on `stop` or `spec.timeout`; its
        output goes to `spec.log_path`. Call `on_start` once the process runs, before it is
        waited for: with its process group and the leader's start time (psutil's) when it
        runs on this machine, so a ptx killed meanwhile leaves a group the next run can end;
        with (None, None) elsewhere. Never raise for a command that cannot start: that is an
        outcome with `error` set, and then `on_start` need not be called."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a cluster it started); called once, after the run."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What `ptx run` tells the executor it opens; each executor reads what concerns it."""

    address: str | None = None  # --scheduler: where a cluster is; None: its own default
    environ: Mapping[str, str] = field(default_factory=dict)
    worker_wait: float = 30.0  # seconds a cluster may have no worker
    notify: Callable[[str, bool], None] | None = None  # (message, warning): what it does meanwhile


@dataclass(frozen=True, slots=True)
class Registration:
    """An executor: the module whose `open_executor(settings) -> Executor` makes it, imported
    only when the run asks for it (a cluster library is slow to import), and the pip extra
    that brings the libraries it needs, if any."""

    module: str
    extra: str | None = None


# `--executor NAME`: adding an executor is its module and one line here.
EXECUTORS: dict[str, Registration] = {
    "local": Registration("ptx.executors.local"),
    "dask": Registration("ptx.executors.dask", extra="dask"),
}


def missing_extra(name: str, extra: str) -> str:
    return f"the {name} executor needs ptx[{extra}]: pip install 'ptx[{extra}]'"


def registered(name: str) -> Registration:
    """The registration of `--executor name`; an unknown name is bad input."""
    registration = EXECUTORS.get(name)
    if registration is None:
        raise UsageError(f"unknown executor {name!r}: use {' or '.join(EXECUTORS)}")
    return registration


def open_executor(name: str, settings: Settings) -> Executor:
    """The executor registered as `name`, opened with `settings`."""
    registration = registered(name)
    try:
        module = importlib.import_module(registration.module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if registration.extra is None or missing in {"", "ptx"}:
            raise
        raise PtxError(missing_extra(name, registration.extra)) from exc
    opened: Executor = module.open_executor(settings)
    return opened
