"""What process.py takes and gives: an attempt's process spec, its outcome, a run's stop."""

from __future__ import annotations

import os
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """Everything needed to run one attempt; picklable, so it can travel to a Dask worker."""

    argv: tuple[str, ...]  # already built; a shell command arrives as ("/bin/sh", "-c", cmd)
    cwd: str
    env: Mapping[str, str]  # the complete environment for the child
    log_path: str  # stdout+stderr go here (opened for append, created with parents)
    timeout: float | None  # seconds of wall time, None = no limit
    grace: float = 5.0  # SIGTERM -> grace -> SIGKILL
    memory_limit: int | None = None  # bytes of RSS for the whole process tree; None = no limit
    keep_daemons: bool = False  # what the command leaves running when it ends is not ended

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("ProcessSpec.argv must not be empty")
        # A plain dict copy: picklable (a MappingProxyType is not) and immune to later mutation.
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", dict(self.env))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessOutcome:
    """How one attempt ended."""

    exit_code: int | None  # None when killed by a signal
    signal: int | None  # the signal that ended the leader, if any
    timed_out: bool
    interrupted: bool  # ended because stop was requested
    started_at: float  # time.time()
    ended_at: float
    pid: int  # == pgid (own session); 0 when nothing was spawned
    error: str | None = None  # spawn failure, one line; exit_code 127/126 as a shell would
    memory_exceeded: bool = False  # killed because the tree's RSS passed spec.memory_limit
    # The failure is the machinery's, not the command's (a Dask worker or scheduler was lost):
    # it says nothing about the task, so the failure-rate fall-back and breakers leave it out.
    infrastructure: bool = False

    @classmethod
    def never_ran(
        cls,
        error: str,
        *,
        exit_code: int | None = None,
        interrupted: bool = False,
        started_at: float | None = None,
        infrastructure: bool = False,
    ) -> ProcessOutcome:
        """An attempt whose process never started (or was never heard of again); it ends now,
        and began at `started_at` when the attempt had already spent time getting there."""
        now = time.time()
        return cls(
            exit_code=exit_code,
            signal=None,
            timed_out=False,
            interrupted=interrupted,
            started_at=now if started_at is None else started_at,
            ended_at=now,
            pid=0,
            error=error,
            infrastructure=infrastructure,
        )


class Stop:
    """A stop request shared by all running attempts of one run; callable from any thread."""

    __slots__ = ("__weakref__", "_immediate", "_immediate_pipe", "_requested", "_stop_pipe")

    def __init__(self) -> None:
        self._requested = False
        self._immediate = False
        # Level-triggered wake-ups: one byte is written and never read, so every poll() sees it.
        self._stop_pipe = os.pipe()
        self._immediate_pipe = os.pipe()
        for fd in (*self._stop_pipe, *self._immediate_pipe):
            weakref.finalize(self, os.close, fd)

    def request(self, *, immediate: bool = False) -> None:
        """Graceful: TERM, grace, KILL. Immediate: KILL now (also during a grace period)."""
        # No lock, so a signal handler may call this: flags only go False -> True, and a
        # duplicate wake-up byte from a racing caller is harmless.
        # `immediate` goes first, so a waiter that wakes on the stop pipe already sees it.
        if immediate and not self._immediate:
            self._immediate = True
            os.write(self._immediate_pipe[1], b"k")
        if not self._requested:
            self._requested = True
            os.write(self._stop_pipe[1], b"s")

    @property
    def requested(self) -> bool:
        return self._requested

    @property
    def immediate(self) -> bool:
        return self._immediate

    @property
    def stop_fd(self) -> int:  # readable once any stop was requested, for poll()
        return self._stop_pipe[0]

    @property
    def immediate_fd(self) -> int:  # readable once an immediate stop was requested
        return self._immediate_pipe[0]
