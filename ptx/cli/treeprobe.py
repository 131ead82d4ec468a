"""CPU % and memory of the live table's running tasks, each over its whole process tree."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import psutil

from ptx.executors.proctree import tree_pids

if TYPE_CHECKING:
    from collections.abc import Iterable


class TreeProbe:
    """CPU % and memory of each task's whole process tree, from cached psutil.Process objects
    (cpu_percent measures between two calls on the same object)."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}
        self._usage: dict[int, tuple[float, int]] = {}

    def sample(self, roots: Iterable[int | None]) -> None:
        usage, alive = {}, {}
        for root in roots:
            if root is None:
                continue
            cpu, rss = 0.0, 0
            for pid in tree_pids(root):
                with contextlib.suppress(psutil.Error):
                    process = self._processes.get(pid) or psutil.Process(pid)
                    with process.oneshot():
                        cpu += process.cpu_percent(None)
                        rss += process.memory_info().rss
                    alive[pid] = process
            usage[root] = (cpu, rss)
        self._processes, self._usage = alive, usage

    def usage(self, root: int | None) -> tuple[float | None, int | None]:
        return self._usage.get(root, (None, None)) if root is not None else (None, None)
