"""Tests for executors.process: real processes, real process groups, real log files."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from builders import SCRIPTS, pids_in

from ptx.executors import process
from ptx.executors.process import (
    ProcessOutcome,
    ProcessSpec,
    Stop,
    group_alive,
    kill_stale_group,
    kill_stale_groups,
    run_process,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

HANG_GUARD = 10.0  # generous upper bound that only catches hangs


@pytest.fixture(params=["pidfd", "polling"])
def waiting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the pidfd wait and again with the portable polling fallback."""
    if request.param == "polling":
        monkeypatch.setattr(process, "_pidfd_open", lambda _pid: None)
    return str(request.param)


def _live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _spec(tmp_path: Path, argv: tuple[str, ...], **overrides: Any) -> ProcessSpec:
    fields: dict[str, Any] = {
        "argv": argv,
        "cwd": str(tmp_path),
        "env": {"PATH": os.environ["PATH"]},
        "log_path": str(tmp_path / "logs" / "run" / "task.log"),
        "timeout": HANG_GUARD,
        "grace": 0.5,
        **overrides,
    }
    return ProcessSpec(**fields)


def _sh(tmp_path: Path, script: str, **overrides: Any) -> ProcessSpec:
    return _spec(tmp_path, ("/bin/sh", "-c", script), **overrides)


def _log(spec: ProcessSpec) -> str:
    return Path(spec.log_path).read_text(encoding="utf-8")


@pytest.mark.usefixtures("waiting")
@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_and_both_streams_land_in_the_log(tmp_path: Path, code: int) -> None:
    spec = _spec(tmp_path, (sys.executable, str(SCRIPTS / "both_streams.py"), str(code)))

    outcome = run_process(spec, Stop())

    assert outcome.exit_code == code
    assert outcome.signal is None
    assert not outcome.timed_out
    assert not outcome.interrupted
    assert outcome.error is None
    assert outcome.started_at <= outcome.ended_at
    assert "to out\n" in _log(spec)
    assert "to err\n" in _log(spec)


def test_log_is_appended_to_and_env_is_the_complete_environment(tmp_path: Path) -> None:
    spec = _sh(tmp_path, 'echo "$PTX_X:${HOME:-no home}"', env={"PTX_X": "x"})
    run_process(spec, Stop())
    run_process(spec, Stop())

    assert _log(spec) == "x:no home\nx:no home\n"


def test_stdin_is_dev_null(tmp_path: Path) -> None:
    spec = _sh(tmp_path, "cat; echo cat-done", timeout=5.0)

    outcome = run_process(spec, Stop())

    assert outcome.exit_code == 0
    assert not outcome.timed_out
    assert _log(spec) == "cat-done\n"


def test_on_start_gets_the_pgid_and_its_create_time(tmp_path: Path) -> None:
    seen: list[tuple[int, float, int, float]] = []

    def on_start(pgid: int, create_time: float) -> None:
        leader = psutil.Process(pgid)
        seen.append((pgid, create_time, os.getpgid(pgid), leader.create_time()))

    outcome = run_process(_sh(tmp_path, "sleep 0.2"), Stop(), on_start)

    assert len(seen) == 1
    pgid, create_time, group_of_pgid, real_create_time = seen[0]
    assert pgid == outcome.pid == group_of_pgid
    assert pgid != os.getpgid(0)
    assert create_time == pytest.approx(real_create_time, abs=0.01)


def test_an_error_in_on_start_propagates_and_leaves_no_process(tmp_path: Path) -> None:
    started: list[tuple[int, float]] = []

    def on_start(pgid: int, create_time: float) -> None:
        started.append((pgid, create_time))
        raise RuntimeError("journal is gone")

    with pytest.raises(RuntimeError, match="journal is gone"):
        run_process(_sh(tmp_path, "sleep 30 & wait"), Stop(), on_start)

    assert len(started) == 1
    assert not group_alive(*started[0])
    assert not _live(started[0][0])


@pytest.mark.usefixtures("waiting")
def test_timeout_kills_the_whole_tree(tmp_path: Path, pid_file: Path) -> None:
    script = f"sleep 30 & echo $! >> {pid_file}; sleep 30 & echo $! >> {pid_file}; wait"
    spec = _sh(tmp_path, script, timeout=1.0)

    outcome = run_process(spec, Stop())

    assert outcome.timed_out
    assert not outcome.interrupted
    assert outcome.signal == signal.SIGTERM
    assert outcome.exit_code is None
    assert len(pids_in(pid_file)) == 2
    assert not any(_live(pid) for pid in pids_in(pid_file))
    assert f"[ptx] timed out after 1 s: SIGTERM to process group {outcome.pid}\n" in _log(spec)


@pytest.mark.usefixtures("waiting")
def test_a_group_that_ignores_term_is_killed_after_grace(tmp_path: Path, pid_file: Path) -> None:
    # An ignored TERM is inherited, so the grandchildren ignore it too.
    script = f"trap '' TERM; sleep 30 & echo $! >> {pid_file}; echo $$ >> {pid_file}; wait"
    spec = _sh(tmp_path, script, timeout=0.5, grace=0.5)
    began = time.monotonic()

    outcome = run_process(spec, Stop())

    assert time.monotonic() - began < 0.5 + 0.5 + HANG_GUARD
    assert outcome.timed_out
    assert outcome.signal == signal.SIGKILL
    assert len(pids_in(pid_file)) == 2
    assert not any(_live(pid) for pid in pids_in(pid_file))
    assert "still running after 0.5 s: SIGKILL to process group" in _log(spec)


@pytest.mark.usefixtures("waiting")
def test_background_child_of_a_successful_command_is_ended(tmp_path: Path, pid_file: Path) -> None:
    spec = _sh(tmp_path, f"sleep 30 & echo $! >> {pid_file}; echo done")

    outcome = run_process(spec, Stop())

    assert outcome.exit_code == 0
    assert not outcome.timed_out
    assert len(pids_in(pid_file)) == 1
    assert not _live(pids_in(pid_file)[0])
    assert "command ended, 1 process left: SIGTERM to process group" in _log(spec)


def test_a_child_that_left_the_session_is_killed_on_timeout(tmp_path: Path, pid_file: Path) -> None:
    escape = (
        f"import os, time; os.setsid(); open({str(pid_file)!r}, 'a').write(f'{{os.getpid()}} ')"
    )
    script = f'{sys.executable} -c "{escape}; time.sleep(30)" & wait'
    spec = _sh(tmp_path, script, timeout=1.0)

    outcome = run_process(spec, Stop())

    assert outcome.timed_out
    assert len(pids_in(pid_file)) == 1
    assert not _live(pids_in(pid_file)[0])


def _stop_later(stop: Stop, requests: tuple[bool, ...]) -> threading.Thread:
    """Request a stop 0.3 s later, then again 0.3 s after that...: one per entry (immediate?)."""

    def request() -> None:
        for immediate in requests:
            time.sleep(0.3)
            stop.request(immediate=immediate)

    thread = threading.Thread(target=request)
    thread.start()
    return thread


@pytest.mark.usefixtures("waiting")
def test_graceful_stop_from_another_thread(tmp_path: Path, pid_file: Path) -> None:
    stop = Stop()
    spec = _sh(tmp_path, f"sleep 30 & echo $! >> {pid_file}; wait", timeout=None)
    thread = _stop_later(stop, (False,))

    outcome = run_process(spec, stop)
    thread.join()

    assert outcome.interrupted
    assert not outcome.timed_out
    assert outcome.signal == signal.SIGTERM
    assert stop.requested
    assert not stop.immediate
    assert not any(_live(pid) for pid in pids_in(pid_file))
    assert f"[ptx] interrupted: SIGTERM to process group {outcome.pid}\n" in _log(spec)


@pytest.mark.usefixtures("waiting")
@pytest.mark.parametrize("requests", [(True,), (False, True)], ids=["immediate", "escalated"])
def test_immediate_stop_does_not_wait_for_grace(
    tmp_path: Path, pid_file: Path, requests: tuple[bool, ...]
) -> None:
    stop = Stop()
    script = f"trap '' TERM; sleep 30 & echo $! >> {pid_file}; wait"
    spec = _sh(tmp_path, script, timeout=None, grace=60.0)
    began = time.monotonic()
    thread = _stop_later(stop, requests)

    outcome = run_process(spec, stop)
    thread.join()

    assert time.monotonic() - began < HANG_GUARD
    assert outcome.interrupted
    assert outcome.signal == signal.SIGKILL
    assert stop.immediate
    assert not any(_live(pid) for pid in pids_in(pid_file))
    assert "SIGKILL to process group" in _log(spec)


def test_concurrent_attempts_share_one_stop(tmp_path: Path) -> None:
    stop = Stop()
    specs = [
        _sh(tmp_path, f"exit {n}", log_path=str(tmp_path / f"{n}.log"), timeout=None)
        for n in range(8)
    ]
    results: dict[int, ProcessOutcome] = {}
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, run_process(specs[n], stop)))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {n: outcome.exit_code for n, outcome in results.items()} == {n: n for n in range(8)}
    assert len({outcome.pid for outcome in results.values()}) == 8


def test_a_stop_requested_before_the_start_ends_the_attempt_at_once(tmp_path: Path) -> None:
    stop = Stop()
    stop.request()

    outcome = run_process(_sh(tmp_path, "sleep 30", timeout=None), stop)

    assert outcome.interrupted
    assert outcome.ended_at - outcome.started_at < HANG_GUARD


@pytest.mark.parametrize(
    ("argv", "cwd", "code", "words"),
    [
        (("ptx-no-such-command-xyz",), None, 127, "cannot start ptx-no-such-command-xyz"),
        (("/bin/true",), "missing", 127, "working directory"),
        (("./not-executable",), None, 126, "permission denied"),
    ],
    ids=["missing-executable", "missing-cwd", "not-executable"],
)
def test_spawn_failure_is_an_outcome_not_an_exception(
    tmp_path: Path, argv: tuple[str, ...], cwd: str | None, code: int, words: str
) -> None:
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    spec = _spec(tmp_path, argv, cwd=str(tmp_path / cwd) if cwd else str(tmp_path))

    outcome = run_process(spec, Stop(), on_start=lambda *_: pytest.fail("nothing started"))

    assert outcome.exit_code == code
    assert outcome.error is not None
    assert words in outcome.error
    assert "\n" not in outcome.error
    assert outcome.pid == 0
    assert _log(spec) == f"[ptx] {outcome.error}\n"


def test_ptx_lines_start_on_a_line_of_their_own(tmp_path: Path) -> None:
    spec = _sh(tmp_path, "printf partial; sleep 30", timeout=0.5, grace=0.3)

    run_process(spec, Stop())

    assert _log(spec).startswith("partial\n[ptx] timed out after 0.5 s")


@pytest.mark.slow
def test_big_output_goes_to_the_file_not_to_memory(tmp_path: Path) -> None:
    size = 200_000_000
    spec = _sh(tmp_path, f"head -c {size} /dev/zero", timeout=60.0)
    rss_before = psutil.Process().memory_info().rss

    outcome = run_process(spec, Stop())

    assert outcome.exit_code == 0
    assert Path(spec.log_path).stat().st_size == size
    assert psutil.Process().memory_info().rss - rss_before < 20_000_000


def test_spec_and_outcome_survive_pickling(tmp_path: Path) -> None:
    spec = _sh(tmp_path, "true")

    outcome = run_process(spec, Stop())

    assert pickle.loads(pickle.dumps(spec)) == spec  # noqa: S301 - our own bytes
    assert pickle.loads(pickle.dumps(outcome)) == outcome  # noqa: S301 - our own bytes


@dataclass(frozen=True)
class _Group:
    leader: subprocess.Popen[bytes]
    member: int


@pytest.fixture
def detached(tmp_path: Path) -> Iterator[_Group]:
    """A group that ptx did not start: a session leader with a sleeping member."""
    pid_file = tmp_path / "member"
    script = f"sleep 30 & echo $! > {pid_file}; wait"
    leader = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True)
    deadline = time.monotonic() + HANG_GUARD
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    group = _Group(leader=leader, member=int(pid_file.read_text()))
    yield group
    for pid in (leader.pid, group.member):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    leader.wait()


def test_kill_stale_group_kills_a_verified_group(detached: _Group) -> None:
    pgid = detached.leader.pid
    create_time = psutil.Process(pgid).create_time()
    assert group_alive(pgid, create_time)

    assert kill_stale_group(pgid, create_time, grace=0.5)

    detached.leader.wait(timeout=HANG_GUARD)
    assert not _live(detached.member)
    assert not group_alive(pgid, create_time)
    assert not kill_stale_group(pgid, create_time, grace=0.5)


def test_kill_stale_group_never_hits_a_reused_pid(detached: _Group) -> None:
    pgid = detached.leader.pid
    recorded = psutil.Process(pgid).create_time() - 5.0

    assert not group_alive(pgid, recorded)
    assert not kill_stale_group(pgid, recorded, grace=0.5)

    assert detached.leader.poll() is None
    assert _live(detached.member)


def test_kill_stale_group_finds_members_of_a_leaderless_group(tmp_path: Path) -> None:
    leader = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 30 >/dev/null & echo $!"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    create_time = psutil.Process(leader.pid).create_time()
    assert leader.stdout is not None
    member = int(leader.stdout.read())
    leader.wait()
    try:
        assert not kill_stale_group(leader.pid, create_time + 5.0, grace=0.5)
        assert _live(member)
        assert group_alive(leader.pid, create_time)

        assert kill_stale_group(leader.pid, create_time, grace=0.5)

        assert not _live(member)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
        leader.stdout.close()


def test_stale_groups_all_get_sigterm_before_any_gets_sigkill(tmp_path: Path) -> None:
    pids, out = tmp_path / "pids", tmp_path / "terms"
    argv = [sys.executable, str(SCRIPTS / "counts_peers_on_term.py"), str(pids), str(out)]
    leaders = [subprocess.Popen(argv, start_new_session=True) for _ in range(5)]
    try:
        deadline = time.monotonic() + HANG_GUARD
        while len(pids_in(pids)) < len(leaders):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        groups = [(leader.pid, psutil.Process(leader.pid).create_time()) for leader in leaders]

        assert kill_stale_groups(groups, grace=1.0) == len(leaders)

        # Killed one after another, the k-th would have seen only 5 - k leaders still running.
        assert out.read_text().split() == ["5"] * len(leaders)
        assert [leader.wait(HANG_GUARD) for leader in leaders] == [-signal.SIGKILL] * 5
    finally:
        for leader in leaders:
            leader.kill()
            leader.wait()


@pytest.mark.parametrize("pgid", [0, 1, -5])
def test_kill_stale_group_refuses_special_pgids(pgid: int) -> None:
    assert not kill_stale_group(pgid, 0.0, grace=0.1)
    assert not group_alive(pgid, 0.0)


# --- the leader's start time, as recorded for a later run to recognise the group


def test_create_time_is_what_psutil_says(tmp_path: Path) -> None:
    for _ in range(5):
        child = process.spawn(_spec(tmp_path, ("sleep", "5")))
        assert isinstance(child, process.Child)
        try:
            from_psutil = psutil.Process(child.pgid).create_time()

            assert child.create_time == pytest.approx(from_psutil, abs=1e-9)
        finally:
            child.close()
