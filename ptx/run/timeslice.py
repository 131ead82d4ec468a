"""The scheduler thread's CPU time slice: the shortest Linux allows, so it gets its core back
from the tasks it starts.

posix_spawn returns once the new child has called exec. When the kernel has put the child on
ptx's own core, ptx is woken then, but under EEVDF (Linux 6.6 and later) it only gets the
core back when the child ends or uses up its slice, several times what the start itself
takes (BENCHMARKS.md has the figures).
A shorter slice lets a woken thread preempt the current one (Linux 6.12 and later), so ptx
asks for 0.1 ms, with SCHED_RESET_ON_FORK so that its children, and threads it starts, get
the default slice back. Elsewhere, or for a thread the user gave another policy or a negative
nice (which reset-on-fork would take from the children), nothing is changed.
"""

from __future__ import annotations

import contextlib
import platform
import struct
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

SLICE_NS = 100_000  # the least the kernel accepts
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}  # sched_setattr, sched_getattr
# struct sched_attr as of Linux 4.13: size, policy, flags, nice, priority, runtime (the slice
# for a normal thread), deadline, period, util_min, util_max.
_ATTR = struct.Struct("IIQiIQQQII")
_SCHED_OTHER = 0
_RESET_ON_FORK = 0x01


@contextlib.contextmanager
def short_slice() -> Iterator[None]:
    """The calling thread runs with the short slice inside; the kernel's default after."""
    changed = _set_slice(SLICE_NS)
    try:
        yield
    finally:
        if changed:
            # Reset-on-fork stays (only a privileged thread may clear it); for a normal thread
            # with nice >= 0 it resets nothing but the slice, which is the default again now.
            _set_slice(0)


def _set_slice(slice_ns: int) -> bool:
    """Set the calling thread's slice (0: the default); False where it is not to be or cannot be."""
    numbers = _SYSCALLS.get(platform.machine()) if sys.platform == "linux" else None
    if numbers is None:
        return False
    import ctypes  # noqa: PLC0415 - imported only where it is used

    setattr_, getattr_ = numbers
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(_ATTR.size)
    if libc.syscall(getattr_, 0, buffer, _ATTR.size, 0) != 0:
        return False
    _, policy, _, nice, *_ = _ATTR.unpack(buffer.raw)
    if policy != _SCHED_OTHER or nice < 0:
        return False
    # No other flag: they would set utilisation clamps or deadline parameters.
    wanted = _ATTR.pack(_ATTR.size, policy, _RESET_ON_FORK, nice, 0, slice_ns, 0, 0, 0, 0)
    done: int = libc.syscall(setattr_, 0, ctypes.create_string_buffer(wanted), 0)
    return done == 0
