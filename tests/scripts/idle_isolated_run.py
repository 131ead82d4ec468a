"""`ptx run --isolate -j 4` in this directory with a machine probe that always reads idle, so
tasks meant to overlap do however busy the machine is; the report goes to report.json.

Usage: idle_isolated_run.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from ptx.cli.plain import PlainView
from ptx.outputs.report import write_report_json
from ptx.run import workflow
from ptx.run.safety import IdleProbe


def main() -> int:
    request = workflow.RunRequest(
        file=None, tag=None, config=None, cwd=Path.cwd(), environ={}, jobs=4, isolate=True
    )
    result = workflow.execute(request, PlainView(sys.stderr), probe=IdleProbe())
    write_report_json(result, Path("report.json"))
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
