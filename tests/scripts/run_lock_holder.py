"""Hold the run lock of the state directory argv[1], say "locked", and sleep."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ptx.journal.statedir import run_lock

with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
