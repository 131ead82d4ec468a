"""Status write-back into Taskmaster's tasks.json under its lock, by its set-status rules."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptx.core.errors import InputError
from ptx.core.model import DEFAULT_STATUS
from ptx.taskmaster.lock import taskmaster_lock
from ptx.taskmaster.reader import subtask_number, task_key

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    Allow = Callable[[str, str], bool]  # (key, its status now): may the change be made?

_DONE = frozenset({"done", "completed"})
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


# --- locating statuses in the text ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Member:
    """One `"key": value` of an object, with the offsets needed to edit it in place."""

    lead: int  # just after the "{" or "," before the key
    key_start: int
    key_end: int
    start: int  # the value
    end: int
    value: Any


_Members = dict[str, _Member]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Node:
    members: _Members
    parent: str | None = None
    children: tuple[str, ...] = ()


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, char: str) -> None:
    if not text.startswith(char, pos):
        raise json.JSONDecodeError(f"Expecting {char!r}", text, pos)


def _object(text: str, pos: int) -> tuple[_Members, int]:
    """The members of the object opening at `pos`, and where it ends; values are parsed in C."""
    _expect(text, pos, "{")
    members: _Members = {}
    lead = pos + 1
    cursor = _skip(text, lead)
    if text.startswith("}", cursor):
        return members, cursor + 1
    while True:
        _expect(text, cursor, '"')
        key, key_end = _DECODER.raw_decode(text, cursor)
        colon = _skip(text, key_end)
        _expect(text, colon, ":")
        start = _skip(text, colon + 1)
        value, end = _DECODER.raw_decode(text, start)
        members[key] = _Member(
            lead=lead, key_start=cursor, key_end=key_end, start=start, end=end, value=value
        )
        cursor = _skip(text, end)
        if text.startswith("}", cursor):
            return members, cursor + 1
        _expect(text, cursor, ",")
        lead = cursor + 1
        cursor = _skip(text, lead)


def _objects(text: str, member: _Member) -> list[_Members]:
    """The object elements of the array held by `member`, in order (other elements skipped).

    raw_decode has already validated this array as part of its parent, so the walk can be lax.
    """
    found: list[_Members] = []
    cursor = _skip(text, member.start + 1)
    while not text.startswith("]", cursor):
        if text.startswith("{", cursor):
            members, end = _object(text, cursor)
            found.append(members)
        else:
            end = _DECODER.raw_decode(text, cursor)[1]
        cursor = _skip(text, end)
        if text.startswith(",", cursor):
            cursor = _skip(text, cursor + 1)
    return found


def _tag_tasks(text: str, tag: str, path: Path) -> _Member:
    """The `tasks` array of `tag`: legacy `{"tasks": [...]}` is tag master."""
    start = _skip(text, 0)
    if not text.startswith("{", start):
        raise InputError(f"{path}: the top level is not a JSON object")
    root, end = _object(text, start)
    if _skip(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip(text, end))
    legacy = root.get("tasks")
    if legacy is not None and isinstance(legacy.value, list):
        if tag != "master":
            raise InputError(f"{path}: no tag {tag!r} (the file has only master)")
        return legacy
    holder = root.get(tag)
    if holder is None or not isinstance(holder.value, dict):
        raise InputError(f"{path}: tag {tag!r} is not in the file any more")
    tasks = _object(text, holder.start)[0].get("tasks")
    if tasks is None or not isinstance(tasks.value, list):
        raise InputError(f"{path}: tag {tag!r} has no tasks array")
    return tasks


def _index(text: str, tasks: _Member) -> dict[str, _Node]:
    """Every task and subtask of the tag by normalised id; the first of duplicates wins."""
    nodes: dict[str, _Node] = {}
    for members in _objects(text, tasks):
        task_id = task_key(members["id"].value) if "id" in members else None
        if task_id is None or task_id in nodes:
            continue
        subtasks = members.get("subtasks")
        found = _objects(text, subtasks) if subtasks and isinstance(subtasks.value, list) else []
        children: list[str] = []
        for sub in found:
            sub_id = subtask_number(sub["id"].value) if "id" in sub else None
            key = f"{task_id}.{sub_id}"
            if sub_id is not None and key not in nodes and key not in children:
                children.append(key)
                nodes[key] = _Node(members=sub, parent=task_id)
        nodes[task_id] = _Node(members=members, children=tuple(children))
    return nodes


# --- Taskmaster's set-status rules ----------------------------------------------------------


@dataclass(slots=True)
class _Statuses:
    """Statuses as they are and as they will be; `previous` holds the first value of each."""

    current: dict[str, str | None]
    writes: dict[str, str] = field(default_factory=dict)
    previous: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # changes left out: the status found

    def effective(self, key: str) -> str:
        return self.current[key] or DEFAULT_STATUS

    def put(self, key: str, status: str) -> bool:
        if self.effective(key) == status:
            return False
        self.previous.setdefault(key, self.effective(key))
        self.current[key] = status
        self.writes[key] = status
        return True


def _status_of(members: _Members) -> str | None:
    status = members.get("status")
    return status.value if status is not None and isinstance(status.value, str) else None


def _resolve(
    nodes: Mapping[str, _Node],
    changes: Mapping[str, str],
    *,
    cascade: bool,
    allow: Allow | None = None,
) -> _Statuses:
    """Apply the changes in order as `task-master set-status --id=a,b,...` would; a change
    `allow` refuses (given the key and its status now) is left out and noted in `refused`."""
    statuses = _Statuses(current={key: _status_of(node.members) for key, node in nodes.items()})
    for key, status in changes.items():
        node = nodes[key]
        if allow is not None and not allow(key, statuses.effective(key)):
            statuses.refused[key] = statuses.effective(key)
            continue
        statuses.previous.setdefault(key, statuses.effective(key))
        changed = statuses.put(key, status)
        if not cascade:
            continue
        if node.parent is None and status.lower() in _DONE:
            # update-single-task-status.js: a done parent takes its unfinished subtasks along
            for child in node.children:
                if statuses.current[child] not in _DONE:
                    statuses.put(child, status)
        elif node.parent is not None and changed:
            _adjust_parent(nodes[node.parent], node.parent, statuses)
    return statuses


def _adjust_parent(parent: _Node, key: str, statuses: _Statuses) -> None:
    """tm-core's file-storage.ts updateSubtaskStatusInFile: the parent follows its subtasks."""
    children = [statuses.effective(child) for child in parent.children]
    if all(status in _DONE for status in children):
        statuses.put(key, "done")
    elif any(status == "in-progress" or status in _DONE for status in children):
        statuses.put(key, "in-progress")
    elif all(status == "pending" for status in children):
        statuses.put(key, "pending")


# --- editing and writing --------------------------------------------------------------------


def _edit(text: str, nodes: Mapping[str, _Node], writes: Mapping[str, str]) -> str:
    """Replace only the changed status values; a missing status goes after the title (or id)."""
    edits: list[tuple[int, int, str]] = []
    for key, status in writes.items():
        members = nodes[key].members
        literal = json.dumps(status, ensure_ascii=False)
        current = members.get("status")
        if current is not None:
            edits.append((current.start, current.end, literal))
            continue
        anchor = members.get("title") or members["id"]
        lead = text[anchor.lead : anchor.key_start]
        separator = text[anchor.key_end : anchor.start]
        edits.append((anchor.end, anchor.end, f',{lead}"status"{separator}{literal}'))
    pieces: list[str] = []
    position = 0
    for start, end, replacement in sorted(edits):
        pieces += [text[position:start], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not UTF-8: {error.reason}") from error


def _replace(path: Path, text: str) -> None:
    """Write through a temp file in the same directory, fsync, rename, fsync the directory."""
    mode = stat.S_IMODE(path.stat().st_mode)
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.tmp.{os.getpid()}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse to fsync a directory
            os.fsync(directory)
    finally:
        os.close(directory)


def _nodes(path: Path, tag: str) -> tuple[Path, str, dict[str, _Node]]:
    target = Path(os.path.realpath(path))  # a symlinked tasks.json stays a symlink
    text = _read(target)
    try:
        return target, text, _index(text, _tag_tasks(text, tag, path))
    except ValueError as error:
        raise InputError(f"{path} is not valid JSON any more: {error}") from error


def read_statuses(path: Path, tag: str) -> dict[str, str]:
    """The status of every task and subtask of `tag` as the file says now (lower-cased).
    Taskmaster replaces the file by a rename, so reading needs no lock."""
    nodes = _nodes(path, tag)[2]
    found = {key: _status_of(node.members) for key, node in nodes.items()}
    return {key: (status or DEFAULT_STATUS).lower() for key, status in found.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    previous: dict[str, str]  # each touched id's status before
    refused: dict[str, str]  # changes `allow` refused: the status each id has
    writes: dict[str, str]  # what was written, Taskmaster's cascades included


def _rewrite(
    path: Path, tag: str, changes: Mapping[str, str], *, cascade: bool, allow: Allow | None
) -> Written:
    target, text, nodes = _nodes(path, tag)
    missing = [key for key in changes if key not in nodes]
    if missing:
        raise InputError(f"{path}: no task {', '.join(missing)} in tag {tag!r} any more")
    statuses = _resolve(nodes, changes, cascade=cascade, allow=allow)
    edited = _edit(text, nodes, statuses.writes)
    if edited != text:
        json.loads(edited)  # never write what Taskmaster could not read back
        try:
            _replace(target, edited)
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror or error}") from error
    return Written(previous=statuses.previous, refused=statuses.refused, writes=statuses.writes)


def set_statuses(
    path: Path,
    tag: str,
    changes: Mapping[str, str],
    *,
    lock_timeout: float = 10.0,
    cascade: bool = True,
) -> dict[str, str]:
    """Set statuses under Taskmaster's lock; returns each touched id's previous status.

    With `cascade` (the default) Taskmaster's set-status rules apply: a parent set to done or
    completed takes its unfinished subtasks along, and a subtask's parent follows its subtasks.
    Restore with `cascade=False` and the returned mapping to undo exactly.
    """
    return write_statuses(path, tag, changes, lock_timeout=lock_timeout, cascade=cascade).previous


def write_statuses(  # noqa: PLR0913 - set_statuses' options and the check of each change
    path: Path,
    tag: str,
    changes: Mapping[str, str],
    *,
    lock_timeout: float = 10.0,
    cascade: bool = True,
    allow: Allow | None = None,
) -> Written:
    """`set_statuses`, where each change is first checked, under the lock, against the status
    the file has now: what `allow` refuses is not written (someone else's status stands)."""
    with taskmaster_lock(path, timeout=lock_timeout):
        return _rewrite(path, tag, changes, cascade=cascade, allow=allow)
