"""How process.py starts a command: posix_spawn where it can, Popen where it must.

Only process.py imports this. `os.posix_spawn` starts a command with less of ptx's own
Python per start than `subprocess.Popen` (BENCHMARKS.md has the figures). posix_spawn cannot
change the working directory before Python 3.13, so a command that runs elsewhere than ptx
itself, or whose executable is not found on the child's PATH, goes through Popen, which
also says exactly why it cannot start.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# What Popen's restore_signals resets: Python ignores SIGPIPE, and an ignored signal stays
# ignored across exec, so `yes | head` in a task would never end by SIGPIPE.
_DEFAULT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name)
)


class Process(Protocol):
    """What process.py uses of a started command; subprocess.Popen has it."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def start(argv: Sequence[str], cwd: str, env: Mapping[str, str], log: int) -> Process:
    """Start `argv` in a new session, stdin from /dev/null, stdout and stderr to the open
    file descriptor `log`."""
    how = _direct(argv[0], cwd, env, log)
    if how is not None:
        _seal_inherited_fds()
        try:
            return Spawned(_posix_spawn(*how, argv, env, log))
        except OSError:
            pass  # not found, or e.g. a missing interpreter: Popen says which, exactly
    # No preexec_fn: it would disable CPython's vfork fast path.
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
    )


def _posix_spawn(
    executable: str, search: bool, argv: Sequence[str], env: Mapping[str, str], log: int
) -> int:
    return (os.posix_spawnp if search else os.posix_spawn)(
        executable,
        list(argv),
        env,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2),
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        ],
        setsid=True,
        setsigdef=_DEFAULT_SIGNALS,
    )


def _direct(program: str, cwd: str, env: Mapping[str, str], log: int) -> tuple[str, bool] | None:
    """How posix_spawn may start `program`: the executable, and whether posix_spawnp is to
    search PATH for it (it searches ptx's PATH, so only when the child's is the same). None
    when Popen must: another working directory, a log on descriptors 0-2 (Popen moves it
    out of the way first), or a program not found on the child's PATH (Popen says why)."""
    if not hasattr(os, "posix_spawn") or log <= 2 or not _same_directory(cwd):
        return None
    if os.sep in program:
        return program, False
    if env.get("PATH") == os.environ.get("PATH"):
        return program, True
    for directory in os.get_exec_path(env):  # the child's own PATH, as Popen searches it
        candidate = os.path.join(directory, program)  # noqa: PTH118 - per spawn: kept lean
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):  # noqa: PTH113
            return candidate, False
    return None


def _same_directory(cwd: str) -> bool:
    try:
        here = os.getcwd()  # noqa: PTH109 - per spawn: kept lean
        return cwd == here or os.path.samefile(cwd, here)  # noqa: PTH121
    except OSError:  # a missing directory: Popen reports it
        return False


@functools.cache
def _seal_inherited_fds() -> None:
    """Make descriptors ptx inherited from its parent close on exec, as Popen's close_fds
    would for each child. Every descriptor Python and SQLite open is close-on-exec already."""
    listing = Path("/proc/self/fd")
    for entry in listing.iterdir() if listing.is_dir() else ():
        fd = int(entry.name)
        if fd > 2:  # stdin, stdout and stderr stay as they are
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)  # noqa: FBT003 - the stdlib's signature
            except OSError:  # the listing's own descriptor, closed by now
                continue


class Spawned:
    """A process started by posix_spawn, with the part of Popen's interface ptx uses."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                self._reap(0)
            return self.returncode
        deadline, delay = time.monotonic() + timeout, 0.0005
        while (code := self.poll()) is None:  # polled like Popen.wait(timeout): 0.5 ms upwards
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
        return code

    def _reap(self, flags: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere: the status is lost, as Popen says 0
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)
