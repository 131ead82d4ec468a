"""Ending what is left over: a dead run's process groups, and the orphans a run adopted."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING

import psutil

from ptx.executors import proctree, reaper

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

SETTLE = 2.0  # SIGKILL is asynchronous: how long to wait for the kernel to finish the kills


def signal_all(pgid: int | None, processes: Iterable[psutil.Process], sig: int) -> None:
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for process in processes:
        # psutil checks the create time first, so a pid reused meanwhile is never hit.
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


def group_alive(pgid: int, create_time: float) -> bool:
    """Whether anything of the group recorded at `create_time` still runs (see kill_stale_group)."""
    return bool(proctree.stale_members(pgid, create_time))


def kill_stale_group(pgid: int, create_time: float, grace: float) -> bool:
    """End what is left of a group recorded by a ptx that died: TERM, up to `grace`, KILL.

    True if something was signalled. Only processes `proctree.stale_members` vouches for (it
    says why a reused pid is never hit) are touched."""
    return kill_stale_groups([(pgid, create_time)], grace) > 0


def kill_stale_groups(groups: Iterable[tuple[int, float]], grace: float) -> int:
    """`kill_stale_group` for many groups at once: all get SIGTERM, then one grace period in
    all, then SIGKILL to whatever is left; returns how many groups were signalled."""
    found = [(group, proctree.stale_members(*group)) for group in groups]
    found = [(group, members) for group, members in found if members]

    def rescan() -> list[psutil.Process]:  # the groups may have forked during the grace period
        return [member for group, _ in found for member in proctree.stale_members(*group)]

    _term_then_kill([member for _, members in found for member in members], grace, rescan)
    return len(found)


def adopt_orphans() -> contextlib.AbstractContextManager[bool]:
    """While the block runs, ptx is the subreaper of what it starts, so processes that escape
    a task's group come back to it (see reaper.py); it yields False where the platform cannot."""
    return reaper.adopting()


def end_leftovers(spare: Iterable[Mapping[str, str]], grace: float) -> int:
    """At the end of a run: end every orphan ptx adopted (TERM, up to `grace`, KILL) except
    those of the attempts whose environments are in `spare`, and reap them; how many."""
    left = reaper.leftovers(reaper.marker_of(env) for env in spare)
    _term_then_kill(left, grace, lambda: [*reaper.leftovers(), *left])
    reaper.reap()
    return len(left)


def _term_then_kill(
    members: Sequence[psutil.Process], grace: float, rescan: Callable[[], list[psutil.Process]]
) -> None:
    """SIGTERM to all, one grace period for all, SIGKILL to what is left or was found since."""
    if not members:
        return
    signal_all(None, members, signal.SIGTERM)
    if proctree.poll_until(
        lambda: not any(map(proctree.is_live, members)), time.monotonic() + grace, None
    ):
        return
    signal_all(None, [*members, *rescan()], signal.SIGKILL)
    proctree.poll_until(
        lambda: not any(proctree.is_live(member) for member in rescan()),
        time.monotonic() + SETTLE,
        None,
    )
