"""Watching a real ptx process from a test."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    import subprocess


def wait_with_peak_rss(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int]:
    """Wait for `proc`, sampling its resident memory every 20 ms: (exit code, peak bytes)."""
    peak = 0

    def sample() -> None:
        nonlocal peak
        with contextlib.suppress(psutil.NoSuchProcess):
            watched = psutil.Process(proc.pid)
            while proc.poll() is None:
                peak = max(peak, watched.memory_info().rss)
                time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        code = proc.wait(timeout)
    finally:
        sampler.join()
    return code, peak
