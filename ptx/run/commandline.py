"""How a task becomes a command: the options that apply, the argv, the environment."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.executors.logfile import write_all
from ptx.taskmaster.reader import subtask_number

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from ptx.core.model import Command, Task, TaskId, TaskOptions
    from ptx.taskmaster.config import Config

_PLACEHOLDER = re.compile(r"\{(id|title|tag|attempt|session_id)\}")
_SHELL = ("/bin/sh", "-c")
# Bytes of one PTX_TASK_* text variable. Linux refuses to start a program with any single
# variable over 128 KiB (MAX_ARG_STRLEN) and all of them together over a quarter of the stack
# limit; five texts of 32 KiB stay far below both. A longer text is shortened, and its whole
# text is in a file named by PTX_TASK_<FIELD>_FILE (and in PTX_TASK_JSON).
ENV_TEXT_LIMIT = 32 * 1024
_TEXT_VARIABLES = {
    "PTX_TASK_TITLE": "title",
    "PTX_TASK_DESCRIPTION": "description",
    "PTX_TASK_DETAILS": "details",
    "PTX_TASK_TEST_STRATEGY": "test_strategy",
    "PTX_TASK_PROMPT": "prompt",
}
_FILE_ROOM = 8192  # tmpfs room counted per PTX_TASK_JSON file: two pages, for a margin


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
    import hashlib  # noqa: PLC0415 - only a run hashes commands; validate and plan load this too

    text = command if isinstance(command, str) else json.dumps(list(command))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render(command: Command, fields: Mapping[str, str]) -> tuple[str, ...]:
    """Substitute placeholders; in a shell string every value is shell-quoted."""
    if isinstance(command, str):
        quoted = _PLACEHOLDER.sub(lambda match: shlex.quote(fields[match[1]]), command)
        return (*_SHELL, quoted)
    return tuple(_PLACEHOLDER.sub(lambda match: fields[match[1]], part) for part in command)


def fields_of(task: Task, tag: str, attempt: int, session_id: str = "") -> dict[str, str]:
    """The values of the placeholders for one attempt; `session_id`: the agent session the
    previous attempt reported (empty on a first attempt, or when it reported none)."""
    return {
        "id": task.id,
        "title": task.title,
        "tag": tag,
        "attempt": str(attempt),
        "session_id": session_id,
    }


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
class AttemptFiles:
    """The per-attempt paths and facts a command is told of through PTX_* variables."""

    task_json: str
    result: str  # PTX_RESULT: where the attempt may write what it reports back
    previous_session: str = ""  # PTX_PREVIOUS_SESSION_ID


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
    files: AttemptFiles,
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
    fields = fields_of(task, tag, attempt, files.previous_session)
    own = task_environment(task, tag, context.run_id, attempt, files)
    env = {**context.base_env, **options.env, **own}
    cwd = root / options.cwd if options.cwd else root
    return Invocation(
        argv=render(command, fields), cwd=str(cwd), env=env, command_hash=command_hash(command)
    )


def task_environment(
    task: Task, tag: str, run_id: str, attempt: int, files: AttemptFiles
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
        "PTX_TASK_JSON": files.task_json,
        "PTX_RESULT": files.result,
        "PTX_PREVIOUS_SESSION_ID": files.previous_session,
        "PTX_TAG": tag,
        "PTX_RUN_ID": run_id,
        "PTX_ATTEMPT": str(attempt),
    }
    for name, field in _TEXT_VARIABLES.items():
        if _too_long(variables[name]):
            path = field_file(files.task_json, field)
            variables[name] = _shortened(variables[name], path)
            variables[f"{name}_FILE"] = path
    # The environment cannot carry NUL bytes; JSON can ("\u0000"), so they are dropped.
    return {name: value.replace("\0", "") for name, value in variables.items()}


def field_file(task_json: str, field: str) -> str:
    """Where the whole text of a field too long for its variable is, next to the task's JSON."""
    return f"{task_json.removesuffix('.task.json')}.{field}.txt"


def _too_long(text: str) -> bool:
    # A character is at most 4 bytes: most texts are known short without encoding them.
    return len(text) > ENV_TEXT_LIMIT // 4 and len(text.encode()) > ENV_TEXT_LIMIT


def _shortened(text: str, path: str) -> str:
    total = len(text.encode())
    marker = f"\n[… shortened by ptx from {total} bytes; the whole text is in {path}]"
    room = ENV_TEXT_LIMIT - len(marker.encode())
    return text.encode()[:room].decode(errors="ignore") + marker  # cut at a character


def write_task_json(task: Task, path: str) -> None:
    """The task object exactly as read, for commands that want every field, and the whole
    text of each field too long for its variable. Written for every task, so kept lean: on
    one line, where json uses its C encoder, and with os.open and one write, cheaper than a
    text file object."""
    _write_file(path, (json.dumps(dict(task.raw), ensure_ascii=False) + "\n").encode())
    texts = {
        "title": task.title,
        "description": task.description,
        "details": task.details,
        "test_strategy": task.test_strategy,
    }
    for field, value in texts.items():
        if _too_long(value):
            _write_file(field_file(path, field), value.encode())
    # The prompt holds all four, some headings and the subtasks: only those may make it long.
    long_sum = sum(map(len, texts.values())) > ENV_TEXT_LIMIT // 4 - 100
    if (long_sum or task.raw.get("subtasks")) and _too_long(whole := prompt(task)):
        _write_file(field_file(path, "prompt"), whole.encode())


def _write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


@contextlib.contextmanager
def scratch_dir(run_id: str, files: int) -> Iterator[Path]:
    """Where the PTX_TASK_JSON files of a run's `files` tasks live during it: tmpfs when there
    is one with room for them all, because creating a file on a disk costs about as much as
    starting a no-op task; else the system's temporary directory."""
    import tempfile  # noqa: PLC0415 - see command_hash

    path = Path(tempfile.mkdtemp(prefix=f"ptx-{run_id}-", dir=_shm_with_room(files)))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _shm_with_room(files: int) -> str | None:
    # Each file takes at least a 4 KiB page of tmpfs, and a container's /dev/shm is often
    # 64 MiB: 100,000 tasks would fill it before the run is a sixth done.
    shm = "/dev/shm"  # noqa: S108 - a private mkdtemp directory inside it
    try:
        room = os.statvfs(shm)
    except OSError:
        return None
    fits = room.f_bavail * room.f_frsize >= files * _FILE_ROOM
    return shm if fits and os.path.isdir(shm) and os.access(shm, os.W_OK) else None  # noqa: PTH112
