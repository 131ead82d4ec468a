"""The terminal: Typer commands, the console and the views that render a run's events."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType


def _interrupted_while_starting(_signum: int, _frame: FrameType | None) -> None:
    # A KeyboardInterrupt raised inside an import would end ptx with a traceback.
    sys.stderr.write("ptx: interrupted\n")
    raise SystemExit(130)


# Ctrl-C while the command line's modules load (a few hundred ms) ends ptx quietly; app.py puts
# Python's own handler back once they are loaded, so that each command handles it as usual.
STARTING = (
    threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler
)
if STARTING:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
