"""Try the run lock of the state directory argv[1]: print "acquired", or why it is refused."""

from __future__ import annotations

import sys
from pathlib import Path

from ptx.journal.statedir import RunLockedError, run_lock

try:
    with run_lock(Path(sys.argv[1])):
        print("acquired")
except RunLockedError as exc:
    print(exc)
