"""`ptx run -j 2` in this directory as on a system without O_TMPFILE."""

from __future__ import annotations

import sys

from ptx.cli import app
from ptx.executors.logfile import LogFile

LogFile.unnamed = False
sys.exit(app.main(["run", "-j", "2"]))
