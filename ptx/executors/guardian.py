"""A watcher that outlives a ptx killed with SIGKILL and ends that run's tasks.

A `kill -9` of ptx leaves its tasks running: no handler runs, and `PR_SET_PDEATHSIG` would
only end each group's leader (it is not inherited by the leader's children), fires when the
*thread* that forked exits, and needs code between fork and exec that posix_spawn cannot run.
So each local run starts one small Python process, in a session of its own (a signal to
ptx's process group does not reach it), reading a pipe whose only writer is ptx. ptx writes
`end` before it exits; end of file without it means ptx died. The guardian then sends SIGTERM
to every process whose environment carries the run's `PTX_RUN_ID` (tasks, their children and
anything that escaped their groups), waits the grace period once for all, and sends SIGKILL
to what is left. Processes of `keep_daemons` tasks are spared. The next run's journal reaping
remains the fallback for when the guardian itself is killed.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import IO, TYPE_CHECKING, cast

from ptx.executors import reaper

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

NAME = "ptx-guardian"  # in the guardian's command line, so people (and tests) can find it

# Runs with -I -S: no site-packages, no ptx, only what starts in a few milliseconds.
_CODE = r"""
import os, signal, sys, time
run_id, grace = sys.argv[2], float(sys.argv[3])
signal.signal(signal.SIGINT, signal.SIG_IGN)
data = sys.stdin.buffer.read()
if data.endswith(b"end\n"):
    sys.exit(0)
marker = b"PTX_RUN_ID=" + run_id.encode()
spare = {b"PTX_TASK_ID=" + line[5:] for line in data.splitlines() if line.startswith(b"keep ")}

def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == b"Z" else fields[19]

def members():
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                entries = set(environ.read().split(b"\0"))
        except OSError:
            continue
        if marker in entries and not entries & spare:
            found[int(name)] = start_time(name)
    return {pid: born for pid, born in found.items() if born is not None}

def send(found, sig):
    for pid, born in found.items():
        if start_time(pid) == born:
            try:
                os.kill(pid, sig)
            except OSError:
                pass

found = members()
send(found, signal.SIGTERM)
deadline = time.monotonic() + grace
while any(start_time(pid) == born for pid, born in found.items()):
    if time.monotonic() >= deadline:
        send({**found, **members()}, signal.SIGKILL)
        break
    time.sleep(0.02)
"""


@contextlib.contextmanager
def guarding(run_id: str, keep: Iterable[str], grace: float) -> Iterator[int | None]:
    """Keep a guardian for the run while the block runs; yields its pid, or None where it
    could not start (no /proc: not Linux)."""
    try:
        with reaper.starting() as own:
            guardian = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _CODE, NAME, run_id, repr(grace)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
            own.append(guardian.pid)
    except OSError:
        yield None
        return
    pipe = cast("IO[bytes]", guardian.stdin)  # stdin=PIPE gives one
    try:
        pipe.write(b"".join(b"keep %s\n" % unit.encode() for unit in keep))
        pipe.flush()
        yield guardian.pid
    finally:
        with contextlib.suppress(OSError):
            pipe.write(b"end\n")
        with contextlib.suppress(OSError):
            pipe.close()
        guardian.wait()
        reaper.waited(guardian.pid)
