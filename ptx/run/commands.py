"""How a task becomes a command: the options that apply, the argv, the environment."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.executors.logfile import write_all
from ptx.taskmaster.reader import subtask_number

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from ptx.core.model import Command, Task, TaskId, TaskOptions
    from ptx.taskmaster.config import Config

_PLACEHOLDER = re.compile(r"\{(id|title|tag|attempt)\}")
_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One attempt of one task, ready for the process module."""

    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]
    command_hash: str


def effective_options(task: Task, config: Config) -> TaskOptions:
    """Config `tasks.<id>` wins over the task's own `metadata.ptx`."""
    override = config.tasks.get(task.id)
    return task.options if override is None else override.merged_over(task.options)


def command_of(options: TaskOptions, config: Config) -> Command | None:
    """First match wins: config tasks.<id>, metadata.ptx.command, the config's template."""
    return options.command if options.command is not None else config.command


def missing_commands(tasks: Iterable[Task], config: Config) -> list[TaskId]:
    return [
        task.id for task in tasks if command_of(effective_options(task, config), config) is None
    ]


@functools.lru_cache(maxsize=4096)
def command_hash(command: Command) -> str:
    """Identifies the command as written (placeholders unexpanded): history resets on change."""
    text = command if isinstance(command, str) else json.dumps(list(command))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render(command: Command, fields: Mapping[str, str]) -> tuple[str, ...]:
    """Substitute placeholders; in a shell string every value is shell-quoted."""
    if isinstance(command, str):
        quoted = _PLACEHOLDER.sub(lambda match: shlex.quote(fields[match[1]]), command)
        return (*_SHELL, quoted)
    return tuple(_PLACEHOLDER.sub(lambda match: fields[match[1]], part) for part in command)


def fields_of(task: Task, tag: str, attempt: int) -> dict[str, str]:
    """The values of the placeholders for one attempt."""
    return {"id": task.id, "title": task.title, "tag": tag, "attempt": str(attempt)}


def display(argv: tuple[str, ...]) -> str:
    """An argv as one line a user could paste into a shell."""
    if argv[:2] == _SHELL and len(argv) == 3:
        return argv[2]
    return shlex.join(argv)


def prompt(task: Task) -> str:
    """A ready-made prompt for a coding agent, built only from the task's own fields."""
    sections = [f"Task {task.id}: {task.title}"]
    for heading, body in (
        ("Description", task.description),
        ("Details", task.details),
        ("Test strategy", task.test_strategy),
    ):
        if body.strip():
            sections.append(f"{heading}:\n{body.strip()}")
    subtasks = _subtask_lines(task)
    if subtasks:
        sections.append("Subtasks:\n" + "\n".join(subtasks))
    return "\n\n".join(sections)


def _subtask_lines(task: Task) -> list[str]:
    """The task's subtasks as read (an agent working on the task needs them): id, status and
    title, then description and details indented."""
    found = task.raw.get("subtasks")
    lines: list[str] = []
    for sub in found if isinstance(found, list) else ():
        if not isinstance(sub, dict):
            continue
        number = subtask_number(sub.get("id")) or "?"
        status, title = _text(sub, "status") or "pending", _text(sub, "title")
        lines.append(f"- {task.id}.{number} [{status}] {title}".rstrip())
        for key in ("description", "details"):
            lines += [f"  {line}" for line in _text(sub, key).splitlines() if line.strip()]
    return lines


def _text(entry: Mapping[str, object], key: str) -> str:
    value = entry.get(key)
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """What every invocation of one run shares."""

    root: Path
    tag: str
    run_id: str
    base_env: Mapping[str, str]


def invocation(  # noqa: PLR0913 - the task, where it runs, and what its attempt knows
    task: Task,
    config: Config,
    context: RunContext,
    *,
    attempt: int,
    task_json: str,
    options: TaskOptions | None = None,
) -> Invocation:
    """`options`: the task's effective options when the caller already has them."""
    if options is None:
        options = effective_options(task, config)
    command = command_of(options, config)
    if command is None:  # the runner refuses to start before this can happen
        msg = f"task {task.id} has no command"
        raise ValueError(msg)
    tag, root = context.tag, context.root
    fields = fields_of(task, tag, attempt)
    own = task_environment(task, tag, context.run_id, attempt, task_json)
    env = {**context.base_env, **options.env, **own}
    cwd = root / options.cwd if options.cwd else root
    return Invocation(
        argv=render(command, fields), cwd=str(cwd), env=env, command_hash=command_hash(command)
    )


def task_environment(
    task: Task, tag: str, run_id: str, attempt: int, task_json: str
) -> dict[str, str]:
    """The PTX_* variables: task text reaches commands as data, never as code."""
    variables = {
        "PTX_TASK_ID": task.id,
        "PTX_TASK_TITLE": task.title,
        "PTX_TASK_DESCRIPTION": task.description,
        "PTX_TASK_DETAILS": task.details,
        "PTX_TASK_TEST_STRATEGY": task.test_strategy,
        "PTX_TASK_PRIORITY": task.priority,
        "PTX_TASK_PROMPT": prompt(task),
        "PTX_TASK_JSON": task_json,
        "PTX_TAG": tag,
        "PTX_RUN_ID": run_id,
        "PTX_ATTEMPT": str(attempt),
    }
    # The environment cannot carry NUL bytes; JSON can ("\u0000"), so they are dropped.
    return {name: value.replace("\0", "") for name, value in variables.items()}


def write_task_json(task: Task, path: str) -> None:
    """The task object exactly as read, for commands that want every field. Written for every
    task, so kept lean: on one line, where json uses its C encoder, and with os.open and one
    write, cheaper than a text file object."""
    data = (json.dumps(dict(task.raw), ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
