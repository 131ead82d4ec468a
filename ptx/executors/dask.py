"""Attempts on a Dask cluster: the driver side (DaskExecutor) and what runs on a worker."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import distributed
from distributed.diagnostics.plugin import WorkerPlugin

import ptx
from ptx.core.errors import PtxError
from ptx.executors import process
from ptx.executors.logfile import log_end
from ptx.run import safety

if TYPE_CHECKING:
    from collections.abc import Callable

LOG_TAIL_BYTES = 64 * 2**20
"""At most this much of an attempt's output comes back from a worker: the end of it."""

_SLICE = 0.05  # how often a waiting driver thread looks at the stop request
_ANSWER_MARGIN = 10.0  # after a stop, the worker gets the grace period plus this to answer
_RESULT_SECONDS = 60.0  # to fetch the result of an attempt that ended
_CLIENT_GONE = frozenset({"closing", "closed"})  # Client.status once it cannot answer
_WORKERS_TIMEOUT = 30.0  # an external scheduler with no worker would make every task wait
_REMEMBERED_STOPS = 10_000  # stops for attempts that had not started here yet

# Parent-death signal: when the worker thread that spawned the attempt dies (worker SIGKILLed,
# OOM), the kernel sends USR1 to this shell, which kills its whole process group. It ignores
# ptx's own SIGTERM to the group (the command gets it, with its grace period) so that `wait`
# returns the command's own status; `env --default-signal` undoes, for the command, that
# ignored TERM and the INT/QUIT bash ignores for background jobs. A command killed by a signal
# is re-raised, so the outcome reads as locally. The shell's own stderr goes to /dev/null so
# its job messages ("Killed") stay out of the task's log.
_SUPERVISOR = (
    'exec 3>&2 2>/dev/null; trap "" TERM; trap "kill -KILL 0" USR1; '
    'env --default-signal=INT,QUIT,TERM "$@" 2>&3 3>&- & wait $!; s=$?; '
    'if [ "$s" -gt 128 ] && [ "$s" -lt 160 ]; then trap - TERM USR1; kill -$((s - 128)) $$; fi; '
    'exit "$s"'
)

# Worker-process state: kill_remote (run on the worker's event loop) finds attempts here.
_RUNNING: dict[str, process.Stop] = {}
_STOPPED: dict[str, bool] = {}
_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RemoteResult:
    """What a worker sends back for one attempt."""

    outcome: process.ProcessOutcome
    log: bytes  # the last LOG_TAIL_BYTES of the attempt's output
    dropped: int  # bytes cut from the front of the output
    worker: str  # the worker's address, e.g. tcp://10.0.0.5:40123
    host: str


def remote_attempt(spec: process.ProcessSpec, token: str) -> RemoteResult:
    """Run one attempt on this worker with the same runner as a local run; never raises."""
    worker = _worker_address()
    host = socket.gethostname()
    if not Path(spec.cwd).is_dir():
        failed = process.ProcessOutcome.never_ran(
            f"cwd {spec.cwd} does not exist on worker {worker}", exit_code=126
        )
        return RemoteResult(outcome=failed, log=b"", dropped=0, worker=worker, host=host)
    stop = process.Stop()
    with _LOCK:
        stopped_before_start = _STOPPED.pop(token, False)
        _RUNNING[token] = stop
    try:
        if stopped_before_start:
            outcome = process.ProcessOutcome.never_ran(
                "stopped before it started", interrupted=True
            )
            return RemoteResult(outcome=outcome, log=b"", dropped=0, worker=worker, host=host)
        with tempfile.TemporaryDirectory(prefix="ptx-attempt-") as scratch:
            log_path = Path(scratch) / "attempt.log"
            here = dataclasses.replace(spec, argv=_supervised(spec.argv), log_path=str(log_path))
            outcome = process.run_process(here, stop)
            log, dropped = log_end(log_path, LOG_TAIL_BYTES)
    finally:
        with _LOCK:
            _RUNNING.pop(token, None)
    return RemoteResult(outcome=outcome, log=log, dropped=dropped, worker=worker, host=host)


def kill_remote(token: str, immediate: bool) -> bool:
    """Stop the attempt `token` if it runs on this worker (True); else remember the stop so
    the attempt does not start here later. Never blocks: the worker's own runner does the
    TERM, grace, KILL."""
    with _LOCK:
        stop = _RUNNING.get(token)
        if stop is None:
            _STOPPED[token] = True
            while len(_STOPPED) > _REMEMBERED_STOPS:
                del _STOPPED[next(iter(_STOPPED))]
            return False
    stop.request(immediate=immediate)
    return True


def probe() -> str:
    """The ptx version where this runs; a failure to import it surfaces at connect time."""
    return ptx.__version__


class KillOnRelease(WorkerPlugin):
    """Stops an attempt whose key the scheduler releases while it runs: the driver went away
    (crashed or killed) or gave up on it, so nobody will read its result."""

    name = "ptx-kill-on-release"

    def transition(self, key: object, start: str, finish: str, **_kwargs: object) -> None:
        if start == "executing" and finish in {"cancelled", "released", "forgotten"}:
            token = _token_of(key)
            if token is not None:
                kill_remote(token, immediate=False)


def _token_of(key: object) -> str | None:
    if isinstance(key, str) and key.startswith("ptx-"):
        return key.rsplit("-", 1)[-1]
    return None


def _worker_address() -> str:
    try:
        return str(distributed.get_worker().address)
    except ValueError:  # not inside a worker: called directly, as the tests may
        return socket.gethostname()


def _supervised(argv: tuple[str, ...]) -> tuple[str, ...]:
    wrapper = _supervisor()
    return argv if wrapper is None else (*wrapper, *argv)


@functools.cache
def _supervisor() -> tuple[str, ...] | None:
    """The parent-death wrapper, or None where it cannot work (not Linux, old coreutils): there
    a worker that dies may leave its attempt's processes running."""
    setpriv, bash, env = shutil.which("setpriv"), shutil.which("bash"), shutil.which("env")
    if setpriv is None or bash is None or env is None:
        return None
    probe = subprocess.run([env, "--default-signal=TERM", "true"], check=False, capture_output=True)
    if probe.returncode != 0:
        return None
    return (setpriv, "--pdeathsig", "SIGUSR1", "--", bash, "-c", _SUPERVISOR, "ptx")


class DaskExecutor:
    """Runs each attempt as one Dask task; the graph, resources and retries stay in the driver."""

    def __init__(
        self, client: distributed.Client, cluster: distributed.LocalCluster | None = None
    ) -> None:
        self.client = client
        self._cluster = cluster  # started for this run, so closed with it
        self.slots: int | None = sum(client.nthreads().values()) or None

    def run(
        self,
        spec: process.ProcessSpec,
        stop: process.Stop,
        on_start: Callable[[int, float], None] | None = None,
    ) -> process.ProcessOutcome:
        """Run one attempt on some worker and block until it ended; its log lands in
        `spec.log_path`. `on_start` is not called: a remote process group means nothing to
        local reaping, so the log's first line names the worker, host and group instead."""
        del on_start
        result = (
            process.ProcessOutcome.never_ran("stopped before it started", interrupted=True)
            if stop.requested
            else self._submit(spec, stop)
        )
        if isinstance(result, RemoteResult):
            _deliver(spec.log_path, result)
            return result.outcome
        _note(spec.log_path, [f"[ptx] {result.error}"])
        return result

    def _submit(
        self, spec: process.ProcessSpec, stop: process.Stop
    ) -> RemoteResult | process.ProcessOutcome:
        token = uuid.uuid4().hex
        future = self.client.submit(remote_attempt, spec, token, key=_key(spec, token), pure=False)
        try:
            return self._await(future, token, stop, spec.grace)
        finally:
            # A held result is recomputed if its worker dies, so let go of it at once.
            future.release()

    def _await(
        self, future: distributed.Future[RemoteResult], token: str, stop: process.Stop, grace: float
    ) -> RemoteResult | process.ProcessOutcome:
        done = threading.Event()
        future.add_done_callback(lambda _future: done.set())
        passed_on: bool | None = None  # `immediate` of the last stop sent to the workers
        answer_by = float("inf")
        while True:
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
            if done.wait(_SLICE) or self.client.status in _CLIENT_GONE:
                break
        if self.client.status in _CLIENT_GONE:
            # Closed under the attempt (its driver went away): the future will never resolve,
            # nor its result arrive (asking for it waited for good), and the worker plugin
            # stops the remote process once the scheduler releases it.
            return process.ProcessOutcome.never_ran(
                f"the Dask client is {self.client.status}: the attempt's end is unknown",
                interrupted=True,
            )
        return _collect(future)

    def _stop_remote(self, token: str, *, immediate: bool) -> bool:
        """Pass a stop to every worker; True if one of them was running the attempt."""
        answers = self.client.run(kill_remote, token, immediate, on_error="return")
        return any(answer is True for answer in answers.values())

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _collect(future: distributed.Future[RemoteResult]) -> RemoteResult | process.ProcessOutcome:
    try:
        # The future is done: its result is a small record one fetch away. The bound only
        # keeps a connection that dies during that fetch from holding the attempt for good.
        result = future.result(timeout=_RESULT_SECONDS)
    except distributed.KilledWorker as exc:
        return process.ProcessOutcome.never_ran(f"worker died: {exc}")
    except Exception as exc:  # noqa: BLE001 - any Dask failure is this attempt's failure
        return process.ProcessOutcome.never_ran(
            f"dask could not run the attempt: {type(exc).__name__}: {exc}"
        )
    if not isinstance(result, RemoteResult):
        return process.ProcessOutcome.never_ran(
            f"dask returned {type(result).__name__}, not a RemoteResult"
        )
    return result


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


def start_local_cluster(*, workers: int, threads: int) -> distributed.LocalCluster:
    """A loopback cluster whose scheduler hands a dead worker's attempt back to ptx (as a
    failure its retry policy judges) instead of re-running it elsewhere behind ptx's back."""
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


def connect(address: str | None, *, timeout: float = 10.0) -> DaskExecutor:
    """An executor on the scheduler at `address`, or on a loopback cluster started for the run."""
    cluster = None
    if address is None:
        cpus = safety.available_cores()  # the cores this process may use, not the host's
        cluster = start_local_cluster(workers=min(cpus, 2), threads=max(1, cpus // 2))
        address = cluster.scheduler_address
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        _close_quietly(cluster)
        raise PtxError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        _check_cluster(client, address)
        client.register_plugin(KillOnRelease(), name=KillOnRelease.name)
    except BaseException:
        client.close()
        _close_quietly(cluster)
        raise
    return DaskExecutor(client, cluster)


def _check_cluster(client: distributed.Client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=_WORKERS_TIMEOUT)
    except TimeoutError as exc:
        raise PtxError(f"no Dask worker joined {address} within {_WORKERS_TIMEOUT:g} s") from exc
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


def _close_quietly(cluster: distributed.LocalCluster | None) -> None:
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()
