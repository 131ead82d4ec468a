"""With stdin closed, open the log argv[1] (so it is descriptor 0) and start `echo hello`
into it; print the log's descriptor, the process's type and its exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ptx.executors import spawn

os.close(0)
log = Path(sys.argv[1]).open("ab", buffering=0)  # noqa: SIM115 - open until the process ends
proc = spawn.start(("/bin/sh", "-c", "echo hello"), str(Path.cwd()), {}, log.fileno())
print(log.fileno(), type(proc).__name__, proc.wait())
