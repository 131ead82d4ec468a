"""Finding a task's processes (group members, escapees, a dead run's leftovers); never signals."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import select
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

CREATE_TIME_TOLERANCE = 0.01  # psutil create_time has clock-tick (10 ms) resolution
# psutil derives create_time from the wall clock on Linux, so an NTP step can shift it a little.
RUN_OWNER_SLACK = 1.0


def create_time(pid: int) -> float:
    """What psutil.Process(pid).create_time() says: straight from /proc/PID/stat on Linux,
    since psutil re-reads the boot time on each call (a tenth of a no-op task's cost)."""
    try:
        return _proc_create_time(pid)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        # A wrong value only makes kill_stale_group refuse to act, which is the safe side.
        return time.time()


def _proc_create_time(pid: int) -> float:
    fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)  # read for every spawn
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    fields = data[data.rfind(b")") + 2 :].split()  # the name may hold spaces and parentheses
    return _boot_time() + int(fields[19]) / _CLOCK_TICKS  # field 22 is starttime, in ticks


@functools.cache
def _boot_time() -> float:
    return psutil.boot_time()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (shared pages count once per process)."""
    try:
        leader = psutil.Process(pid)
        tree = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in tree:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def tree_pids(root: int) -> list[int]:
    """The root and its descendants. /proc/PID/task/TID/children costs a few small reads per
    process where psutil's children() reads every process on the machine."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        try:
            for thread in Path(f"/proc/{pid}/task").iterdir():
                stack.extend(int(child) for child in (thread / "children").read_text().split())
        except FileNotFoundError:  # the root is gone, or the kernel has no children files
            if pid == root:
                return _psutil_tree_pids(root)
        except OSError:
            continue
    return found


def _psutil_tree_pids(root: int) -> list[int]:
    try:
        return [root, *(child.pid for child in psutil.Process(root).children(recursive=True))]
    except psutil.Error:
        return []


def find_escapees(pgid: int) -> tuple[psutil.Process, ...]:
    """Descendants of the leader that moved to another process group or session.

    killpg cannot reach them (only a cgroup could contain them), so they are snapshotted
    just before the group is signalled and signalled one by one."""
    try:
        tree = psutil.Process(pgid).children(recursive=True)
    except psutil.Error:
        return ()
    return tuple(child for child in tree if id_of(os.getpgid, child.pid) not in {pgid, None})


def id_of(get_id: Callable[[int], int], pid: int) -> int | None:
    try:
        return get_id(pid)
    except ProcessLookupError:
        return None


def live_members(pgid: int, escapees: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Processes of group `pgid` (and escapees) that still run; zombies do not count."""
    live = [process for process in escapees if is_live(process)]
    try:
        os.killpg(pgid, 0)  # signal 0 is no signal: it only asks whether the group exists
    except ProcessLookupError:
        return live  # the common case costs one syscall
    except PermissionError:
        pass
    # The group exists, but possibly only as zombies: orphans ptx adopted and has not yet
    # reaped, or those of an init that does not reap.
    from ptx.executors import reaper  # noqa: PLC0415 - reaper builds on this module

    if reaper.reap():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return live
        except PermissionError:
            pass
    return live + group_scan(pgid)


def group_scan(pgid: int) -> list[psutil.Process]:
    found = []
    for pid in psutil.pids():
        if id_of(os.getpgid, pid) == pgid:
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if is_live(process):
                    found.append(process)
    return found


def is_live(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def wait_gone(
    pgid: int, escapees: Iterable[psutil.Process], deadline: float, wake_fd: int | None
) -> bool:
    """Poll until nothing of the group is left (True), or `deadline` or `wake_fd` (False)."""
    return poll_until(lambda: not live_members(pgid, escapees), deadline, wake_fd)


def poll_until(done: Callable[[], bool], deadline: float, wake_fd: int | None) -> bool:
    # Off the hot path (leftover processes only): a backing-off poll is simple and cheap.
    delay = 0.001
    poller = select.poll()
    if wake_fd is not None:
        poller.register(wake_fd, select.POLLIN)
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or poller.poll(math.ceil(min(delay, remaining) * 1000)):
            return False
        delay = min(delay * 2, 0.02)
    return True


def stale_members(pgid: int, create_time: float) -> list[psutil.Process]:
    """Live processes that provably belong to the group of leader `pgid` born at `create_time`.

    If a process `pgid` exists, it must be that leader (same create time), else pid `pgid` was
    reused, the old group is necessarily empty, and nothing is touched. If no process `pgid`
    exists, a member must have pgid == sid == `pgid` (the leader called setsid) and have started
    no earlier than the leader. Still possible, and accepted: pids wrapped around to `pgid`, the
    new process called setsid too, then died while its children live on.
    """
    if pgid <= 1:
        return []
    try:
        leader_time = psutil.Process(pgid).create_time()
    except psutil.NoSuchProcess:
        leader_time = None
    except psutil.Error:
        return []
    if leader_time is not None and abs(leader_time - create_time) > CREATE_TIME_TOLERANCE:
        return []
    return [
        process
        for process in group_scan(pgid)
        if id_of(os.getsid, process.pid) == pgid and started_since(process, create_time)
    ]


def started_since(process: psutil.Process, create_time: float) -> bool:
    try:
        return process.create_time() >= create_time - CREATE_TIME_TOLERANCE
    except psutil.Error:
        return False


def run_owner_alive(pid: int, create_time: float) -> bool:
    """Whether the process that owned a run still runs (and is not a reused pid)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - create_time) < RUN_OWNER_SLACK
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists and we cannot tell: never reap what might be a live run
