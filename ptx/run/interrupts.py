"""Which signals interrupt a run, and catching them for the run's length."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType


def _named(*names: str) -> tuple[int, ...]:
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


# Every signal whose default action ends a process and that a program may catch. Left out:
# SIGPIPE and SIGXFSZ, which Python ignores (a write then fails with an error ptx handles, and
# a reader going away must not stop the tasks); the fault signals (SEGV, BUS, FPE, ILL, ABRT,
# SYS, TRAP), which come from ptx's own code or a debugger and that a handler cannot undo.
INTERRUPTS = _named(
    "SIGINT",
    "SIGTERM",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGVTALRM",
    "SIGPROF",
    "SIGXCPU",
    "SIGIO",
    "SIGPWR",
    "SIGSTKFLT",
) + (
    tuple(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
    if hasattr(signal, "SIGRTMIN") and hasattr(signal, "SIGRTMAX")
    else ()
)
# Ctrl-\ asks a program to quit at once: the tasks get SIGKILL without a grace period.
IMMEDIATE = _named("SIGQUIT")
IGNORED = _named("SIGPIPE", "SIGXFSZ")


@contextlib.contextmanager
def caught(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Every signal in INTERRUPTS goes to `handler` for the run, and SIGPIPE and SIGXFSZ are
    ignored (whoever started ptx may have left them at their default); outside the main
    thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for number in INTERRUPTS + IGNORED:
        with contextlib.suppress(OSError, ValueError):  # one the platform will not let us catch
            previous[number] = signal.signal(
                number, handler if number in INTERRUPTS else signal.SIG_IGN
            )
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
