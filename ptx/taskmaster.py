"""Taskmaster's tasks.json: finding it, choosing the tag and reading one tag into frozen tasks."""

from __future__ import annotations

import difflib
import gc
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import accumulate, repeat
from operator import sub
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ptx.errors import InputError, UsageError
from ptx.model import (
    DEFAULT_PRIORITY,
    DEFAULT_STATUS,
    KNOWN_STATUSES,
    PRIORITY_RANK,
    Code,
    Finding,
    Project,
    Severity,
    Task,
    TaskList,
    TaskOptions,
    frozen_map,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

MAX_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 200
MASTER = "master"
_CANDIDATES = (Path(".taskmaster", "tasks", "tasks.json"), Path("tasks", "tasks.json"))
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BRACKET_STEP = bytes.maketrans(b"[]{}", b"\x02\x00\x02\x00")
_ERROR, _WARNING = Severity.ERROR, Severity.WARNING
_TASK_ID_FORMS = "a non-negative integer or digit string"
_SUB_ID_FORMS = 'an integer, digit string, "P.S" string or float'
_NO_OPTIONS = TaskOptions()


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
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)  # the file may have grown since stat
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InputError(f"{path} is over 50 MB; {limit}")
    return data


def _rough_depth(data: bytes) -> int:
    """Bracket depth, counting brackets in strings too: a cheap gate for the exact walk."""
    steps = data.translate(None, _NOT_BRACKETS).translate(_BRACKET_STEP)
    return max(accumulate(map(sub, steps, repeat(1))), default=0)


def _parse_json(path: Path, text: str, suspicious: bool) -> Any:  # noqa: ANN401 (JSON is untyped)
    too_deep = InputError(f"{path}: JSON nested deeper than {MAX_DEPTH} levels")
    try:
        with _gc_paused():
            root = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:  # the C scanner stops at the interpreter's recursion limit
        raise too_deep from None
    except ValueError as exc:  # e.g. an integer longer than int's digit limit
        raise InputError(f"{path}: invalid JSON: {exc}") from None
    if suspicious and _exact_depth(root) > MAX_DEPTH:
        raise too_deep
    return root


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
                f'{path}: holds both a root "tasks" array and tags ({", ".join(tags)});'
                " cannot tell which layout it is"
            )
        return "legacy", (MASTER,)
    if not tags:
        raise InputError(f"{path}: no task lists found; {shapes}")
    return "tagged", tags


def _has_tasks(value: Mapping[str, Any]) -> bool:
    return isinstance(value.get("tasks"), list)


# --- choosing the tag -----------------------------------------------------------------------


def resolve_tag(
    doc: Document, root: Path, requested: str | None, environ: Mapping[str, str]
) -> tuple[str, str | None]:
    """The tag to read and, when worth saying, why (or which settings file was ignored)."""
    tag, notices = _choose_tag(doc, root, requested, environ)
    return tag, "; ".join(notices) or None


def _choose_tag(
    doc: Document, root: Path, requested: str | None, environ: Mapping[str, str]
) -> tuple[str, list[str]]:
    notices: list[str] = []
    asked = _asked_tag(root, requested, environ, notices)
    if asked is None:
        if len(doc.tags) == 1:
            if doc.tags[0] != MASTER:
                notices.append(f"using tag '{doc.tags[0]}', the only tag in {doc.path}")
            return doc.tags[0], notices
        asked = (MASTER, "the default")
    tag, source = asked
    if tag not in doc.tags:
        raise UsageError(
            f"tag '{tag}' not found in {doc.path} (from {source}); tags: {', '.join(doc.tags)}"
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
        with path.open("rb") as stream:
            value = json.loads(stream.read(MAX_BYTES))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        notices.append(f"ignoring {path}: {exc}")
        return {}
    if not isinstance(value, dict):
        notices.append(f"ignoring {path}: not a JSON object")
        return {}
    return value


# --- loading --------------------------------------------------------------------------------


def load_project(
    *, file: Path | None, start: Path, tag: str | None, environ: Mapping[str, str]
) -> Project:
    path = file.resolve() if file is not None else find_tasks_file(start)
    root = project_root(path)
    doc = read_document(path)
    chosen, notices = _choose_tag(doc, root, tag, environ)
    return _project(doc, root, chosen, tuple(notices))


def load_all_tags(*, file: Path | None, start: Path) -> tuple[Project, ...]:
    path = file.resolve() if file is not None else find_tasks_file(start)
    doc = read_document(path)
    return tuple(_project(doc, project_root(path), tag, ()) for tag in doc.tags)


def _project(doc: Document, root: Path, tag: str, notices: tuple[str, ...]) -> Project:
    tasks = parse_tag(doc, tag)
    return Project(
        path=doc.path, root=root, layout=doc.layout, tags=doc.tags, tasks=tasks, notices=notices
    )


def parse_tag(doc: Document, tag: str) -> TaskList:
    """One tag's tasks, normalised; problems with single tasks become findings, never errors."""
    if tag not in doc.tags:
        raise UsageError(f"tag '{tag}' not found in {doc.path}; tags: {', '.join(doc.tags)}")
    entries = doc.root["tasks"] if doc.layout == "legacy" else doc.root[tag]["tasks"]
    with _gc_paused():
        return _TagReader(tag).read(entries)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Reading allocates about ten objects per task and creates no cycles; the collections
    those allocations trigger would re-traverse the whole parsed tree and double the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- one tag's tasks ------------------------------------------------------------------------

_Sub = tuple[dict[str, Any], str]  # object, subtask number
_Entry = tuple[dict[str, Any], str, list[_Sub]]  # object, task id, subtasks


class _TagReader:
    """Reads one tag in two passes: ids first, so subtask dependencies can see every id."""

    __slots__ = ("findings", "siblings", "tag")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.findings: list[Finding] = []
        self.siblings: dict[str, set[str]] = {}  # every task id -> its subtask numbers

    def read(self, entries: Sequence[Any]) -> TaskList:
        tasks: list[Task] = []
        for obj, task_id, subs in self._collect(entries):
            priority = self._priority(obj.get("priority"), task_id, DEFAULT_PRIORITY)
            children = tuple(f"{task_id}.{number}" for _, number in subs)
            tasks.append(self._task(obj, task_id, None, priority, children))
            for sub_obj, number in subs:
                sub_id = f"{task_id}.{number}"
                sub_priority = self._priority(sub_obj.get("priority"), sub_id, priority)
                tasks.append(self._task(sub_obj, sub_id, task_id, sub_priority, ()))
        return TaskList(tag=self.tag, tasks=tuple(tasks), findings=tuple(self.findings))

    def _note(self, code: Code, severity: Severity, task: str | None, message: str) -> None:
        self.findings.append(
            Finding(code=code, severity=severity, task=task, message=message, tag=self.tag)
        )

    def _collect(self, entries: Sequence[Any]) -> list[_Entry]:
        collected: list[_Entry] = []
        for index, obj in enumerate(entries):
            token = obj.get("id") if type(obj) is dict else None
            task_id = _plain_id(token)
            if type(obj) is not dict or task_id is None:
                self._malformed(None, f"tasks[{index}]", obj, _TASK_ID_FORMS)
            elif task_id in self.siblings:
                self._duplicate(task_id)
            else:
                if task_id == "0":
                    message = "task 0: Taskmaster treats id 0 as no id"
                    self._note(Code.SUSPICIOUS_ID, _WARNING, task_id, message)
                collected.append((obj, task_id, self._subtasks(obj, task_id)))
        return collected

    def _subtasks(self, obj: Mapping[str, Any], task_id: str) -> list[_Sub]:
        items, subs = obj.get("subtasks"), []
        numbers: set[str] = set()
        self.siblings[task_id] = numbers
        if items is not None and type(items) is not list:
            message = f"task {task_id}: subtasks should be a list, got {_show(items)}; ignored"
            self._note(Code.MALFORMED_TASK, _ERROR, task_id, message)
            return []
        for index, sub_obj in enumerate(items or ()):
            number = _sub_number(sub_obj.get("id")) if type(sub_obj) is dict else None
            if number is None:
                self._malformed(
                    task_id, f"task {task_id}: subtasks[{index}]", sub_obj, _SUB_ID_FORMS
                )
            elif number in numbers:
                self._duplicate(f"{task_id}.{number}")
            else:
                numbers.add(number)
                subs.append((sub_obj, number))
        return subs

    def _malformed(self, task: str | None, where: str, obj: object, expected: str) -> None:
        if type(obj) is dict:
            problem = f"id {_show(obj.get('id'))} is not {expected}"
        else:
            problem = f"{_show(obj)} is not an object"
        self._note(Code.MALFORMED_TASK, _ERROR, task, f"{where}: {problem}; left out")

    def _duplicate(self, task_id: str) -> None:
        message = f"task {task_id}: duplicate id; the first one is kept, this one left out"
        self._note(Code.DUPLICATE_ID, _ERROR, task_id, message)

    def _task(
        self,
        obj: dict[str, Any],
        task_id: str,
        parent: str | None,
        priority: str,
        subtasks: tuple[str, ...],
    ) -> Task:
        get, text = obj.get, self._text
        return Task(
            id=task_id,
            token=obj["id"],
            parent=parent,
            title=text(get("title"), task_id, "title"),
            description=text(get("description"), task_id, "description"),
            details=text(get("details"), task_id, "details"),
            test_strategy=text(get("testStrategy"), task_id, "testStrategy"),
            status=self._status(get("status"), task_id),
            priority=priority,
            dependencies=self._dependencies(get("dependencies"), task_id, parent),
            subtasks=subtasks,
            options=self._options(get("metadata"), task_id),
            raw=MappingProxyType(obj),  # the parsed object is owned here and never mutated
        )

    def _text(self, value: object, task_id: str, key: str) -> str:
        if type(value) is str:
            return value
        if value is None:
            return ""
        message = f"task {task_id}: {key} should be a string, got {_show(value)}"
        self._note(Code.MALFORMED_TASK, _WARNING, task_id, message)
        return str(value)

    def _status(self, value: object, task_id: str) -> str:
        if value is None:
            return DEFAULT_STATUS
        status = self._text(value, task_id, "status").strip().lower() or DEFAULT_STATUS
        if status not in KNOWN_STATUSES:
            message = f"task {task_id}: unknown status {_show(status)}, kept as written"
            self._note(Code.UNKNOWN_STATUS, _WARNING, task_id, message)
        return status

    def _priority(self, value: object, task_id: str, inherited: str) -> str:
        if value is None:
            return inherited
        if type(value) is str:
            priority = value.strip().lower()
            if priority in PRIORITY_RANK:
                return priority
            if not priority:
                return inherited
        message = f"task {task_id}: unknown priority {_show(value)}, read as {DEFAULT_PRIORITY}"
        self._note(Code.UNKNOWN_PRIORITY, _WARNING, task_id, message)
        return DEFAULT_PRIORITY

    def _dependencies(self, value: object, task_id: str, parent: str | None) -> tuple[str, ...]:
        if value is None or value == []:
            return ()
        if type(value) is not list:
            message = f"task {task_id}: dependencies should be a list, got {_show(value)}; ignored"
            self._note(Code.MALFORMED_DEPENDENCY, _ERROR, task_id, message)
            return ()
        deps: list[str] = []
        for entry in value:
            if type(entry) is int and entry >= 0 and parent is None:
                deps.append(str(entry))  # the common case, kept cheap
            else:
                dep = self._reference(entry, task_id, parent)
                if dep is not None:
                    deps.append(dep)
        unique = set(deps)
        if len(unique) == len(deps) and task_id not in unique and parent not in unique:
            return tuple(deps)
        return self._tidy(deps, task_id, parent)

    def _reference(self, entry: object, task_id: str, parent: str | None) -> str | None:
        parts = _id_parts(entry)
        if parts is None:
            message = f"task {task_id}: malformed dependency {_show(entry)}, dropped"
            self._note(Code.MALFORMED_DEPENDENCY, _ERROR, task_id, message)
            return None
        head, tail = parts
        if tail is not None:
            return f"{head}.{tail}"
        if parent is None or head in self.siblings[parent]:
            return head if parent is None else f"{parent}.{head}"
        if head not in self.siblings:
            return f"{parent}.{head}"  # neither exists: the graph reports it missing
        if head != parent:  # depending on the parent is reported by _tidy
            message = (
                f"subtask {task_id} depends on {head}: no subtask {parent}.{head} exists, read as"
                f" task {head} (Taskmaster's `next` reads it as {parent}.{head}"
                f" and never runs {task_id})"
            )
            self._note(Code.AMBIGUOUS_SUBTASK_DEPENDENCY, _WARNING, task_id, message)
        return head

    def _tidy(self, deps: list[str], task_id: str, parent: str | None) -> tuple[str, ...]:
        kept: dict[str, None] = {}
        for dep in deps:
            if dep == task_id:
                message = f"task {task_id} depends on itself; dropped"
                self._note(Code.SELF_DEPENDENCY, _ERROR, task_id, message)
            elif dep == parent:
                message = (
                    f"subtask {task_id} depends on its parent {parent}: would wait forever"
                    " (a task finishes after its subtasks); dropped"
                )
                self._note(Code.SUBTASK_DEPENDS_ON_PARENT, _WARNING, task_id, message)
            elif dep in kept:
                message = f"task {task_id} lists dependency {dep} more than once; kept once"
                self._note(Code.DUPLICATE_DEPENDENCY, _WARNING, task_id, message)
            else:
                kept[dep] = None
        return tuple(kept)

    def _options(self, metadata: object, task_id: str) -> TaskOptions:
        if type(metadata) is not dict or "ptx" not in metadata:
            return _NO_OPTIONS
        options, problems = _read_options(metadata["ptx"])
        for problem in problems:
            message = f"task {task_id}: metadata.ptx{problem}"
            self._note(Code.BAD_TASK_OPTIONS, _ERROR, task_id, message)
        return options


# --- ids ------------------------------------------------------------------------------------


def _plain_id(token: object) -> str | None:
    """A task id: a non-negative int or a string of ASCII digits, as "7"."""
    if type(token) is int:
        return str(token) if token >= 0 else None
    if type(token) is str and token.isdigit() and token.isascii():
        return token.lstrip("0") or "0"
    return None


def _sub_number(token: object) -> str | None:
    """A subtask's own number; like Taskmaster, only the part after the dot of "7.2" or 7.2."""
    parts = _id_parts(token)
    return None if parts is None else parts[1] or parts[0]


def _id_parts(token: object) -> tuple[str, str | None] | None:
    """("7", None) for 7 or "7"; ("7", "2") for "7.2" or 7.2; None for anything else."""
    if type(token) is float:
        if not math.isfinite(token):
            return None
        token = str(int(token)) if token.is_integer() else repr(token)
    head = _plain_id(token)
    if head is not None:
        return head, None
    if type(token) is not str:
        return None
    first, _, second = token.partition(".")
    head, tail = _plain_id(first), _plain_id(second)
    return None if head is None or tail is None else (head, tail)


def _show(value: object) -> str:
    """A value as it was written in the JSON, cut short to keep a message on one line."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):
        shown = repr(value)
    return shown if len(shown) <= 100 else shown[:97] + "..."


# --- metadata.ptx ---------------------------------------------------------------------------


def _read_options(value: object) -> tuple[TaskOptions, list[str]]:
    """TaskOptions from `metadata.ptx`, and one problem per bad key (the key path first)."""
    if type(value) is not dict:
        return _NO_OPTIONS, [f": must be an object, got {_show(value)}"]
    fields: dict[str, Any] = {}
    problems: list[str] = []
    for key, raw in value.items():
        if key not in _OPTION_RULES:
            close = difflib.get_close_matches(key, _OPTION_RULES, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            allowed = ", ".join(sorted(_OPTION_RULES))
            problems.append(f".{key}: unknown key{hint}; allowed: {allowed}")
            continue
        requirement, convert = _OPTION_RULES[key]
        converted = convert(raw)
        if converted is None:
            problems.append(f".{key}: {requirement}, got {_show(raw)}")
        else:
            fields[key] = converted
    return TaskOptions(**fields), problems


def _number(value: object, *, zero_ok: bool) -> float | None:
    """A finite number above zero (or at least zero); bools are not numbers here."""
    if type(value) not in {int, float}:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return number if math.isfinite(number) and (number > 0 or (zero_ok and number == 0)) else None


def _command(value: object) -> str | tuple[str, ...] | None:
    if type(value) is str:
        return value if value.strip() and "\0" not in value else None
    if type(value) is list and value and all(type(a) is str and "\0" not in a for a in value):
        return tuple(value)
    return None


def _resources(value: object) -> Mapping[str, int] | None:
    if type(value) is dict and all(type(n) is int and n > 0 for n in value.values()):
        return frozen_map(value)
    return None


def _env(value: object) -> Mapping[str, str] | None:
    if type(value) is not dict:
        return None
    env = {k: v if type(v) is str else json.dumps(v) for k, v in value.items()}
    scalars = all(type(v) in {str, int, float, bool} for v in value.values())
    names_ok = all(k and "=" not in k and "\0" not in k for k in env)
    return frozen_map(env) if scalars and names_ok and "\0" not in "".join(env.values()) else None


_OPTION_RULES: Mapping[str, tuple[str, Callable[[Any], object]]] = MappingProxyType(
    {
        "command": ("must be a non-empty string or a non-empty list of strings", _command),
        "timeout_seconds": ("must be a positive number", partial(_number, zero_ok=False)),
        "retries": ("must be an integer >= 0", lambda v: v if type(v) is int and v >= 0 else None),
        "resources": ("must map resource names to positive integers", _resources),
        "cwd": (
            "must be a non-empty string",
            lambda v: v if type(v) is str and v and "\0" not in v else None,
        ),
        "env": ("must map variable names to strings, numbers or booleans", _env),
        "estimate_seconds": ("must be a number >= 0", partial(_number, zero_ok=True)),
    }
)
