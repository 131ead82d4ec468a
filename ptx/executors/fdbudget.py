"""How many local tasks ptx can supervise at once with the file descriptors it may open.

Each running local attempt holds its log and its pidfd, and the thread supervising it opens
up to two /proc files at a time while it looks for the attempt's processes; ptx itself holds
the journal (three files), the run lock, wake-up pipes and what it inherited, and opens a few
more at moments (a status write-back, the report files, a spawn's error pipe). Running out
fails attempts with "too many open files", so the soft RLIMIT_NOFILE is raised as far as the
run needs (up to the hard limit, and no further: tasks inherit it, and some programs still
use select(), which cannot watch descriptors above 1023), and -j is lowered to what fits.
"""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path

PER_TASK = 4  # log, pidfd, and two /proc files open at once in the supervising thread
RESERVE = 24  # ptx's own descriptors opened at moments, besides what is open at the start


def supervisable(jobs: int) -> tuple[int, int]:
    """(how many of `jobs` tasks can run at once, the descriptor limit that allows it), after
    raising the soft limit toward what `jobs` tasks need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = _open_now()
    needed = in_use + RESERVE + PER_TASK * jobs
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY:
        return jobs, soft
    return max(1, min(jobs, (soft - in_use - RESERVE) // PER_TASK)), soft


def _open_now() -> int:
    """Descriptors open in ptx now (inherited ones count against the limit too)."""
    try:
        return sum(1 for _ in Path("/proc/self/fd").iterdir()) - 1  # minus the listing's own
    except OSError:
        return 16  # about what ptx holds once its journal is open
