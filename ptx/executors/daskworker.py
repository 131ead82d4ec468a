"""What runs on a Dask worker for one attempt: the command under ptx's runner, a watchdog that
ends it when the worker loses its scheduler, and a note to the driver of every execution."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import distributed
from distributed.core import Status as WorkerStatus
from distributed.diagnostics.plugin import WorkerPlugin

import ptx
from ptx.executors import process
from ptx.executors.logfile import log_end

LOG_TAIL_BYTES = 64 * 2**20
"""At most this much of an attempt's output comes back from a worker: the end of it."""

WATCH_SECONDS = 0.5
"""How often an attempt's watchdog looks at its worker's link to the scheduler."""

_REMEMBERED_STOPS = 10_000  # stops for attempts that had not started here yet
# A worker in these states has lost its scheduler (it closes itself at once when the link
# breaks), so nobody will read the attempt's result: the watchdog ends the attempt.
_ORPHANED = frozenset({WorkerStatus.closing, WorkerStatus.closed, WorkerStatus.failed})

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


def remote_attempt(spec: process.ProcessSpec, token: str, topic: str) -> RemoteResult:
    """Run one attempt on this worker with the same runner as a local run; never raises. Each
    execution is announced on the driver's event `topic` first, so that one the scheduler
    starts again after a worker died is seen by the driver."""
    worker = _worker()
    address = socket.gethostname() if worker is None else str(worker.address)
    host = socket.gethostname()
    if worker is not None:
        worker.log_event(topic, {"token": token, "worker": address, "at": time.time()})
    if not Path(spec.cwd).is_dir():
        failed = process.ProcessOutcome.never_ran(
            f"cwd {spec.cwd} does not exist on worker {address}", exit_code=126
        )
        return RemoteResult(outcome=failed, log=b"", dropped=0, worker=address, host=host)
    stop = process.Stop()
    with _LOCK:
        stopped_before_start = _STOPPED.pop(token, False)
        _RUNNING[token] = stop
    try:
        if stopped_before_start:
            outcome = process.ProcessOutcome.never_ran(
                "stopped before it started", interrupted=True
            )
            return RemoteResult(outcome=outcome, log=b"", dropped=0, worker=address, host=host)
        with _Watchdog(worker, stop), tempfile.TemporaryDirectory(prefix="ptx-attempt-") as tmp:
            log_path = Path(tmp) / "attempt.log"
            here = dataclasses.replace(spec, argv=_supervised(spec.argv), log_path=str(log_path))
            outcome = process.run_process(here, stop)
            log, dropped = log_end(log_path, LOG_TAIL_BYTES)
    finally:
        with _LOCK:
            _RUNNING.pop(token, None)
    return RemoteResult(outcome=outcome, log=log, dropped=dropped, worker=address, host=host)


class _Watchdog:
    """While the attempt runs, a thread stops it (TERM, grace, KILL) once the worker has lost
    its scheduler: the worker closes then, but would wait for its running tasks to end."""

    def __init__(self, worker: distributed.Worker | None, stop: process.Stop) -> None:
        self.worker, self.stop, self.done = worker, stop, threading.Event()
        self.thread = threading.Thread(target=self._watch, name="ptx-watchdog", daemon=True)

    def __enter__(self) -> None:
        if self.worker is not None:
            self.thread.start()

    def __exit__(self, *_exc: object) -> None:
        self.done.set()

    def _watch(self) -> None:
        while not self.done.wait(WATCH_SECONDS):
            if orphaned(self.worker):
                self.stop.request()
                return


def orphaned(worker: distributed.Worker | None) -> bool:
    """Whether `worker` lost its link to the scheduler (it is closing, or its stream is)."""
    if worker is None:
        return False
    if worker.status in _ORPHANED:
        return True
    stream = worker.batched_stream
    return stream.comm is not None and stream.comm.closed()


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


def allowed_failures(dask_scheduler: distributed.Scheduler) -> int:
    """Run on the scheduler: how often it re-runs a task whose worker died."""
    return int(dask_scheduler.allowed_failures)


def rerun(keys: list[str], dask_scheduler: distributed.Scheduler) -> list[str]:
    """Run on the scheduler: which of `keys` it started again because their worker died (it
    counts those deaths as the task's suspicious marks, whatever the workers told)."""
    tasks = dask_scheduler.tasks
    return [key for key in keys if key in tasks and tasks[key].suspicious > 0]


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


def _worker() -> distributed.Worker | None:
    try:
        return distributed.get_worker()
    except ValueError:  # not inside a worker: called directly, as the tests may
        return None


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
