"""Hostile or odd input files, through ptx as a real process: lone surrogates, task text
longer than the environment can carry, symbolic link loops, FIFOs and devices."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from projects import make_project, ptx, q, task

from ptx.run.commandline import ENV_TEXT_LIMIT

if TYPE_CHECKING:
    from pathlib import Path


def tasks_path(root: Path) -> Path:
    return root / ".taskmaster" / "tasks" / "tasks.json"


# --- lone surrogates -------------------------------------------------------------------------


def test_a_lone_surrogate_is_read_as_a_replacement_and_kept_in_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = f'printf %s "$PTX_TASK_TITLE" > {q(out)}.title; cp "$PTX_TASK_JSON" {q(out)}.json'
    root = make_project(tmp_path, [task(1, command, title="bad \ud800 title", details="\udc80")])
    assert "\\ud800" in tasks_path(root).read_text()  # json.dumps escapes it, as any writer must

    plan = ptx(root, "plan")
    assert (plan.returncode, plan.stderr) == (0, "")
    assert "bad \ufffd title" in plan.stdout

    before = tasks_path(root).read_text()
    result = ptx(root, "run", "--update-status")
    assert result.returncode == 0, result.stderr
    assert "started 1: bad \ufffd title" in result.stderr
    assert (tmp_path / "out.title").read_text() == "bad \ufffd title"
    assert json.loads((tmp_path / "out.json").read_text())["title"] == "bad \ufffd title"
    assert tasks_path(root).read_text() == before.replace('"pending"', '"done"')


def test_lone_surrogates_in_a_tag_a_command_and_its_environment_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = f'printf "%s|%s|%s" "$PTX_TAG" "$A" "\udc80" > {q(out)}'
    document = {"tag\ud800": {"tasks": [task(1, command, ptx_env={"A": "\udfff"})]}}
    path = tasks_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    result = ptx(tmp_path, "run")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "tag\ufffd|\ufffd|\ufffd"
    assert "\\ud800" in path.read_text()


# --- text longer than an environment variable may be ----------------------------------------


def test_text_over_128_kib_reaches_the_task_whole_through_files(tmp_path: Path) -> None:
    details = "".join(f"line {n} of the details, ünïcödé\n" for n in range(6000))  # ~200 KiB
    title = "T" * (130 * 1024)
    assert len(details.encode()) > 128 * 1024
    out = tmp_path / "out"
    command = (
        f'printf %s "$PTX_TASK_DETAILS" > {q(out)}.env; '
        f'cp "$PTX_TASK_DETAILS_FILE" {q(out)}.details; cp "$PTX_TASK_TITLE_FILE" {q(out)}.title; '
        f'cp "$PTX_TASK_PROMPT_FILE" {q(out)}.prompt; cp "$PTX_TASK_JSON" {q(out)}.json; '
        f'printf %s "$PTX_TASK_DESCRIPTION" > {q(out)}.description; '
        f'echo "${{PTX_TASK_DESCRIPTION_FILE-unset}}" > {q(out)}.unset'
    )
    root = make_project(
        tmp_path, [task(1, command, title=title, details=details, description="short")]
    )
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    shortened = (tmp_path / "out.env").read_bytes()
    assert len(shortened) <= ENV_TEXT_LIMIT
    assert shortened.decode().startswith(details[:1000])
    assert "shortened by ptx from" in shortened.decode()
    assert (tmp_path / "out.details").read_text() == details
    assert (tmp_path / "out.title").read_text() == title
    prompt = (tmp_path / "out.prompt").read_text()
    assert prompt.startswith(f"Task 1: {title}")
    assert details.strip() in prompt
    assert json.loads((tmp_path / "out.json").read_text())["details"] == details
    assert (tmp_path / "out.description").read_text() == "short"  # short text is untouched
    assert (tmp_path / "out.unset").read_text() == "unset\n"


def test_a_prompt_made_long_by_its_subtasks_is_in_its_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = f'cp "$PTX_TASK_PROMPT_FILE" {q(out)}; printf %s "$PTX_TASK_PROMPT" > {q(out)}.env'
    subtasks = [
        {"id": n, "title": f"sub {n}", "details": "x" * 4000, "status": "pending"}
        for n in range(1, 11)
    ]
    root = make_project(tmp_path, [task(1, command, subtasks=subtasks)])
    result = ptx(root, "run")
    assert result.returncode == 0, result.stderr
    whole = out.read_text()
    assert whole.count("x" * 4000) == 10
    assert len((tmp_path / "out.env").read_bytes()) <= ENV_TEXT_LIMIT
    assert "shortened by ptx" in (tmp_path / "out.env").read_text()


# --- files that are not files ----------------------------------------------------------------


def test_a_symbolic_link_loop_given_with_f_is_bad_input(tmp_path: Path) -> None:
    make_project(tmp_path, [task(1, "true")])
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    (tmp_path / "b.json").symlink_to(tmp_path / "a.json")
    for command in ("plan", "run", "validate"):
        result = ptx(tmp_path, command, "-f", "a.json")
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == "ptx: error: cannot read a.json: a loop of symbolic links\n"


def test_a_fifo_as_the_tasks_file_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    make_project(tmp_path, [task(1, "true")])
    os.mkfifo(tmp_path / "tasks.json")
    for command in ("plan", "run", "validate"):
        result = ptx(tmp_path, command, "-f", "tasks.json")  # ptx() fails the test on a hang
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == (
            f"ptx: error: cannot read {tmp_path}/tasks.json: a FIFO, not a regular file\n"
        )


@pytest.mark.parametrize(
    "where", [".taskmaster/state.json", "config/parallel-execution.yaml", "other.yaml"]
)
def test_a_fifo_as_state_or_config_is_refused_without_hanging(tmp_path: Path, where: str) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    path = root / where
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    config = ("-c", where) if where == "other.yaml" else ()
    # `ptx config` reads the config but no tag, so not state.json.
    commands = ("plan", "run") if where.endswith("state.json") else ("plan", "run", "config")
    for command in commands:
        result = ptx(root, command, *config)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.endswith(": a FIFO, not a regular file\n")
        assert len(result.stderr.splitlines()) == 1
        assert where in result.stderr
    assert not (root / ".ptx").exists()  # nothing ran, nothing was written


def test_a_device_or_a_directory_as_the_tasks_file_is_named_as_such(tmp_path: Path) -> None:
    make_project(tmp_path, [task(1, "true")])
    device = ptx(tmp_path, "plan", "-f", "/dev/zero")
    assert device.returncode == 2
    assert "/dev/zero: a character device, not a regular file" in device.stderr
    directory = ptx(tmp_path, "plan", "-f", ".")
    assert directory.returncode == 2
    assert "a directory, not a regular file" in directory.stderr
