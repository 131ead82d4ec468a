"""`ptx run` in this directory with a machine probe that reads fixed figures.

Usage: probed_run.py JOBS CORES MEMORY_USED MEMORY_AVAILABLE LOAD_AVERAGE LOAD_LIMIT
("-" for JOBS: no -j given; "-" for LOAD_LIMIT: no --load-average)
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


def main(argv: list[str]) -> int:
    jobs, cores, used, available, load, limit = argv
    reading = Reading(
        memory_used=float(used), memory_available=int(available), load_average=float(load)
    )
    request = workflow.RunRequest(
        file=None,
        tag=None,
        config=None,
        cwd=Path.cwd(),
        environ={},
        jobs=None if jobs == "-" else int(jobs),
        load_average=None if limit == "-" else float(limit),
    )
    probe = FixedProbe(reading, int(cores))
    result = workflow.execute(request, PlainView(sys.stderr), probe=probe)
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
