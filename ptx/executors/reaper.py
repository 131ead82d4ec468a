"""ptx as the child subreaper of its tasks: what escapes a task's group comes back to ptx.

A process that leaves its task's process group (`setsid`, `setpgid`, a double fork) is out of
`killpg`'s reach, and once its parent exits it would belong to init. With
`PR_SET_CHILD_SUBREAPER` (Linux >= 3.4) such orphans become children of ptx instead: ptx
lists them, tells whose they are by the `PTX_RUN_ID`, `PTX_TASK_ID` and `PTX_ATTEMPT` they
inherited in their environment, ends them with their task, and reaps them once they exit.
A process that cleared its environment is ended when the run ends.

Reaping is by pid only, never `waitpid(-1)`, which would take the exit status a leader's
own wait is waiting for. A child counts as adopted when ptx did not start it (`started`
registers ptx's own under the same lock as the listing, so one just spawned is never taken
for an orphan) and it is in a session other than ptx's: every task runs in a session of its
own, while anything else ptx starts (a Dask cluster, a probe) shares ptx's session.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from typing import TYPE_CHECKING

import psutil

from ptx.executors import proctree

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
MARKER_KEYS = ("PTX_RUN_ID", "PTX_TASK_ID", "PTX_ATTEMPT")
"""The environment variables that tell which run, task and attempt started a process."""

Marker = frozenset[bytes]  # "KEY=value" entries a process's environment must hold

_lock = threading.Lock()
_own: set[int] = set()  # children ptx started and waits for by pid itself
_markers: dict[tuple[int, int], Marker] = {}  # by (pid, start ticks): environ read once


_enabled = False  # while a run adopts its tasks' orphans
_listing: int | None = None  # ptx's children file, open while adopting


@contextlib.contextmanager
def adopting() -> Iterator[bool]:
    """Make this process the subreaper of everything it starts for the block (as it was
    before, afterwards); yields False where the platform has none (not Linux, prctl refused)."""
    global _enabled, _listing  # noqa: PLW0603 - one process, one subreaper
    libc = _libc()
    before = ctypes.c_int(0)
    if libc is None or libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(before), 0, 0, 0) != 0:
        yield False
        return
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        yield False
        return
    _enabled, _listing = True, _open_listing()
    try:
        yield True
    finally:
        reap()
        _enabled = bool(before.value)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, before.value, 0, 0, 0)
        if _listing is not None:
            os.close(_listing)
            _listing = None


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def enabled() -> bool:
    return _enabled


@contextlib.contextmanager
def starting() -> Iterator[list[int]]:
    """Around a spawn: append the new child's pid to the list yielded, and it is registered as
    ptx's own before any listing of orphans can see it."""
    with _lock:
        pids: list[int] = []
        yield pids
        _own.update(pids)


def waited(pid: int) -> None:
    """ptx reaped its own child `pid`: the number may now be reused by anyone."""
    _own.discard(pid)


def marker_of(env: Mapping[str, str]) -> Marker:
    """What the environment of every process of an attempt started with `env` holds."""
    return frozenset(f"{key}={env[key]}".encode() for key in MARKER_KEYS if key in env)


def escapees(marker: Marker) -> tuple[psutil.Process, ...]:
    """The live orphans ptx adopted from the attempt with `marker`, and their descendants:
    what the attempt left outside its process group. Empty when ptx is no subreaper."""
    if not marker or not _enabled:
        return ()
    roots = [pid for pid, found in _adopted() if found >= marker]
    return _processes(pid for root in roots for pid in proctree.tree_pids(root))


def leftovers(spare: Iterable[Marker] = ()) -> tuple[psutil.Process, ...]:
    """Every live orphan ptx adopted (with its descendants), except those of the markers in
    `spare`: what the run's tasks left running, for the run's end."""
    if not enabled():
        return ()
    spared = tuple(spare)
    roots = [
        pid for pid, found in _adopted() if not any(found >= marker for marker in spared if marker)
    ]
    return _processes(pid for root in roots for pid in proctree.tree_pids(root))


def reap() -> int:
    """Collect the exit status of every adopted orphan that has exited (zombies); how many."""
    if not enabled():
        return 0
    reaped = 0
    with _lock:
        for pid in _children():
            if pid in _own or _state(pid) != "Z" or proctree.id_of(os.getsid, pid) in _mine():
                continue
            with contextlib.suppress(ChildProcessError):
                reaped += os.waitpid(pid, os.WNOHANG)[0] == pid
    return reaped


def _adopted() -> list[tuple[int, Marker]]:
    """The live adopted children and the marker entries of their environments."""
    found, seen = [], set()
    with _lock:  # the marker cache is shared by the threads that end attempts
        others = [pid for pid in _children() if pid not in _own]
        if not others and not _markers:
            return []  # the common case: only the leaders ptx waits for itself
        for pid in others:
            stat = _stat(pid)
            if stat is None or stat[0] == "Z" or stat[1] in _mine():
                continue
            key = (pid, stat[2])
            seen.add(key)
            if key not in _markers:
                _markers[key] = _environ_marker(pid)
            found.append((pid, _markers[key]))
        for key in _markers.keys() - seen:  # gone, or no longer ptx's child
            del _markers[key]
    return found


def _children() -> list[int]:
    """ptx's children: the kernel gives orphans to the first live thread of the subreaper,
    and the scheduler thread (the main one) starts the leaders, so its list has them all.
    Read through a descriptor kept open while adopting: a quarter of the cost of opening the
    file at each attempt's end."""
    if _listing is not None:
        with contextlib.suppress(OSError):
            size = 1 << 16  # 8,000 children; more are read again, with room to spare
            while len(data := os.pread(_listing, size, 0)) == size:
                size *= 4
            return [int(word) for word in data.split()]
    with contextlib.suppress(psutil.Error):  # a kernel without the children files
        return [child.pid for child in psutil.Process().children()]
    return []


def _open_listing() -> int | None:
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """State, session id and start time (clock ticks) from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:  # noqa: PTH123
            data = stat.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[0].decode(), int(fields[3]), int(fields[19])


def _state(pid: int) -> str | None:
    stat = _stat(pid)
    return None if stat is None else stat[0]


def _environ_marker(pid: int) -> Marker:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:  # noqa: PTH123
            entries = environ.read().split(b"\0")
    except OSError:
        return frozenset()
    keys = tuple(f"{key}=".encode() for key in MARKER_KEYS)
    return frozenset(entry for entry in entries if entry.startswith(keys))


@functools.cache
def _mine() -> frozenset[int | None]:
    """ptx's own session, and None (a process gone meanwhile): never adopted orphans."""
    return frozenset({os.getsid(0), None})


def _processes(pids: Iterable[int]) -> tuple[psutil.Process, ...]:
    found = []
    for pid in dict.fromkeys(pids):
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))  # its create time guards against a reused pid
    return tuple(found)


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's children
    os.register_at_fork(after_in_child=_own.clear)
