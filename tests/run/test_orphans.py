"""Hard faults, with a real ptx: what escapes a task's group, fatal signals, kill -9 of ptx."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import pytest
from builders import SCRIPTS, pids_in
from projects import (
    HANG_GUARD,
    alive,
    idle_run,
    kill_guardian,
    lines,
    make_project,
    progress,
    ptx,
    q,
    spawn,
    statuses,
    task,
    wait_for,
)

from ptx.journal.store import Journal

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


def _escapes(pid_file: Path) -> dict[str, str]:
    """Ways a task's child leaves its process group; each records the pid that escaped. The
    escapee ignores SIGTERM, so only a SIGKILL from ptx ends it."""
    body = f"trap '' TERM; echo $$ >> {q(pid_file)}; exec sleep 60"
    daemon = f"sh -c {q(body)}"
    setpgid = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "if os.fork() == 0:\n"
        "    os.setpgid(0, 0)\n"
        f"    open({str(pid_file)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        "    time.sleep(60)\n"
    )
    return {
        "setsid": f"setsid {daemon} &",
        "double fork and setsid": f"( setsid {daemon} & )",
        "setsid -f": f"setsid -f {daemon}",
        "setpgid": f"{q(sys.executable)} -c {q(setpgid)}",
        "cleared environment": f'setsid -f env -i PATH="$PATH" {daemon}',
    }


_WAYS = ["setsid", "double fork and setsid", "setsid -f", "setpgid", "cleared environment"]


def _escaped(pid_file: Path, then: str) -> str:
    """A task that starts an escapee in each way and then runs `then`."""
    ready = f"while [ $(wc -l < {q(pid_file)}) -lt {len(_WAYS)} ]; do sleep 0.01; done"
    return "\n".join([*_escapes(pid_file).values(), f"touch {q(pid_file)}", ready, then])


# Ends with the task: all but the escapee that cleared its environment, ended with the run.
_WITH_THE_TASK = f"and the {len(_WAYS) - 1} that left it"


def _survivors(pid_file: Path, out: Path) -> str:
    """A command that writes to `out` the pids in `pid_file` that still run (not zombies)."""
    state = "$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)"
    return (
        f"for p in $(cat {q(pid_file)}); do s={state}; "
        f'[ -n "$s" ] && [ "$s" != Z ] && echo $p >> {q(out)}; done; true'
    )


def _log_of(root: Path, unit: str) -> str:
    (log,) = (root / ".ptx" / "logs").glob(f"*/{unit}.log")
    return log.read_text()


def test_escaped_processes_end_with_a_task_that_succeeds(tmp_path: Path, pid_file: Path) -> None:
    survivors = tmp_path / "survivors"
    tasks = [task(1, _escaped(pid_file, "exit 0")), task(2, _survivors(pid_file, survivors), 1)]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    assert _WITH_THE_TASK in _log_of(root, "1")
    # When task 2 ran, only the escapee without ptx's variables was left, for the run's end.
    assert len(lines(survivors)) == 1
    escaped = pids_in(pid_file)
    assert len(escaped) == len(_WAYS)
    assert [pid for pid in escaped if alive(pid)] == []


def test_escaped_processes_end_with_a_task_that_times_out(tmp_path: Path, pid_file: Path) -> None:
    root = make_project(tmp_path, [task(1, _escaped(pid_file, "sleep 60"), ptx_timeout_seconds=2)])
    result = ptx(root, "run")
    assert result.returncode == 1, result.stderr
    assert statuses(root) == {"1": "timeout"}
    assert "timed out after 2 s: SIGTERM to process group" in _log_of(root, "1")
    assert _WITH_THE_TASK in _log_of(root, "1")
    escaped = pids_in(pid_file)
    assert len(escaped) == len(_WAYS)
    assert [pid for pid in escaped if alive(pid)] == []


def test_escaped_processes_end_when_the_run_is_interrupted(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    root = make_project(tmp_path, [task(1, _escaped(pid_file, "touch started; sleep 60"))])
    background.append(proc := spawn(root, "run"))
    wait_for((root / "started").exists, "every way to escape")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(HANG_GUARD) == 130
    assert _WITH_THE_TASK in _log_of(root, "1")
    escaped = pids_in(pid_file)
    assert len(escaped) == len(_WAYS)
    assert [pid for pid in escaped if alive(pid)] == []


def test_a_task_with_keep_daemons_leaves_its_daemon_running(tmp_path: Path, pid_file: Path) -> None:
    daemon = f"setsid -f sh -c {q(f'echo $$ >> {q(pid_file)}; exec sleep 60')}"
    wait = f"while [ ! -s {q(pid_file)} ]; do sleep 0.01; done"
    tasks = [task(1, f"{daemon}; {wait}", ptx_keep_daemons=True), task(2, "true", 1)]
    root = make_project(tmp_path, tasks)
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    (daemon_pid,) = pids_in(pid_file)
    assert alive(daemon_pid)  # the pid_file fixture ends it


def test_keep_daemons_must_be_a_boolean(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true", ptx_keep_daemons="yes")])
    result = ptx(root, "validate")
    assert result.returncode == 1
    assert "metadata.ptx.keep_daemons: must be true or false" in result.stdout


# --- signals sent to ptx itself


def _long_task(pid_file: Path) -> str:
    return f"echo $$ >> {q(pid_file)}; sleep 60 & echo $! >> {q(pid_file)}; wait"


_INTERRUPTS = [
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGXCPU",
    "SIGVTALRM",
    "SIGPROF",
    "SIGIO",
    "SIGPWR",
    "SIGRTMIN",
]


@pytest.mark.parametrize("name", _INTERRUPTS)
def test_a_terminating_signal_stops_the_tasks_and_ends_the_run_in_the_journal(
    name: str, tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    root = make_project(tmp_path, [task(1, _long_task(pid_file)), task(2, "true", 1)])
    background.append(proc := spawn(root, "run"))
    wait_for(lambda: len(pids_in(pid_file)) == 2, "the task to start")
    proc.send_signal(getattr(signal, name))
    assert proc.wait(HANG_GUARD) == 130, progress(root)
    assert [pid for pid in pids_in(pid_file) if alive(pid)] == []
    assert statuses(root) == {"1": "interrupted"}
    with Journal.open(root / ".ptx") as journal:
        last = journal.last_run()
    assert last is not None
    assert last.status == "interrupted"


@pytest.mark.parametrize("name", ["SIGPIPE", "SIGXFSZ"])
def test_sigpipe_and_sigxfsz_leave_the_run_going(
    name: str, tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    go = tmp_path / "go"
    command = f"touch started; while [ ! -e {q(go)} ]; do sleep 0.01; done"
    root = make_project(tmp_path, [task(1, command)])
    background.append(proc := spawn(root, "run"))
    wait_for((root / "started").exists, "the task to start")
    proc.send_signal(getattr(signal, name))
    go.touch()
    assert proc.wait(HANG_GUARD) == 0, progress(root)
    assert statuses(root) == {"1": "succeeded"}


def test_sigquit_kills_the_tasks_without_a_grace_period(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    # The grace period outlasts the hang guard: only an immediate stop ends this run in time.
    command = f"trap '' TERM; {_long_task(pid_file)}"
    root = make_project(tmp_path, [task(1, command)], kill_grace_seconds=120)
    background.append(proc := spawn(root, "run"))
    wait_for(lambda: len(pids_in(pid_file)) == 2, "the task to start")
    proc.send_signal(signal.SIGQUIT)
    assert proc.wait(HANG_GUARD) == 130
    assert "killing tasks now" in progress(root)
    assert [pid for pid in pids_in(pid_file) if alive(pid)] == []


# --- kill -9 of ptx


def test_the_tasks_of_a_ptx_killed_with_sigkill_die_with_it(
    tmp_path: Path, pid_file: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    escapee = f"setsid -f sh -c {q(f'echo $$ >> {q(pid_file)}; exec sleep 60')}"
    root = make_project(tmp_path, [task(1, f"{escapee}; {_long_task(pid_file)}")])
    background.append(proc := spawn(root, "run"))
    wait_for(lambda: len(pids_in(pid_file)) == 3, "the task and its escapee to start")
    proc.kill()
    proc.wait(HANG_GUARD)
    wait_for(lambda: not any(map(alive, pids_in(pid_file))), "the tasks to die with ptx")


def test_the_next_run_reaps_a_dead_runs_groups_all_at_once(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    pids, terms, rerun = tmp_path / "pids", tmp_path / "terms", tmp_path / "rerun"
    counter = SCRIPTS / "counts_peers_on_term.py"
    script = f"{q(sys.executable)} {q(counter)} {q(pids)} {q(terms)}"
    tasks = [task(n, f"[ -e {q(rerun)} ] && exit 0; exec {script}") for n in range(1, 6)]
    root = make_project(tmp_path, tasks, kill_grace_seconds=1)
    background.append(proc := spawn(root, argv=idle_run(len(tasks))))
    wait_for(lambda: len(pids_in(pids)) == len(tasks), "every task to start")
    kill_guardian(proc)  # so the journal is all the next run has to go by
    proc.kill()
    proc.wait(HANG_GUARD)
    assert all(map(alive, pids_in(pids)))
    rerun.touch()

    result = ptx(root, "run", "--resume")

    assert result.returncode == 0, result.stderr
    assert [pid for pid in pids_in(pids) if alive(pid)] == []
    # One at a time, the k-th group would have seen only 5 - k of them still running.
    assert lines(terms) == ["5"] * len(tasks), result.stderr
