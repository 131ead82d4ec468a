"""Run ptx in this process and write its exit code and every module it imported, as JSON.

Usage: ptx_imports.py OUT_FILE PTX_ARG...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ptx.cli.app import main

out, *argv = sys.argv[1:]
code = main(argv)
Path(out).write_text(json.dumps([code, sorted(sys.modules)]))
