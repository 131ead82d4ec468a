"""Fixtures shared by the tests that start real processes."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

import pytest
from builders import pids_in

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """A file commands append their pids to; whatever a test left alive is killed afterwards."""
    path = tmp_path / "pids"
    yield path
    for pid in pids_in(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[bytes]]]:
    """ptx processes a test started: killed and reaped if the test left them running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
