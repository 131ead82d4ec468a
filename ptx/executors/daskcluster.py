"""Getting a Dask cluster ready: the loopback one ptx starts itself, and what ptx checks before
it uses a scheduler (the address answers as one, in time; a worker; the same ptx)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from typing import TYPE_CHECKING

import distributed
from distributed.comm.addressing import get_address_host_port, parse_address
from distributed.comm.core import connect
from distributed.comm.registry import get_backend

import ptx
from ptx.core.errors import PtxError
from ptx.executors.daskworker import allowed_failures, probe

_QUIET_WORKERS = "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED"  # read as a worker process starts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def handshake(address: str, timeout: float) -> None:
    """Connect to `address` and exchange Dask's greeting within `timeout` seconds, or say in one
    line why not: Dask's own connect does not bound the greeting, which a silent port (a
    dashboard's, say) never sends, and it fails on a foreign server with whatever it read."""

    try:
        scheme, _location = parse_address(address)
        get_backend(scheme)
        if scheme in {"tcp", "tls"}:
            get_address_host_port(address)  # Dask itself finds a missing port only later
    except ValueError as exc:
        raise PtxError(f"{address} is not a Dask scheduler address: {_line(exc)}") from exc

    async def greet() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(greet(), timeout))
    except (TimeoutError, asyncio.TimeoutError) as exc:
        raise PtxError(
            f"cannot reach the Dask scheduler at {address}: no Dask answer within {timeout:g} s"
        ) from exc
    except OSError as exc:
        raise PtxError(f"cannot reach the Dask scheduler at {address}: {_line(exc)}") from exc
    except Exception as exc:
        raise PtxError(
            f"{address} is not a Dask scheduler: it answered what Dask cannot read ({_line(exc)})"
        ) from exc


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_cluster(
    client: distributed.Client,
    address: str,
    worker_wait: float,
    notify: Callable[[str, bool], None],
) -> int:
    """Waits for a first worker and checks the versions; the scheduler's allowed-failures."""
    if not client.nthreads():
        notify(f"waiting for a first Dask worker at {address} (up to {worker_wait:g} s)", False)  # noqa: FBT003
    try:
        client.wait_for_workers(1, timeout=worker_wait)
    except TimeoutError as exc:
        raise PtxError(f"no Dask worker joined {address} within {worker_wait:g} s") from exc
    try:
        versions = {"scheduler": client.run_on_scheduler(probe), **client.run(probe)}
    except Exception as exc:
        raise PtxError(
            f"ptx is not importable on the Dask cluster at {address}: install the same "
            f"ptx[dask] on the scheduler and every worker ({type(exc).__name__}: {exc})"
        ) from exc
    wrong = {where: found for where, found in versions.items() if found != ptx.__version__}
    if wrong:
        where, found = next(iter(wrong.items()))
        raise PtxError(
            f"ptx {found} on {where}, {ptx.__version__} here: the Dask cluster at {address} "
            "needs the same ptx[dask] version everywhere"
        )
    failures = int(client.run_on_scheduler(allowed_failures))
    if failures:
        notify(
            f"the Dask scheduler at {address} starts a task again when its worker dies "
            f"(allowed-failures {failures}); ptx stops any re-run and fails the attempt: "
            "set distributed.scheduler.allowed-failures to 0 for exactly-once attempts",
            True,  # noqa: FBT003
        )
    return failures


def start_local_cluster(*, workers: int, threads: int) -> distributed.LocalCluster:
    """A loopback cluster whose scheduler hands a dead worker's attempt back to ptx (as a
    failure its retry policy judges) instead of re-running it elsewhere behind ptx's back."""
    with _quiet_workers():
        return _local_cluster(workers, threads)


def _local_cluster(workers: int, threads: int) -> distributed.LocalCluster:
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
        # Even without a dashboard the scheduler serves HTTP, on 8787 unless told otherwise;
        # a second cluster would then warn and move: ask for a free loopback port up front.
        scheduler_kwargs={"allowed_failures": 0, "dashboard_address": "127.0.0.1:0"},
    )


@contextlib.contextmanager
def _quiet_workers() -> Iterator[None]:
    """Worker processes started meanwhile log nothing and ignore SIGINT for good (an ignored
    signal stays ignored across exec, and Python leaves it so): the terminal's Ctrl-C reaches
    every process in its group, but ptx, not the terminal, stops their tasks (TERM, grace,
    KILL) and then them. ptx ignores it meanwhile too: a Ctrl-C during the cluster's start
    (about a second) is lost. Both are set where a spawned process inherits them, and only
    meanwhile, so that no task's environment carries them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ[_QUIET_WORKERS] = "critical"
    try:
        yield
    finally:
        os.environ.pop(_QUIET_WORKERS, None)
        signal.signal(signal.SIGINT, previous)


def close_quietly(cluster: distributed.LocalCluster | None) -> None:
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()
