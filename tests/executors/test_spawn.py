"""Tests for executors.spawn: what a started command gets, and how it is found on its PATH.

The `way` fixture runs ptx in one directory and the child in another, as for a task with
its own working directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from builders import REPO, SCRIPTS

from ptx.executors import spawn

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

HANG_GUARD = 10.0  # generous upper bound that only catches hangs
HIGH_FD = 217  # far above any descriptor a freshly started `ls` opens for itself


@dataclass(frozen=True)
class _Way:
    cwd: str  # where the child runs


@pytest.fixture
def way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> _Way:
    """ptx runs in tmp_path/ptx; the child runs elsewhere."""
    here = tmp_path / "ptx"
    here.mkdir()
    monkeypatch.chdir(here)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return _Way(cwd=str(elsewhere))


@dataclass
class _Starter:
    """Starts commands with one log file; whatever still runs is killed and reaped at teardown."""

    log_path: Path
    started: list[spawn.Process] = field(default_factory=list)

    def __call__(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str] | None = None
    ) -> spawn.Process:
        with self.log_path.open("ab", buffering=0) as log:  # the child keeps its own copy
            environment = {"PATH": os.environ["PATH"]} if env is None else env
            proc = spawn.start(argv, cwd, environment, log.fileno())
        self.started.append(proc)
        return proc

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""


@pytest.fixture
def start(tmp_path: Path) -> Iterator[_Starter]:
    starter = _Starter(tmp_path / "task.log")
    yield starter
    for proc in starter.started:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the whole group
            proc.wait()


def _tool(directory: Path, text: str, name: str = "mytool") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return path


# --- how a command is found


def test_a_program_only_on_ptxs_path_is_not_found_for_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: _Starter
) -> None:
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty-bin"
    empty.mkdir()

    # `true` is on ptx's PATH, not on the child's: Popen says why, naming the program.
    with pytest.raises(FileNotFoundError) as raised:
        start(("true",), str(tmp_path), {"PATH": str(empty)})

    assert raised.value.filename == "true"


def test_a_missing_program_with_a_path_is_not_found(way: _Way, start: _Starter) -> None:
    with pytest.raises(FileNotFoundError):
        start(("./ptx-no-such-program",), way.cwd)


def test_the_childs_path_finds_the_program(tmp_path: Path, way: _Way, start: _Starter) -> None:
    tools = tmp_path / "tools"
    _tool(tools, '#!/bin/sh\necho "mytool ran with $1"\n')
    assert all(not Path(d, "mytool").exists() for d in os.get_exec_path())  # not on ptx's PATH

    proc = start(("mytool", "x"), way.cwd, {"PATH": str(tools)})

    assert proc.wait(HANG_GUARD) == 0
    assert start.log() == "mytool ran with x\n"


def test_the_first_match_on_the_childs_path_wins(
    tmp_path: Path, way: _Way, start: _Starter
) -> None:
    _tool(tmp_path / "first", "#!/bin/sh\necho first\n")
    _tool(tmp_path / "second", "#!/bin/sh\necho second\n")
    _tool(tmp_path / "second", "#!/bin/sh\necho other from second\n", name="other")
    (tmp_path / "first" / "other").write_text("#!/bin/sh\necho other from first\n")
    path = f"{tmp_path / 'first'}:{tmp_path / 'second'}"

    assert start(("mytool",), way.cwd, {"PATH": path}).wait(HANG_GUARD) == 0
    # A file that is not executable is passed over, as exec would pass it over.
    assert start(("other",), way.cwd, {"PATH": path}).wait(HANG_GUARD) == 0

    assert start.log() == "first\nother from second\n"


def test_a_program_put_earlier_on_the_path_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: _Starter
) -> None:
    monkeypatch.chdir(tmp_path)
    _tool(tmp_path / "second", "#!/bin/sh\necho second\n")
    env = {"PATH": f"{tmp_path / 'first'}:{tmp_path / 'second'}"}
    assert start(("mytool",), str(tmp_path), env).wait(HANG_GUARD) == 0

    _tool(tmp_path / "first", "#!/bin/sh\necho first\n")  # as a task could install it
    assert start(("mytool",), str(tmp_path), env).wait(HANG_GUARD) == 0

    assert start.log() == "second\nfirst\n"


# --- what the child gets


def test_the_child_leads_a_new_session(way: _Way, start: _Starter) -> None:
    proc = start(("sleep", "30"), way.cwd)

    assert os.getsid(proc.pid) == proc.pid
    assert os.getpgid(proc.pid) == proc.pid
    assert os.getsid(0) != proc.pid


@pytest.fixture
def stdin_pipe() -> Iterator[None]:
    """ptx's own stdin is an open pipe: a child that inherited it would block reading it."""
    read, write = os.pipe()
    saved = os.dup(0)
    os.dup2(read, 0)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read, write):
            os.close(fd)


@pytest.mark.usefixtures("stdin_pipe")
def test_stdin_is_dev_null(way: _Way, start: _Starter) -> None:
    proc = start(("/bin/sh", "-c", "cat; echo cat-done; readlink /proc/self/fd/0"), way.cwd)

    assert proc.wait(HANG_GUARD) == 0
    assert start.log() == f"cat-done\n{os.devnull}\n"


def test_stdout_and_stderr_land_in_the_log(way: _Way, start: _Starter) -> None:
    proc = start(("/bin/sh", "-c", "echo to-out; echo to-err >&2; echo out-again"), way.cwd)

    assert proc.wait(HANG_GUARD) == 0
    assert start.log() == "to-out\nto-err\nout-again\n"


def _ignored_signals(status: str) -> int:
    line = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
    return int(line.split()[1], 16)


@pytest.mark.parametrize("signum", [signal.SIGPIPE, signal.SIGXFSZ], ids=["SIGPIPE", "SIGXFSZ"])
def test_signals_python_ignores_are_default_in_the_child(
    way: _Way, start: _Starter, signum: int
) -> None:
    bit = 1 << (signum - 1)
    # Python ignores them, and an ignored signal stays ignored across exec.
    assert signal.getsignal(signum) == signal.SIG_IGN
    assert _ignored_signals(Path("/proc/self/status").read_text()) & bit

    proc = start(("grep", "^SigIgn:", "/proc/self/status"), way.cwd)

    assert proc.wait(HANG_GUARD) == 0
    assert not _ignored_signals(start.log()) & bit


def test_a_pipeline_writer_dies_of_sigpipe(way: _Way, start: _Starter) -> None:
    # Ignoring SIGPIPE, `yes` would get EPIPE instead, complain and exit 1.
    script = '{ yes; echo "yes: $?" >&2; } | head -n 1'
    proc = start(("/bin/sh", "-c", script), way.cwd)

    assert proc.wait(HANG_GUARD) == 0
    # In either order: head may close its input before its own output is written.
    assert sorted(start.log().splitlines()) == ["y", f"yes: {128 + signal.SIGPIPE}"]


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.fixture
def inherited_fd() -> Iterator[int]:
    """An inheritable descriptor, as ptx's parent could leave it."""
    read, write = os.pipe()
    fd = next(fd for fd in range(HIGH_FD, HIGH_FD + 100) if not _is_open(fd))
    os.dup2(write, fd, inheritable=True)
    try:
        yield fd
    finally:
        for each in (fd, read, write):
            os.close(each)


def test_inherited_descriptors_do_not_reach_the_child(
    way: _Way, start: _Starter, inherited_fd: int
) -> None:
    assert os.get_inheritable(inherited_fd)

    proc = start(("ls", "/proc/self/fd"), way.cwd)

    assert proc.wait(HANG_GUARD) == 0
    listed = start.log().split()
    assert {"0", "1", "2"} <= set(listed)
    assert str(inherited_fd) not in listed
    assert _is_open(inherited_fd)  # in ptx, where it is still needed: only closed on exec


# --- the started process, as Popen would report it


def test_poll_wait_and_timeout_of_a_running_command(way: _Way, start: _Starter) -> None:
    proc = start(("sleep", "30"), way.cwd)

    assert proc.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.05)
    assert proc.returncode is None

    os.kill(proc.pid, signal.SIGKILL)

    assert proc.wait() == -signal.SIGKILL
    assert proc.returncode == -signal.SIGKILL
    assert proc.poll() == -signal.SIGKILL


@pytest.mark.parametrize("timeout", [None, HANG_GUARD], ids=["blocking", "with-timeout"])
def test_exit_code_of_a_finished_command(way: _Way, start: _Starter, timeout: float | None) -> None:
    proc = start(("/bin/sh", "-c", "exit 3"), way.cwd)

    assert proc.wait(timeout) == 3
    assert proc.returncode == 3
    assert proc.poll() == 3


def test_poll_until_the_command_ends(way: _Way, start: _Starter) -> None:
    proc = start(("/bin/sh", "-c", "exit 7"), way.cwd)

    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet

    assert proc.poll() == 7
    assert proc.returncode == 7


def test_a_command_reaped_elsewhere_reads_as_exit_0(way: _Way, start: _Starter) -> None:
    proc = start(("/bin/sh", "-c", "exit 3"), way.cwd)
    os.waitpid(proc.pid, 0)

    assert proc.wait() == 0
    assert proc.returncode == 0


def test_a_log_on_descriptor_0_still_gets_the_output(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    child = subprocess.run(
        [sys.executable, str(SCRIPTS / "spawn_with_log_on_fd_0.py"), str(log)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    if child.returncode != 0 or not child.stdout.startswith("0 "):
        pytest.fail(f"the setup did not put the log on fd 0: {child.stdout} {child.stderr}")

    assert log.read_text() == "hello\n"
    assert child.stdout == "0 Popen 0\n"
