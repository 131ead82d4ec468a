"""How many tasks run at once: -j or the config's default, and why when that is not as written."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.executors import fdbudget

if TYPE_CHECKING:
    from ptx.taskmaster.config import Config


@dataclass(frozen=True, slots=True, kw_only=True)
class Jobs:
    jobs: int
    why: str | None = None  # set when `jobs` is not what was asked, or goes past the cpu cap


def available_cores() -> int:
    """The cores this process may run on (a container's cpuset counts, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def concurrency_cap(cpu_per_task: float, cores: int) -> int:
    """How many tasks the cores hold when each is assumed to use `cpu_per_task` cores."""
    return max(1, math.floor(cores / cpu_per_task + 1e-9))


def effective_jobs(requested: int | None, config: Config, cores: int | None = None) -> Jobs:
    """An explicit -j (`requested`) runs as asked, as make, ninja and GNU parallel do, capped
    only by max_concurrent_tasks; the default, max_concurrency, is also capped by cores /
    cpu_per_task when the machine's `cores` are given (None: tasks run elsewhere)."""
    if not config.enabled:  # the kill switch: one task at a time
        return Jobs(jobs=1, why="parallel_execution.enabled is false: one task at a time")
    limit = config.resource_limits.max_concurrent_tasks
    wanted = requested or config.max_concurrency
    shown = f"-j {wanted}" if requested else f"max_concurrency {wanted}"
    if wanted > limit:
        return Jobs(jobs=limit, why=f"{shown} lowered to {limit} by max_concurrent_tasks")
    cap = None if cores is None else concurrency_cap(config.resource_limits.cpu_per_task, cores)
    if cap is None or wanted <= cap:
        return Jobs(jobs=wanted)
    allows = f"cpu_per_task {config.resource_limits.cpu_per_task:g} allows {cap} on {_cores(cores)}"
    if requested:
        return Jobs(jobs=wanted, why=f"-j {wanted} runs as asked, though {allows}")
    return Jobs(jobs=cap, why=f"{shown} lowered to {cap}: {allows} (an explicit -j is not)")


def within_descriptors(jobs: int) -> Jobs:
    """`jobs`, lowered to what the file descriptors ptx may open can supervise (see
    executors/fdbudget.py, which first raises the soft limit toward what `jobs` need)."""
    fitting, limit = fdbudget.supervisable(jobs)
    if fitting >= jobs:
        return Jobs(jobs=jobs)
    why = f"ptx may open {limit} files (ulimit -n), {fdbudget.PER_TASK} per running task"
    return Jobs(jobs=fitting, why=f"-j {jobs} lowered to {fitting}: {why}")


def _cores(cores: int | None) -> str:
    return "1 core" if cores == 1 else f"{cores} cores"
