"""The only place ptx starts or signals processes: own session, log file, TERM then KILL."""

from __future__ import annotations

import math
import os
import select
import signal
import subprocess
import time
from typing import TYPE_CHECKING, cast

from ptx.core.model import counted
from ptx.executors import proctree, reaper
from ptx.executors import spawn as spawn_
from ptx.executors.guardian import guarding
from ptx.executors.leftovers import (
    SETTLE,
    adopt_orphans,
    end_leftovers,
    group_alive,
    kill_stale_group,
    kill_stale_groups,
    signal_all,
)
from ptx.executors.logfile import LogFile
from ptx.executors.processtypes import ProcessOutcome, ProcessSpec, Stop
from ptx.executors.reaper import reap as reap_orphans

if TYPE_CHECKING:
    from collections.abc import Callable

    import psutil

__all__ = [  # the spec, outcome, stop and the leftovers' functions are part of this interface
    "NAME_AFTER",
    "SWEEP_GRACE_CAP",
    "Child",
    "ProcessOutcome",
    "ProcessSpec",
    "Stop",
    "adopt_orphans",
    "end_leftovers",
    "group_alive",
    "guarding",
    "kill_stale_group",
    "kill_stale_groups",
    "reap_orphans",
    "run_process",
    "spawn",
]

SWEEP_GRACE_CAP = 1.0
"""After a command ends on its own, processes it left behind get at most this long after SIGTERM."""

NAME_AFTER = 0.05
"""A command still running this long has its log named (see logfile.py); a quicker one has it
named only if it printed something."""

_POLL_SLICE = 0.05  # without pidfd: stop and deadline are still noticed within this
_MEMORY_SAMPLE = 0.5  # how often a task with a memory limit has its tree's RSS summed
_POLL_MS_MAX = 2**31 - 1
_EXIT_NOT_FOUND = 127  # what a shell returns for a command it cannot find
_EXIT_CANNOT_RUN = 126  # ...and for one it found but cannot execute


def run_process(
    spec: ProcessSpec, stop: Stop, on_start: Callable[[int, float], None] | None = None
) -> ProcessOutcome:
    """Run one attempt to the end; return when no process of its group is left. Never raises
    for a command that cannot start: that is an outcome with `error` set."""
    child = spawn(spec)
    if isinstance(child, ProcessOutcome):
        return child
    try:
        if on_start is not None:
            on_start(child.pgid, child.create_time)
    except BaseException:
        child.close()
        raise
    return child.supervise(stop)


def spawn(spec: ProcessSpec) -> Child | ProcessOutcome:
    """Start the attempt's process, or say why it could not start (never raises for that)."""
    started_at = time.time()
    try:
        log = LogFile(spec.log_path)
    except OSError as exc:
        return ProcessOutcome.never_ran(
            f"cannot open log {spec.log_path}: {exc.strerror}",
            exit_code=_EXIT_CANNOT_RUN,
            started_at=started_at,
        )
    try:
        with reaper.starting() as own:
            # Output goes straight to the log's file descriptor: ptx never holds a byte of it.
            proc = spawn_.start(spec.argv, spec.cwd, spec.env, log.fd)
            own.append(proc.pid)
    except OSError as exc:
        message, code = _spawn_error(spec, exc)
        try:
            log.note(message)
        finally:
            log.close()
        return ProcessOutcome.never_ran(message, exit_code=code, started_at=started_at)
    except BaseException:
        log.close()
        raise
    return Child(spec, _Leader(proc), log, started_at)


class Child:
    """A started attempt until `supervise` ends it: its session leader and its log."""

    __slots__ = ("deadline", "leader", "log", "spec", "started_at")

    def __init__(
        self,
        spec: ProcessSpec,
        leader: _Leader,
        log: LogFile,
        started_at: float,
    ) -> None:
        self.spec, self.leader, self.log, self.started_at = spec, leader, log, started_at
        self.deadline = None if spec.timeout is None else time.monotonic() + spec.timeout

    @property
    def create_time(self) -> float:
        """The leader's start time as psutil tells it: with its pid, its identity on record."""
        return proctree.create_time(self.pgid)

    @property
    def pgid(self) -> int:
        return self.leader.pgid

    @property
    def marker(self) -> reaper.Marker:
        """What the environment of each of the attempt's processes holds: how its orphans are
        told from others'."""
        return reaper.marker_of(self.spec.env)

    def supervise(self, stop: Stop) -> ProcessOutcome:
        """Block until no process of the group is left, ending it on deadline, limit or stop,
        and sweeping what the command left running. The log gets its name once the command
        has run `NAME_AFTER` seconds: it may then be watched with tail -f."""
        try:
            named = time.monotonic() + NAME_AFTER
            if not self.leader.wait(_sooner(named, self.deadline), stop.stop_fd):
                self.log.publish()
            return self._supervise(stop)
        finally:
            self.close()

    def close(self) -> None:
        """Kill and reap the group if it still runs (an error got us here); free pidfd and log."""
        try:
            self.leader.close()
        finally:
            self.log.close()

    def _supervise(self, stop: Stop) -> ProcessOutcome:
        spec, leader, log = self.spec, self.leader, self.log
        timed_out = interrupted = False
        over = _await_leader(spec, stop, leader, self.deadline)
        if leader.proc.returncode is not None:
            if not spec.keep_daemons:
                _sweep(leader, self.marker, min(spec.grace, SWEEP_GRACE_CAP), stop, log)
        elif over is not None:
            # No grace period: in one, the tree could go on growing past the limit.
            limit = f"{(spec.memory_limit or 0) / 2**20:.0f} MiB"
            log.note(
                f"memory {over / 2**20:.0f} MiB over the limit of {limit}: SIGKILL to the tree"
            )
            _end(leader, self._escapees(), 0.0, stop, log, term=False)
        else:
            interrupted = stop.requested
            timed_out = not interrupted
            why = "interrupted" if interrupted else f"timed out after {spec.timeout:g} s"
            immediate = stop.immediate  # read once: the note must say what is really sent
            sent = "SIGKILL" if immediate else "SIGTERM"
            escapees = self._escapees()
            log.note(f"{why}: {sent} to process group {leader.pgid}{_outside(escapees)}")
            _end(leader, escapees, spec.grace, stop, log, term=not immediate)
        return self._outcome(timed_out=timed_out, interrupted=interrupted, over=over)

    def _escapees(self) -> tuple[psutil.Process, ...]:
        """What the attempt runs outside its group: descendants of the leader that left it, and
        orphans ptx adopted from it (snapshotted before anything is signalled)."""
        return (*proctree.find_escapees(self.pgid), *_orphans(self.marker, self.pgid))

    def _outcome(self, *, timed_out: bool, interrupted: bool, over: int | None) -> ProcessOutcome:
        code = cast("int", self.leader.proc.returncode)  # asked only once the leader is reaped
        return ProcessOutcome(
            exit_code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            timed_out=timed_out,
            interrupted=interrupted,
            started_at=self.started_at,
            ended_at=time.time(),
            pid=self.pgid,
            memory_exceeded=over is not None,
        )


def _spawn_error(spec: ProcessSpec, exc: OSError) -> tuple[str, int]:
    code = _EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else _EXIT_CANNOT_RUN
    reason = (exc.strerror or str(exc)).lower()
    if exc.filename is not None and exc.filename == spec.cwd != spec.argv[0]:
        return f"cannot start {spec.argv[0]}: working directory {spec.cwd}: {reason}", code
    return f"cannot start {spec.argv[0]}: {reason}", code


class _Leader:
    """The spawned session leader: waits for its exit (pidfd when the kernel has it), reaps it."""

    def __init__(self, proc: spawn_.Process) -> None:
        self.proc = proc
        self.pgid = proc.pid
        self.pidfd = _pidfd_open(proc.pid)

    def wait(self, deadline: float | None, wake_fd: int) -> bool:
        """True once the leader exited (reaped); False if `wake_fd` or `deadline` came first."""
        if self.proc.returncode is not None:
            return True
        if self.pidfd is None:
            return self._wait_polling(deadline, wake_fd)
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        poller.register(wake_fd, select.POLLIN)
        while True:
            events = poller.poll(_poll_ms(deadline))
            if any(fd == self.pidfd for fd, _ in events):
                self.proc.wait()
                return True
            if events or _passed(deadline):
                return False

    def _wait_polling(self, deadline: float | None, wake_fd: int) -> bool:
        # Popen.wait(timeout) polls from 0.5 ms upwards, so a quick exit is still seen quickly.
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self.proc.wait(_POLL_SLICE if remaining is None else min(_POLL_SLICE, remaining))
            except subprocess.TimeoutExpired:
                if _readable(wake_fd) or _passed(deadline):
                    return False
            else:
                return True

    def close(self) -> None:
        """Kill and reap the group if it is still running (an error got us here); free the pidfd."""
        if self.proc.returncode is None:
            _kill_group(self, ())
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        reaper.waited(self.pgid)


def _pidfd_open(pid: int) -> int | None:
    # Linux >= 5.3: exit, deadline and stop are then one poll() with no polling loop.
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _sooner(deadline: float, other: float | None) -> float:
    return deadline if other is None else min(deadline, other)


def _poll_ms(deadline: float | None) -> int | None:
    if deadline is None:
        return None
    # poll() takes a C int: a longer wait (24.8 days and more) wakes up early and waits again.
    return min(max(0, math.ceil((deadline - time.monotonic()) * 1000)), _POLL_MS_MAX)


def _passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _await_leader(
    spec: ProcessSpec, stop: Stop, leader: _Leader, deadline: float | None
) -> int | None:
    """Wait for the leader's exit, a stop or the deadline; with a memory limit, also sample the
    tree's RSS every `_MEMORY_SAMPLE` s and return it once it passes the limit."""
    if spec.memory_limit is None:
        leader.wait(deadline, stop.stop_fd)
        return None
    while True:
        until = time.monotonic() + _MEMORY_SAMPLE
        if leader.wait(until if deadline is None else min(until, deadline), stop.stop_fd):
            return None
        if stop.requested or _passed(deadline):
            return None
        rss = proctree.tree_rss(leader.pgid)
        if rss > spec.memory_limit:
            return rss


def _sweep(leader: _Leader, marker: reaper.Marker, grace: float, stop: Stop, log: LogFile) -> None:
    """The command ended on its own: end whatever it left running, in its group or outside."""
    escaped = _orphans(marker, leader.pgid)
    left = [*proctree.live_members(leader.pgid, ()), *escaped]
    if left:
        immediate = stop.immediate
        sent = "SIGKILL" if immediate else "SIGTERM"
        processes = counted(len(left), "process", "processes")
        log.note(
            f"command ended, {processes} left: {sent} to process group {leader.pgid}"
            + _outside(escaped)
        )
        _end(leader, escaped, grace, stop, log, term=not immediate)


def _orphans(marker: reaper.Marker, pgid: int) -> tuple[psutil.Process, ...]:
    """The attempt's adopted orphans outside its group (killpg reaches those inside)."""
    return tuple(
        orphan
        for orphan in reaper.escapees(marker)
        if proctree.id_of(os.getpgid, orphan.pid) not in {pgid, None}
    )


def _outside(escapees: tuple[psutil.Process, ...]) -> str:
    return f" and the {len(escapees)} that left it" if escapees else ""


def _end(  # noqa: PLR0913 - the group, how to end it, and where to say so
    leader: _Leader,
    escapees: tuple[psutil.Process, ...],
    grace: float,
    stop: Stop,
    log: LogFile,
    *,
    term: bool = True,
) -> None:
    """SIGTERM the group, wait up to `grace` (cut short by an immediate stop), SIGKILL the rest;
    without `term`, SIGKILL at once."""
    pgid = leader.pgid
    if term:
        signal_all(pgid, escapees, signal.SIGTERM)
        deadline = time.monotonic() + grace
        if leader.wait(deadline, stop.immediate_fd):
            proctree.wait_gone(pgid, escapees, deadline, stop.immediate_fd)
        if leader.proc.returncode is None or proctree.live_members(pgid, escapees):
            why = "stop requested again" if stop.immediate else f"still running after {grace:g} s"
            log.note(f"{why}: SIGKILL to process group {pgid}")
    _kill_group(leader, escapees)


def _kill_group(leader: _Leader, escapees: tuple[psutil.Process, ...]) -> None:
    """SIGKILL the group and its escapees, reap the leader, and wait up to `SETTLE` for the
    kernel to finish the kills (SIGKILL is asynchronous)."""
    signal_all(leader.pgid, escapees, signal.SIGKILL)
    leader.proc.wait()
    proctree.wait_gone(leader.pgid, escapees, time.monotonic() + SETTLE, None)
    reaper.reap()  # the orphans among them are ptx's children now
