"""Attempts on a Dask cluster, the driver side: submit, wait, and tell cluster trouble apart."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import dask.config

# Dask logs its reconnect attempts and worker deaths, with tracebacks, to stderr; ptx says
# what happened in its own words. Set before distributed is imported, as it reads this then,
# and passed on to the workers of a cluster ptx starts.
_QUIET = dict.fromkeys(
    ("distributed", "distributed.client", "distributed.gc", "tornado", "tornado.application"),
    "critical",
)
dask.config.set({"distributed.logging": _QUIET})

import distributed  # noqa: E402

from ptx.core.errors import PtxError  # noqa: E402
from ptx.executors import daskcluster, process  # noqa: E402
from ptx.executors.daskworker import (  # noqa: E402
    LOG_TAIL_BYTES,
    KillOnRelease,
    RemoteResult,
    kill_remote,
    remote_attempt,
    rerun,
)
from ptx.run import jobs  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

    from ptx.executors.base import Settings

    Notify = Callable[[str, bool], None]  # a message for the views; True: a warning

for _name in _QUIET:  # in case distributed was imported, and its logging set up, before ptx
    logging.getLogger(_name).setLevel(logging.CRITICAL)

start_local_cluster = daskcluster.start_local_cluster  # the loopback cluster, for the benchmarks

_SLICE = 0.05  # how often a waiting driver thread looks at the stop request
_ANSWER_MARGIN = 10.0  # after a stop, the worker gets the grace period plus this to answer
_RESULT_SECONDS = 60.0  # to fetch the result of an attempt that ended
_WATCH_SECONDS = 0.5  # how often the driver asks the scheduler how many workers it has
_CLOSE_SECONDS = 5.0  # closing a client whose scheduler is gone must not wait for it
EXECUTIONS = "ptx-executions"  # the event topic on which workers announce each execution
WORKER_WAIT = 30.0  # default seconds without any worker before waiting attempts fail


def _no_notice(_message: str, _warning: bool) -> None:
    """Where notices go when nobody listens."""


class DaskExecutor:
    """Runs each attempt as one Dask task; the graph, resources and retries stay in the driver.

    `lost` says why the cluster can run nothing more for this run (its scheduler went away,
    or it had no worker for `worker_wait` seconds); every attempt after that fails at once.
    Failures of the cluster rather than of the command carry `infrastructure=True`."""

    def __init__(  # noqa: PLR0913 - the client and how to watch it
        self,
        client: distributed.Client,
        address: str,
        *,
        cluster: distributed.LocalCluster | None = None,
        notify: Notify = _no_notice,
        worker_wait: float = WORKER_WAIT,
        reruns: bool = True,
    ) -> None:
        self.client, self.address = client, address
        self._cluster = cluster  # started for this run, so closed with it
        self.slots: int | None = sum(client.nthreads().values()) or None
        self.lost: str | None = None
        self.local = False  # the processes are the workers' children
        self._notify, self._worker_wait = notify, worker_wait
        self._lock = threading.Lock()
        self._executions: dict[str, list[str]] = {}  # per attempt: workers that started it
        self._keys: dict[str, str] = {}  # per attempt running: its Dask key
        self._rerun: set[str] = set()  # attempts the scheduler started again
        self._reruns = reruns  # whether the scheduler may (its allowed-failures is not 0)
        # One topic for every ptx on the scheduler, which keeps the last 1,000 events of each
        # topic: one per driver would pile up there run after run. Tokens tell attempts apart.
        client.subscribe_topic(EXECUTIONS, self._on_execution)
        self._closing = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="ptx-dask-watch", daemon=True)
        self._watcher.start()

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int | None, float | None], None] | None = None,
    ) -> process.ProcessOutcome:
        """Run one attempt on some worker and block until it ended; its log lands in
        `spec.log_path`. `on_start` gets no group as the attempt is submitted: a remote process
        group means nothing to local reaping, so the log's first line names the worker, host
        and group instead. The
        outcome's times are the driver's, from this call to its end, queueing in Dask included:
        the one duration of an attempt everywhere ptx shows one."""
        began = time.time()
        result: RemoteResult | process.ProcessOutcome
        if stop.requested:
            result = process.ProcessOutcome.never_ran("stopped before it started", interrupted=True)
        elif self.lost is not None:
            result = self._failed(self.lost)
        else:
            if on_start is not None:
                on_start(None, None)
            result = self._submit(spec, stop)
        if isinstance(result, RemoteResult):
            _deliver(spec.log_path, result)
            outcome = result.outcome
        else:
            _note(spec.log_path, [f"[ptx] {result.error}"])
            outcome = result
        return dataclasses.replace(outcome, started_at=began, ended_at=time.time())

    def _submit(
        self, spec: process.ProcessSpec, stop: process.Stop
    ) -> RemoteResult | process.ProcessOutcome:
        token = uuid.uuid4().hex
        key = _key(spec, token)
        with self._lock:
            self._executions[token], self._keys[token] = [], key
        try:
            future = self.client.submit(
                remote_attempt, spec, token, EXECUTIONS, key=key, pure=False
            )
        except Exception as exc:  # noqa: BLE001 - a client that cannot submit lost its cluster
            return self._failed(self._lose(f"cannot submit to {self.address}: {exc}"))
        try:
            return self._await(future, token, stop, spec.grace)
        finally:
            # A held result is recomputed if its worker dies, so let go of it at once. A client
            # closed meanwhile has let go of everything, and its loop may be gone.
            with contextlib.suppress(Exception):
                future.release()
            with self._lock:
                self._executions.pop(token, None)
                self._keys.pop(token, None)
                self._rerun.discard(token)

    def _await(
        self, future: distributed.Future[RemoteResult], token: str, stop: process.Stop, grace: float
    ) -> RemoteResult | process.ProcessOutcome:
        done = threading.Event()
        future.add_done_callback(lambda _future: done.set())
        passed_on: bool | None = None  # `immediate` of the last stop sent to the workers
        answer_by = float("inf")
        while not done.wait(_SLICE):
            trouble = self._trouble(token, stop)
            if trouble is not None:
                future.cancel()
                return trouble
            if stop.requested and passed_on is not stop.immediate:
                passed_on = stop.immediate
                if not self._stop_remote(token, immediate=passed_on) and not done.is_set():
                    future.cancel()
                    return process.ProcessOutcome.never_ran(
                        "interrupted before it started", interrupted=True
                    )
                answer_by = time.monotonic() + grace + _ANSWER_MARGIN
            elif time.monotonic() > answer_by:
                future.cancel()
                return process.ProcessOutcome.never_ran(
                    "no answer from the worker after the stop", interrupted=True
                )
        # Ended by the scheduler's loss (Dask cancels every future then) rather than on a
        # worker: asking a client that lost its scheduler for a result waits for good.
        self._check_reruns([token])  # a short re-run may end before the watcher looks
        if future.cancelled():  # ptx cancels only on its way out above: Dask did, on closing
            self._lose(f"lost the Dask scheduler at {self.address}")
        return self._trouble(token, stop) or _collect(future)

    def _trouble(self, token: str, stop: process.Stop) -> process.ProcessOutcome | None:
        """Why the attempt cannot end well any more: the cluster is lost, or Dask started its
        command a second time (its first worker died)."""
        if self.client.status != "running":
            self._lose(f"lost the Dask scheduler at {self.address}")
        if self.lost is not None:
            if stop.requested:  # a stop was asked for: that is how the attempt ends
                return process.ProcessOutcome.never_ran(
                    f"interrupted; {self.lost}: the attempt's end is unknown", interrupted=True
                )
            return self._failed(self.lost)
        with self._lock:
            workers = list(self._executions.get(token, ()))
            rerun = token in self._rerun or len(workers) > 1
        if not rerun:
            return None
        self._stop_remote(token, immediate=True)
        return self._failed(
            "the attempt's worker died and Dask would run it again (the scheduler's "
            "allowed-failures is not 0): ptx stops any re-run and fails the attempt; "
            f"workers that started it: {', '.join(workers) or 'unknown'}"
        )

    def _check_reruns(self, tokens: list[str]) -> None:
        """Asks the scheduler which of these attempts it started again: a worker may die
        before its announcement of the first execution left it."""
        if not self._reruns or not tokens or self.client.status != "running":
            return
        with self._lock:
            keys = {self._keys[token]: token for token in tokens if token in self._keys}
        try:
            again = self.client.run_on_scheduler(rerun, list(keys))
        except Exception:  # noqa: BLE001 - the scheduler's loss is told by the client's status
            return
        with self._lock:
            self._rerun.update(keys[key] for key in again if key in keys)

    def _failed(self, reason: str) -> process.ProcessOutcome:
        return process.ProcessOutcome.never_ran(f"cluster: {reason}", infrastructure=True)

    def _lose(self, reason: str) -> str:
        """The cluster can run nothing more for this run; the first reason stands, and is told
        (unless ptx is closing the client itself)."""
        with self._lock:
            first, self.lost = self.lost is None, self.lost or reason
        if first and not self._closing.is_set():
            self._notify(f"{reason}: ptx starts nothing more", True)  # noqa: FBT003
        return self.lost

    def _on_execution(self, event: tuple[float, dict[str, str]]) -> None:
        """On the client's event loop: a worker starts an attempt's command."""
        message = event[1]
        with self._lock:
            started = self._executions.get(message.get("token", ""))
            if started is not None:
                started.append(str(message.get("worker")))

    def _watch(self) -> None:
        """Notices the scheduler's loss between attempts, and a cluster without workers."""
        workerless_since: float | None = None
        while not self._closing.wait(_WATCH_SECONDS) and self.lost is None:
            if self.client.status != "running":
                self._lose(f"lost the Dask scheduler at {self.address}")
                return
            try:
                workers = len(self.client.nthreads(callback_timeout=_WATCH_SECONDS * 4))
            except Exception:  # noqa: BLE001, S112 - the status says next round what it was
                continue
            workerless_since = self._count_workers(workers, workerless_since)
            with self._lock:
                running = list(self._keys)
            self._check_reruns(running)

    def _count_workers(self, workers: int, since: float | None) -> float | None:
        now = time.monotonic()
        if workers:
            if since is not None:
                self._notify(f"a Dask worker joined {self.address}", False)  # noqa: FBT003
            return None
        if since is None:
            self._notify(
                f"no Dask worker at {self.address}: waiting up to {self._worker_wait:g} s "
                "for one before failing the attempts that wait",
                True,  # noqa: FBT003
            )
            return now
        if now - since >= self._worker_wait:
            self._lose(f"no Dask worker at {self.address} for {self._worker_wait:g} s")
        return since

    def _stop_remote(self, token: str, *, immediate: bool) -> bool:
        """Pass a stop to every worker; True if one of them was running the attempt."""
        try:
            answers = self.client.run(kill_remote, token, immediate, on_error="return")
        except Exception:  # noqa: BLE001 - no scheduler to pass it: the workers stop it
            return False
        return any(answer is True for answer in answers.values())

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(Exception):
            self.client.close(timeout=_CLOSE_SECONDS)
        daskcluster.close_quietly(self._cluster)


def _collect(future: distributed.Future[RemoteResult]) -> RemoteResult | process.ProcessOutcome:
    """The attempt's result; a Dask failure (its worker died, say) is a cluster failure."""
    try:
        # The future is done: its result is a small record one fetch away. The bound only
        # keeps a connection that dies during that fetch from holding the attempt for good.
        result = future.result(timeout=_RESULT_SECONDS)
    except distributed.KilledWorker as exc:
        reason = f"worker died: {exc}"
    except Exception as exc:  # noqa: BLE001 - any Dask failure is this attempt's failure
        reason = f"dask could not run the attempt: {type(exc).__name__}: {exc}"
    else:
        if isinstance(result, RemoteResult):
            return result
        reason = f"dask returned {type(result).__name__}, not a RemoteResult"
    return process.ProcessOutcome.never_ran(f"cluster: {reason}", infrastructure=True)


def _key(spec: process.ProcessSpec, token: str) -> str:
    """Unique per attempt, readable in the Dask dashboard, never equal to a string argument."""
    env = spec.env
    parts = [env.get("PTX_RUN_ID", ""), env.get("PTX_TASK_ID", ""), env.get("PTX_ATTEMPT", "")]
    label = "-".join(part for part in parts if part) or Path(spec.log_path).stem
    return f"ptx-{label}-{token}"


def _deliver(log_path: str, result: RemoteResult) -> None:
    outcome = result.outcome
    lines = [f"[ptx] ran on Dask worker {result.worker} (host {result.host}, pid {outcome.pid})"]
    if result.dropped:
        lines.append(
            f"[ptx] the first {result.dropped} bytes of output were dropped: "
            f"a worker sends back only the last {LOG_TAIL_BYTES // 2**20} MiB"
        )
    if outcome.error is not None and not result.log:
        lines.append(f"[ptx] {outcome.error}")
    _note(log_path, lines, result.log)


def _note(log_path: str, lines: list[str], body: bytes = b"") -> None:
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        log.write("".join(f"{line}\n" for line in lines).encode() + body)


def open_executor(settings: Settings) -> DaskExecutor:
    """The registered opener (executors/base.py): the scheduler at `--scheduler`, else
    DASK_SCHEDULER_ADDRESS, else a loopback cluster started now and stopped by close()."""
    address = settings.address or settings.environ.get("DASK_SCHEDULER_ADDRESS") or None
    notify = settings.notify or _no_notice
    return connect(address, worker_wait=settings.worker_wait, notify=notify)


def connect(
    address: str | None,
    *,
    timeout: float = 10.0,
    worker_wait: float = WORKER_WAIT,
    notify: Notify = _no_notice,
) -> DaskExecutor:
    """An executor on the scheduler at `address`, or on a loopback cluster started for the run.
    `timeout` bounds reaching the scheduler, handshake included; `worker_wait` how long the
    cluster may have no worker, at connect and later."""
    cluster = None
    if address is None:
        cpus = jobs.available_cores()  # the cores this process may use, not the host's
        cluster = start_local_cluster(workers=min(cpus, 2), threads=max(1, cpus // 2))
        address = cluster.scheduler_address
    else:
        daskcluster.handshake(address, timeout)
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        daskcluster.close_quietly(cluster)
        raise PtxError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        failures = daskcluster.check_cluster(client, address, worker_wait, notify)
        client.register_plugin(KillOnRelease(), name=KillOnRelease.name)
        return DaskExecutor(
            client,
            address,
            cluster=cluster,
            notify=notify,
            worker_wait=worker_wait,
            reruns=failures > 0,
        )
    except BaseException:
        client.close()
        daskcluster.close_quietly(cluster)
        raise
