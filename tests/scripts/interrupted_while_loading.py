"""Load ptx.cli, get a SIGINT as a terminal's Ctrl-C would send one, then load the command line
(Typer, Rich, every command): with argv[1] "before" the SIGINT arrives while the command line
is still to be loaded; with "after", once it is loaded, print whether Ctrl-C is Python's
KeyboardInterrupt again."""

from __future__ import annotations

import os
import signal
import sys

import ptx.cli

if sys.argv[1] == "before":
    os.kill(os.getpid(), signal.SIGINT)
import ptx.cli.app  # noqa: F401

if sys.argv[1] == "before":
    print("not interrupted")
else:
    print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
