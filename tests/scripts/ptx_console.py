"""`ptx.cli.app.console()`, the `ptx` script's entry, after setting up what the test asks for
first (so an exit handler registered here runs after those of the modules ptx imports).

Usage: ptx_console.py [--exit-handler | --late-writer FILE | --print-at-exit] -- PTX_ARG...
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from pathlib import Path


def _late_write(path: Path) -> None:
    time.sleep(0.3)
    path.write_text("done")


def _set_up(option: str, args: list[str]) -> None:
    if option == "--exit-handler":  # no newline: stderr keeps it buffered until the exit
        atexit.register(lambda: print("exit handler ran", file=sys.stderr, end=""))
    elif option == "--late-writer":
        threading.Thread(target=_late_write, args=(Path(args.pop(0)),)).start()
    elif option == "--print-at-exit":
        atexit.register(lambda: sys.stdout.write("printed at exit"))


args = sys.argv[1:]
while args[0] != "--":
    _set_up(args.pop(0), args)

from ptx.cli import app  # noqa: E402 - after the set-up, as the docstring says

sys.argv = ["ptx", *args[1:]]
app.console()
