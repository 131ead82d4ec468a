"""Signals during a run: SIGINT, SIGTERM and SIGHUP go to the run's handler."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType


@contextlib.contextmanager
def caught(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP go to `handler` for the run; outside the main thread, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, handler) for number in caught}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
