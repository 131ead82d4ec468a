"""Taskmaster projects for the tests that run ptx as a real process, and the runs' results."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import psutil
import pytest
import yaml
from builders import SCRIPTS

from ptx.executors.guardian import NAME as GUARDIAN
from ptx.journal.store import Journal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

    from ptx.journal.schema import AttemptRecord

HANG_GUARD = 30.0  # generous upper bound that only catches hangs
QUICK = {"kill_grace_seconds": 0.5, "retry_backoff_seconds": 0.01}


# --- building projects and running ptx ------------------------------------------------------


def task(
    task_id: int, command: str | list[str] | None, *deps: int, **fields: Any
) -> dict[str, Any]:
    """A Taskmaster task; `command` goes to metadata.ptx, `ptx_*` fields to metadata.ptx too."""
    options = {
        key.removeprefix("ptx_"): fields.pop(key) for key in list(fields) if key[:4] == "ptx_"
    }
    if command is not None:
        options["command"] = command
    entry: dict[str, Any] = {
        "id": task_id,
        "title": f"task {task_id}",
        "status": "pending",
        "dependencies": list(deps),
        **fields,
    }
    if options:
        entry["metadata"] = {"ptx": options}
    return entry


def make_project(root: Path, tasks: Sequence[dict[str, Any]], **config: Any) -> Path:
    """`.taskmaster/tasks/tasks.json` (tagged) and `config/parallel-execution.yaml` in `root`."""
    tasks_file = root / ".taskmaster" / "tasks" / "tasks.json"
    tasks_file.parent.mkdir(parents=True)
    tasks_file.write_text(json.dumps({"master": {"tasks": list(tasks)}}, indent=2) + "\n")
    settings = {**QUICK, **config}
    (root / "config").mkdir()
    (root / "config" / "parallel-execution.yaml").write_text(
        yaml.safe_dump({"parallel_execution": settings})
    )
    return root


def clean_environment() -> dict[str, str]:
    """The test's environment without anything that would steer ptx from outside."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PTX_", "TASKMASTER_", "DASK_")) and key != "GITHUB_STEP_SUMMARY"
    }
    env.update(COLUMNS="250", NO_COLOR="1")
    return env


def ptx(
    root: Path,
    *args: str,
    redirect: str = "",
    environ: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """ptx in `root`; `redirect`: shell redirections applied to it, e.g. `>&-`; `environ` is
    laid over the test's environment (None removes a variable)."""
    argv = [sys.executable, "-m", "ptx", *args]
    if redirect:
        argv = ["/bin/sh", "-c", f'exec "$@" {redirect}', "sh", *argv]
    env = {**clean_environment(), **(environ or {})}
    return subprocess.run(
        argv,
        cwd=root,
        env={key: value for key, value in env.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


def idle_run(jobs: int) -> list[str]:
    """argv of a `ptx run -j jobs` driven from code whose machine reads idle, so tasks that
    must run at once do, however busy the machine running the tests is."""
    idle = [str(jobs), "64", "0", str(2**62), "0", "-"]  # no memory used, no load limit
    return [sys.executable, str(SCRIPTS / "probed_run.py"), *idle]


def python(root: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """tests/scripts/`script` run in the project with the test environment: ptx driven from
    code."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=root,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


def spawn(root: Path, *args: str, argv: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """A ptx in the background (`argv` instead of `ptx ARGS`, e.g. an `idle_run`); its stderr
    (the plain progress lines) goes to root/ptx.err."""
    with (root / "ptx.err").open("wb") as err:
        return subprocess.Popen(
            list(argv) or [sys.executable, "-m", "ptx", *args],
            cwd=root,
            env=clean_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def kill_guardian(proc: subprocess.Popen[bytes]) -> None:
    """Kill the guardian of the ptx `proc` (see executors/guardian.py), so that a ptx killed
    afterwards leaves its tasks running, as a ptx whose guardian died too would."""
    (guardian,) = [
        child for child in psutil.Process(proc.pid).children() if GUARDIAN in child.cmdline()
    ]
    guardian.kill()
    wait_for(lambda: not alive(guardian.pid), "the guardian to die")


def progress(root: Path) -> str:
    path = root / "ptx.err"
    return path.read_text() if path.exists() else ""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {HANG_GUARD:g} s for {what}")
        time.sleep(0.02)


def attempts(root: Path, run: int = -1) -> list[AttemptRecord]:
    """The attempts of one run (default: the last), oldest run first."""
    with Journal.open(root / ".ptx") as journal:
        runs = sorted(journal.runs(), key=lambda info: info.started_at)
        return journal.attempts(runs[run].run_id)


def statuses(root: Path, run: int = -1) -> dict[str, str]:
    return {record.task: record.status for record in attempts(root, run)}


def read_report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


_SEEN: list[psutil.Process] = []


def keep_track(pids: Sequence[int]) -> None:
    """Remember processes a test saw start, for `no_leftovers` to kill at the test's end."""
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            _SEEN.append(psutil.Process(pid))


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Import into a test module: a failing test there must not leave its `sleep 300` behind
    for the rest of the suite."""
    yield
    while _SEEN:
        with contextlib.suppress(psutil.Error):
            _SEEN.pop().kill()  # psutil checks the create time: never a reused pid


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def q(path: str | Path) -> str:
    return shlex.quote(str(path))
