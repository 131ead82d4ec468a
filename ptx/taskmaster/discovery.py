"""Where tasks.json is, what layout it has and which tag to read; parsing JSON with its limits."""

from __future__ import annotations

import errno
import gc
import json
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import sub
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptx.core.errors import InputError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

MAX_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 200
MASTER = "master"
_CANDIDATES = (Path(".taskmaster", "tasks", "tasks.json"), Path("tasks", "tasks.json"))
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BRACKET_STEP = bytes.maketrans(b"[]{}", b"\x02\x00\x02\x00")


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """A parsed tasks.json: its layout, its tags in file order and the parsed root object."""

    path: Path
    layout: str  # "legacy" or "tagged"
    tags: tuple[str, ...]
    root: Mapping[str, Any]


# --- locating -------------------------------------------------------------------------------


def find_tasks_file(start: Path) -> Path:
    """The nearest .taskmaster/tasks/tasks.json or tasks/tasks.json at or above `start`."""
    here = start.resolve()
    for directory in (here, *here.parents):
        for candidate in _CANDIDATES:
            if (directory / candidate).is_file():
                return directory / candidate
    raise InputError(
        "no tasks.json found: looked for .taskmaster/tasks/tasks.json and tasks/tasks.json"
        f" in {here} and its parents; use --file"
    )


def given_file(file: Path) -> Path:
    """A file named on the command line, made absolute; a symbolic link loop is bad input."""
    try:
        return file.resolve()
    except (OSError, RuntimeError):  # RuntimeError: pathlib's word for a loop before 3.13
        raise InputError(f"cannot read {file}: a loop of symbolic links") from None


def project_root(tasks_file: Path) -> Path:
    """The directory that holds .taskmaster/ or tasks/, else the file's own directory."""
    folder = tasks_file.parent
    if tasks_file.name != "tasks.json":
        return folder
    if folder.name == "tasks" and folder.parent.name == ".taskmaster":
        return folder.parent.parent
    if folder.name in {"tasks", ".taskmaster"}:
        return folder.parent
    return folder


# --- reading --------------------------------------------------------------------------------


def read_document(path: Path) -> Document:
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not valid UTF-8 (bad byte at offset {exc.start})") from None
    if not text or text.isspace():
        raise InputError(f"{path} is empty: expected Taskmaster JSON")
    root = _parse_json(path, text, _rough_depth(data) > MAX_DEPTH)
    layout, tags = _detect_layout(path, root)
    return Document(path=path, layout=layout, tags=tags, root=root)


def _read_bytes(path: Path) -> bytes:
    limit = f"ptx reads tasks files up to {MAX_BYTES // 2**20} MB"
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{path} is {path.stat().st_size / 2**20:.1f} MB; {limit}")
        data = read_regular(path, MAX_BYTES)  # the file may have grown since stat
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InputError(f"{path} is over {MAX_BYTES // 2**20} MB; {limit}")
    return data


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFileError(OSError):
    """A FIFO, a device, a directory... where ptx reads a file; its strerror says which."""


def read_regular(path: Path, limit: int) -> bytes:
    """Up to `limit` + 1 bytes of `path`, which must be a regular file: anything else (a FIFO,
    a device, a directory) raises NotRegularFileError naming what it is. The file is opened
    without blocking, so a FIFO with no writer cannot hang ptx, and its type is checked on
    the open descriptor, so nothing can swap it in between."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise NotRegularFileError(errno.EINVAL, f"{kind}, not a regular file", str(path))
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _rough_depth(data: bytes) -> int:
    """Bracket depth, counting brackets in strings too: a cheap gate for the exact walk."""
    steps = data.translate(None, _NOT_BRACKETS).translate(_BRACKET_STEP)
    return max(accumulate(map(sub, steps, repeat(1))), default=0)


def _parse_json(path: Path, text: str, suspicious: bool) -> Any:  # noqa: ANN401 (JSON is untyped)
    too_deep = InputError(f"{path}: JSON nested deeper than {MAX_DEPTH} levels")
    try:
        with gc_paused():
            root = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:  # the C scanner stops at the interpreter's recursion limit
        raise too_deep from None
    except ValueError as exc:  # e.g. an integer longer than int's digit limit
        raise InputError(f"{path}: invalid JSON: {exc}") from None
    if suspicious and _exact_depth(root) > MAX_DEPTH:
        raise too_deep
    # JSON may escape a lone surrogate ("\ud800"), which no output, environment variable,
    # argv or SQLite text can encode: ptx reads it as U+FFFD, as a UTF-8 decoder would. Only
    # a file with such an escape at all (a pair is two) is walked.
    if "\\ud" in text or "\\uD" in text:
        root = _without_surrogates(root)
    return root


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:  # noqa: ANN401 (JSON is untyped)
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def _exact_depth(root: Any) -> int:  # noqa: ANN401 (JSON is untyped)
    deepest, stack = 0, [(root, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _detect_layout(path: Path, root: object) -> tuple[str, tuple[str, ...]]:
    shapes = 'Taskmaster files are {"tasks": [...]} or {"<tag>": {"tasks": [...]}}'
    if not isinstance(root, dict):
        kind = "an array" if isinstance(root, list) else f"a JSON {type(root).__name__}"
        raise InputError(f"{path}: the root is {kind}, not an object; {shapes}")
    tags = tuple(k for k, v in root.items() if isinstance(v, dict) and _has_tasks(v))
    if _has_tasks(root):
        if tags:
            raise InputError(
                f'{path}: holds both a root "tasks" array and tags ({tag_list(tags)});'
                " cannot tell which layout it is"
            )
        return "legacy", (MASTER,)
    if not tags:
        raise InputError(f"{path}: no task lists found; {shapes}")
    return "tagged", tags


def _has_tasks(value: Mapping[str, Any]) -> bool:
    return isinstance(value.get("tasks"), list)


def tag_text(tag: str) -> str:
    """A tag name for a one-line message: control characters such as newlines escaped."""
    return tag if tag.isprintable() else json.dumps(tag, ensure_ascii=False)[1:-1]


def tag_list(tags: Sequence[str]) -> str:
    return ", ".join(map(tag_text, tags))


# --- choosing the tag -----------------------------------------------------------------------


def resolve_tag(
    doc: Document, root: Path, requested: str | None, environ: Mapping[str, str]
) -> tuple[str, str | None]:
    """The tag to read and, when worth saying, why (or which settings file was ignored)."""
    tag, notices = choose_tag(doc, root, requested, environ)
    return tag, "; ".join(notices) or None


def choose_tag(
    doc: Document, root: Path, requested: str | None, environ: Mapping[str, str]
) -> tuple[str, list[str]]:
    notices: list[str] = []
    asked = _asked_tag(root, requested, environ, notices)
    if asked is None:
        if len(doc.tags) == 1:
            if doc.tags[0] != MASTER:
                notices.append(f"using tag '{tag_text(doc.tags[0])}', the only tag in {doc.path}")
            return doc.tags[0], notices
        asked = (MASTER, "the default")
    tag, source = asked
    if tag not in doc.tags:
        raise UsageError(
            f"tag '{tag_text(tag)}' not found in {doc.path} (from {source});"
            f" tags: {tag_list(doc.tags)}"
        )
    return tag, notices


def _asked_tag(
    root: Path, requested: str | None, environ: Mapping[str, str], notices: list[str]
) -> tuple[str, str] | None:
    if requested is not None:
        return requested, "--tag"
    if environ.get("TASKMASTER_TAG"):
        return environ["TASKMASTER_TAG"], "TASKMASTER_TAG"
    state_path = root / ".taskmaster" / "state.json"
    state = _settings(state_path, notices)
    for key in ("currentTag", "activeTag"):
        if isinstance(state.get(key), str) and state[key]:
            return state[key], f"{state_path} {key}"
    config_path = root / ".taskmaster" / "config.json"
    section = _settings(config_path, notices).get("global")
    if isinstance(section, dict) and isinstance(section.get("defaultTag"), str):
        return section["defaultTag"], f"{config_path} global.defaultTag"
    return None


def _settings(path: Path, notices: list[str]) -> Mapping[str, Any]:
    """A Taskmaster settings file's object; unreadable ones are ignored, as Taskmaster does."""
    try:
        value = json.loads(read_regular(path, MAX_BYTES))
    except FileNotFoundError:
        return {}
    except NotRegularFileError as exc:  # no mere mistake of Taskmaster's: someone put it there
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except (OSError, ValueError, RecursionError) as exc:
        notices.append(f"ignoring {path}: {exc}")
        return {}
    if not isinstance(value, dict):
        notices.append(f"ignoring {path}: not a JSON object")
        return {}
    return value


@contextmanager
def gc_paused() -> Iterator[None]:
    """Reading allocates about ten objects per task and creates no cycles; the collections
    those allocations trigger would re-traverse the whole parsed tree and double the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def shown_path(path: Path, root: Path) -> str:
    """`path` relative to the project `root` when inside it, else as given."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
