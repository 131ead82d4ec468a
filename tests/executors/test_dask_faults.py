"""`ptx run --executor dask` against a real `dask scheduler` and real `dask worker` processes
on loopback, when they fail: the scheduler or every worker killed mid-run, a worker killed under
a scheduler that re-runs tasks, and addresses that are no Dask scheduler."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

pytest.importorskip("distributed")

import distributed
from projects import (
    HANG_GUARD,
    alive,
    attempts,
    clean_environment,
    keep_track,
    make_project,
    no_leftovers,  # noqa: F401 - an autouse fixture
    progress,
    ptx,
    python,
    q,
    read_report,
    spawn,
    task,
    wait_for,
)

from ptx.core.errors import ExitCode, PtxError
from ptx.executors import dask as dask_executor

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    StartCluster = Callable[..., "Cluster"]

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow  # each test starts its own scheduler and workers: ~3 s


class Cluster:
    """A `dask scheduler` and a `dask worker` CLI process; every process of theirs (the worker's
    nannies and worker processes too) is stopped by its pid at the end."""

    def __init__(
        self, where: Path, *, allowed_failures: int | None = 0, workers: int = 1, threads: int = 2
    ) -> None:
        env = clean_environment()
        if allowed_failures is not None:
            env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(allowed_failures)
        file = where / "scheduler.json"
        self.procs: list[psutil.Process] = []
        self.popens: list[subprocess.Popen[bytes]] = []
        scheduler = "scheduler --host 127.0.0.1 --port 0 --no-dashboard --scheduler-file"
        self.scheduler = self._start([*scheduler.split(), file], where / "scheduler.log", env)
        wait_for(lambda: file.exists() and file.stat().st_size > 0, "the scheduler file")
        self.address: str = json.loads(file.read_text())["address"]
        self.worker_pids: set[int] = set()
        if workers:
            self._start_workers(workers, threads, where, env)

    def _start_workers(self, workers: int, threads: int, where: Path, env: dict[str, str]) -> None:
        worker = f"worker {self.address} --nworkers {workers} --nthreads {threads} --no-dashboard"
        self.worker = self._start(worker.split(), where / "worker.log", env)
        with distributed.Client(self.address, timeout=HANG_GUARD) as client:
            client.wait_for_workers(workers, timeout=HANG_GUARD)
            self.worker_pids = set(client.run(os.getpid).values())
        self.procs += [psutil.Process(pid) for pid in self.worker_pids]

    def _start(self, argv: Sequence[str | Path], log: Path, env: dict[str, str]) -> psutil.Process:
        with log.open("wb") as err:
            started = subprocess.Popen(
                [BIN / "dask", *map(str, argv)], cwd=log.parent, env=env, stdout=err, stderr=err
            )
        self.popens.append(started)
        self.procs.append(psutil.Process(started.pid))
        return self.procs[-1]

    def kill_workers(self) -> None:
        """SIGKILL the worker CLI and every process under it, so no nanny restarts one."""
        for proc in [self.worker, *self.worker.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    def stop(self) -> None:
        for proc in [*self.procs, *_children(self.procs)]:
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil checks the create time: never a reused pid
        for started in self.popens:
            started.wait(HANG_GUARD)


def _children(procs: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            found += proc.children(recursive=True)
    return found


@pytest.fixture
def cluster_at(tmp_path: Path) -> Iterator[StartCluster]:
    """Starts a cluster on demand (some tests need the scheduler's settings changed)."""
    started: list[Cluster] = []

    def start(**options: Any) -> Cluster:
        (tmp_path / "cluster").mkdir(exist_ok=True)
        started.append(Cluster(tmp_path / "cluster", **options))
        return started[-1]

    yield start
    for cluster in started:
        cluster.stop()


def _sleeper(pids: Path) -> str:
    """A command that appends its shell's pid and a background sleep's pid to `pids`, then
    waits: it ends only when something kills it."""
    return f"echo $$ >> {q(pids)}; sleep 300 & echo $! >> {q(pids)}; wait"


def _pids(path: Path, count: int) -> list[int]:
    wait_for(lambda: path.exists() and len(path.read_text().split()) >= count, f"{path}")
    pids = [int(word) for word in path.read_text().split()]
    keep_track(pids)
    return pids


def _all_gone(pids: list[int]) -> bool:
    wait_for(lambda: not any(alive(pid) for pid in pids), f"the end of {pids}")
    return True


def _run(root: Path, address: str) -> subprocess.Popen[bytes]:
    return spawn(
        root, "run", "--executor", "dask", "--scheduler", address, "--report-json", "r.json"
    )


def _statuses(root: Path) -> dict[str, tuple[str, str | None]]:
    report = read_report(root / "r.json")
    return {entry["id"]: (entry["status"], entry.get("reason")) for entry in report["tasks"]}


def test_a_killed_scheduler_fails_the_run_and_leaves_nothing_running(
    cluster_at: StartCluster, tmp_path: Path
) -> None:
    cluster = cluster_at()
    root = make_project(
        tmp_path / "p",
        [
            task(1, _sleeper(tmp_path / "one")),
            task(2, _sleeper(tmp_path / "two")),
            task(3, "true", 1),  # a dependent: skipped
            task(4, "true"),  # waits for a free slot: never started
        ],
        retries=2,  # a retry must not be tried on a lost scheduler
    )
    run = _run(root, cluster.address)
    pids = _pids(tmp_path / "one", 2) + _pids(tmp_path / "two", 2)
    cluster.scheduler.kill()
    assert run.wait(HANG_GUARD) == ExitCode.FAILED
    assert _all_gone(pids)  # the workers' watchdogs ended the commands
    lost = f"lost the Dask scheduler at {cluster.address}"
    assert f"warning: {lost}: ptx starts nothing more" in progress(root)
    assert _statuses(root) == {  # the report names the cluster as the cause
        "1": ("failed", f"cluster: {lost}"),
        "2": ("failed", f"cluster: {lost}"),
        "3": ("skipped", "dependency 1 failed"),
        "4": ("not-run", f"not started: {lost}"),
    }
    assert [(a.task, a.attempt, a.status) for a in attempts(root)] == [
        ("1", 1, "failed"),
        ("2", 1, "failed"),
    ]
    assert "Traceback" not in progress(root)


def test_no_worker_left_fails_the_waiting_attempts(
    cluster_at: StartCluster, tmp_path: Path
) -> None:
    cluster = cluster_at()
    root = make_project(
        tmp_path / "p",
        [
            task(1, _sleeper(tmp_path / "one")),
            task(2, _sleeper(tmp_path / "two")),
            task(3, "true"),  # waits for a free slot, then in Dask for a worker
        ],
        dask_worker_wait_seconds=3,
    )
    run = _run(root, cluster.address)
    pids = _pids(tmp_path / "one", 2) + _pids(tmp_path / "two", 2)
    cluster.kill_workers()
    assert run.wait(HANG_GUARD) == ExitCode.FAILED
    assert _all_gone(pids)  # they died with their workers
    said = progress(root)
    assert f"warning: no Dask worker at {cluster.address}: waiting up to 3 s for one" in said
    gone = f"no Dask worker at {cluster.address} for 3 s"
    assert f"warning: {gone}: ptx starts nothing more" in said
    statuses = _statuses(root)
    assert [(statuses[unit][1] or "")[:27] for unit in "12"] == ["cluster: worker died: Attem"] * 2
    assert statuses["3"] == ("failed", f"cluster: {gone}")
    assert "Traceback" not in said


def test_a_rerun_by_the_scheduler_is_stopped_and_shows_as_a_failed_attempt(
    cluster_at: StartCluster, tmp_path: Path
) -> None:
    # Dask's default scheduler: 3 re-runs, on the other worker.
    cluster = cluster_at(allowed_failures=None, workers=2, threads=1)
    runs = tmp_path / "runs"
    # Every execution of ptx's first attempt waits to be killed; the second attempt succeeds.
    command = f'echo $$ >> {q(runs)}; [ "$PTX_ATTEMPT" = 2 ] || sleep 300'
    root = make_project(tmp_path / "p", [task(1, command)], retries=1)
    run = _run(root, cluster.address)
    first = _pids(runs, 1)
    victim = next(p for p in psutil.Process(first[0]).parents() if p.pid in cluster.worker_pids)
    victim.kill()
    assert run.wait(HANG_GUARD) == ExitCode.OK
    assert _all_gone(_pids(runs, 2))  # the re-run (if it got as far as its first line) too
    said = progress(root)
    assert "allowed-failures 3" in said  # warned at connect
    rerun = "the attempt's worker died and Dask would run it again"
    assert "failed 1 in " in said
    assert f": cluster: {rerun}" in said
    assert "ptx stops any re-run and fails the attempt" in said
    assert [(a.attempt, a.status) for a in attempts(root)] == [(1, "failed"), (2, "succeeded")]
    assert rerun in (root / attempts(root)[0].log_path).read_text()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog does) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_silent_port_is_bad_input_within_the_connect_timeout(silent_port: int) -> None:
    address = f"tcp://127.0.0.1:{silent_port}"
    with pytest.raises(PtxError) as raised:
        dask_executor.connect(address, timeout=1.0)
    assert raised.value.exit_code == ExitCode.BAD_INPUT
    said = f"cannot reach the Dask scheduler at {address}: no Dask answer within 1 s"
    assert str(raised.value) == said


@pytest.fixture
def http_port() -> Iterator[int]:
    """A server that answers anything with HTTP 400, as a web server or dashboard does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = listener.accept()
                    with conn:
                        conn.recv(65536)
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=serve, daemon=True).start()
        yield listener.getsockname()[1]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("tcp://127.0.0.1:{port}", "is not a Dask scheduler: it answered what Dask cannot read"),
        ("bogus://x", "is not a Dask scheduler address: ValueError: unknown address scheme"),
        ("tcp://127.0.0.1", "is not a Dask scheduler address: ValueError: missing port"),
    ],
)
def test_an_address_that_is_no_dask_scheduler_is_bad_input(
    tmp_path: Path, http_port: int, address: str, message: str
) -> None:
    root = make_project(tmp_path, [task(1, "touch ran")])
    address = address.format(port=http_port)
    done = ptx(root, "run", "--executor", "dask", "--scheduler", address)
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.startswith(f"ptx: error: {address} {message}")
    assert len(done.stderr.splitlines()) == 1
    assert not (root / "ran").exists()


def test_an_interrupt_while_the_command_line_loads_prints_no_traceback(tmp_path: Path) -> None:
    done = python(tmp_path, "interrupted_while_loading.py", "before")
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "ptx: interrupted\n")


def test_once_the_command_line_is_loaded_an_interrupt_is_keyboardinterrupt_again(
    tmp_path: Path,
) -> None:
    done = python(tmp_path, "interrupted_while_loading.py", "after")
    assert (done.returncode, done.stdout) == (0, "True\n")


def test_ctrl_c_to_the_terminal_group_stops_a_local_cluster_run_gracefully(tmp_path: Path) -> None:
    # The terminal sends SIGINT to every process in its foreground group, the workers of the
    # cluster ptx starts itself included: they must leave the stop to ptx (TERM, grace).
    pids = tmp_path / "pids"
    root = make_project(tmp_path / "p", [task(1, _sleeper(pids) + "; echo never")])
    with (root / "ptx.err").open("wb") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "ptx", "run", "--executor", "dask"],
            cwd=root,
            env=clean_environment(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # its own group, as a terminal's foreground job
        )
    try:
        running = _pids(pids, 2)
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(HANG_GUARD) == ExitCode.INTERRUPTED
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # only if the test failed: its leftovers
        run.wait(HANG_GUARD)
    assert _all_gone(running)
    said = progress(root)
    assert "warning: interrupted: stopping tasks (Ctrl-C again to kill)" in said
    assert "interrupted 1 in " in said
    assert "worker died" not in said
    assert "Traceback" not in said


def test_a_cluster_without_workers_is_told_then_refused(
    cluster_at: StartCluster, tmp_path: Path
) -> None:
    cluster = cluster_at(workers=0)
    root = make_project(tmp_path / "p", [task(1, "touch ran")], dask_worker_wait_seconds=0.5)
    done = ptx(root, "run", "--executor", "dask", "--scheduler", cluster.address)
    assert done.returncode == ExitCode.BAD_INPUT
    told, error = done.stderr.splitlines()  # the first one stamped, as plain progress lines are
    assert told.endswith(f" waiting for a first Dask worker at {cluster.address} (up to 0.5 s)")
    assert error == f"ptx: error: no Dask worker joined {cluster.address} within 0.5 s"
    assert not (root / "ran").exists()
