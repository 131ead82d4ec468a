"""Per-task overhead of the Dask executor against the local one, on no-op (`true`) tasks.

Both executors are called the way the runner calls them: from a thread pool as wide as the
cluster's slots, one blocking run() per task. The Dask side uses a loopback LocalCluster of
2 workers x 2 threads, started once (its start time is reported apart).
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.executors import process
from ptx.executors.local import LocalExecutor

if TYPE_CHECKING:
    from ptx.executors.base import Executor

TASKS = 200
REPEAT = 3


def _specs(folder: Path) -> list[process.ProcessSpec]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return [
        process.ProcessSpec(
            argv=("true",),
            cwd=str(folder),
            env=env,
            log_path=str(folder / "logs" / f"{number}.log"),
            timeout=60.0,
        )
        for number in range(TASKS)
    ]


def _per_task_ms(executor: Executor, folder: Path, threads: int) -> float:
    """Median wall time per task over REPEAT batches of TASKS tasks, in milliseconds."""
    samples = []
    for _ in range(REPEAT):
        specs, stop = _specs(folder), process.Stop()
        with ThreadPoolExecutor(threads) as pool:
            started = time.perf_counter()
            outcomes = list(pool.map(executor.run, specs, itertools.repeat(stop)))
            samples.append((time.perf_counter() - started) / TASKS * 1000)
        failed = [outcome for outcome in outcomes if outcome.exit_code != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} no-op tasks failed, e.g. {failed[0]}")
    return statistics.median(samples)


def run(out_dir: Path) -> list[str]:
    try:
        from ptx.executors import dask as dask_executor  # noqa: PLC0415 - the extra may be missing
    except ModuleNotFoundError:
        return ["dask overhead: distributed not installed (pip install 'ptx[dask]'), skipped"]
    started = time.perf_counter()
    cluster = dask_executor.start_local_cluster(workers=2, threads=2)
    dask = dask_executor.connect(cluster.scheduler_address)
    ready = time.perf_counter() - started
    try:
        slots = dask.slots or 4
        dask_ms = _per_task_ms(dask, out_dir / "dask", slots)
        local_ms = _per_task_ms(LocalExecutor(), out_dir / "local", slots)
    finally:
        dask.close()
        cluster.close()
    return [
        f"{TASKS} no-op tasks (`true`) through the executor, {slots} at a time",
        f"{'local executor':36} median {local_ms:6.2f} ms per task",
        (
            f"{'dask executor (loopback, 2x2)':36} median {dask_ms:6.2f} ms per task"
            f"  +{dask_ms - local_ms:.2f} ms per task over local"
        ),
        f"{'LocalCluster start + connect':36} {ready:6.2f} s",
    ]


if __name__ == "__main__":  # LocalCluster spawns its workers: this guard is required
    print("\n".join(run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/out"))))
