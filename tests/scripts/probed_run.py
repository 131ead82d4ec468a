"""`ptx run` in this directory with a machine probe that reads fixed figures.

Usage: probed_run.py JOBS CORES MEMORY_USED MEMORY_AVAILABLE CPU_USED
"""

from __future__ import annotations

import sys
from pathlib import Path

from ptx.cli.plain import PlainView
from ptx.run import workflow
from ptx.run.safety import Reading


class FixedProbe:
    def __init__(self, reading: Reading, cores: int) -> None:
        self._reading, self._cores = reading, cores

    def read(self) -> Reading:
        return self._reading

    def cores(self) -> int:
        return self._cores


def main(jobs: str, cores: str, used: str, available: str, cpu: str) -> int:
    reading = Reading(memory_used=float(used), memory_available=int(available), cpu_used=float(cpu))
    request = workflow.RunRequest(
        file=None, tag=None, config=None, cwd=Path.cwd(), environ={}, jobs=int(jobs)
    )
    probe = FixedProbe(reading, int(cores))
    result = workflow.execute(request, PlainView(sys.stderr), probe=probe)
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
