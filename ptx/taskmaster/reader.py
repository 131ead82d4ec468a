"""Reading one tag of Taskmaster's tasks.json into frozen tasks, and loading a project."""

from __future__ import annotations

import json
import math
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ptx.core.errors import UsageError
from ptx.core.model import (
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
)
from ptx.taskmaster.discovery import (
    Document,
    choose_tag,
    find_tasks_file,
    gc_paused,
    given_file,
    project_root,
    read_document,
    resolve_tag,
    tag_list,
    tag_text,
)
from ptx.taskmaster.options import parse_options

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

__all__ = [
    "Document",
    "find_tasks_file",
    "load_all_tags",
    "load_project",
    "parse_tag",
    "project_root",
    "read_document",
    "resolve_tag",
    "subtask_number",
    "task_key",
]

_ERROR, _WARNING = Severity.ERROR, Severity.WARNING
_TASK_ID_FORMS = "a non-negative integer or digit string"
_SUB_ID_FORMS = 'an integer, digit string, "P.S" string or float'
_NO_OPTIONS = TaskOptions()


# --- loading --------------------------------------------------------------------------------


def load_project(
    *, file: Path | None, start: Path, tag: str | None, environ: Mapping[str, str]
) -> Project:
    path = given_file(file) if file is not None else find_tasks_file(start)
    root = project_root(path)
    doc = read_document(path)
    chosen, notices = choose_tag(doc, root, tag, environ)
    return _project(doc, root, chosen, tuple(notices))


def load_all_tags(*, file: Path | None, start: Path) -> tuple[Project, ...]:
    path = given_file(file) if file is not None else find_tasks_file(start)
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
        raise UsageError(
            f"tag '{tag_text(tag)}' not found in {doc.path}; tags: {tag_list(doc.tags)}"
        )
    entries = doc.root["tasks"] if doc.layout == "legacy" else doc.root[tag]["tasks"]
    with gc_paused():
        return _TagReader(tag).read(entries)


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
            task_id = task_key(token)
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
            message = f"subtasks should be a list, got {_show(items)}; ignored"
            self._note(Code.MALFORMED_TASK, _ERROR, task_id, message)
            return []
        for index, sub_obj in enumerate(items or ()):
            number = subtask_number(sub_obj.get("id")) if type(sub_obj) is dict else None
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
        message = "duplicate id; the first one is kept, this one left out"
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
        message = f"{key} should be a string, got {_show(value)}"
        self._note(Code.MALFORMED_TASK, _WARNING, task_id, message)
        return str(value)

    def _status(self, value: object, task_id: str) -> str:
        if value is None:
            return DEFAULT_STATUS
        status = self._text(value, task_id, "status").strip().lower() or DEFAULT_STATUS
        if status not in KNOWN_STATUSES:
            message = f"unknown status {_show(status)}, kept as written"
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
        message = f"unknown priority {_show(value)}, read as {DEFAULT_PRIORITY}"
        self._note(Code.UNKNOWN_PRIORITY, _WARNING, task_id, message)
        return DEFAULT_PRIORITY

    def _dependencies(self, value: object, task_id: str, parent: str | None) -> tuple[str, ...]:
        if value is None or value == []:
            return ()
        if type(value) is not list:
            message = f"dependencies should be a list, got {_show(value)}; ignored"
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
            message = f"malformed dependency {_show(entry)}, dropped"
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
                f"depends on {head}: no subtask {parent}.{head} exists, read as"
                f" task {head} (Taskmaster's `next` reads it as {parent}.{head}"
                f" and never runs {task_id})"
            )
            self._note(Code.AMBIGUOUS_SUBTASK_DEPENDENCY, _WARNING, task_id, message)
        return head

    def _tidy(self, deps: list[str], task_id: str, parent: str | None) -> tuple[str, ...]:
        kept: dict[str, None] = {}
        for dep in deps:
            if dep == task_id:
                message = "depends on itself; dropped"
                self._note(Code.SELF_DEPENDENCY, _ERROR, task_id, message)
            elif dep == parent:
                message = (
                    f"depends on its parent {parent}: would wait forever"
                    " (a task finishes after its subtasks); dropped"
                )
                self._note(Code.SUBTASK_DEPENDS_ON_PARENT, _WARNING, task_id, message)
            elif dep in kept:
                message = f"lists dependency {dep} more than once; kept once"
                self._note(Code.DUPLICATE_DEPENDENCY, _WARNING, task_id, message)
            else:
                kept[dep] = None
        return tuple(kept)

    def _options(self, metadata: object, task_id: str) -> TaskOptions:
        if type(metadata) is not dict or "ptx" not in metadata:
            return _NO_OPTIONS
        options, problems = parse_options(metadata["ptx"], "metadata.ptx")
        for problem in problems:
            self._note(Code.BAD_TASK_OPTIONS, _ERROR, task_id, problem)
        return options


# --- ids ------------------------------------------------------------------------------------


def task_key(token: object) -> str | None:
    """A task id: a non-negative int or a string of ASCII digits, as "7"."""
    if type(token) is int:
        return str(token) if token >= 0 else None
    if type(token) is str and token.isdigit() and token.isascii():
        return token.lstrip("0") or "0"
    return None


def subtask_number(token: object) -> str | None:
    """A subtask's own number; like Taskmaster, only the part after the dot of "7.2" or 7.2."""
    parts = _id_parts(token)
    return None if parts is None else parts[1] or parts[0]


def _id_parts(token: object) -> tuple[str, str | None] | None:
    """("7", None) for 7 or "7"; ("7", "2") for "7.2" or 7.2; None for anything else."""
    if type(token) is float:
        if not math.isfinite(token):
            return None
        token = str(int(token)) if token.is_integer() else repr(token)
    head = task_key(token)
    if head is not None:
        return head, None
    if type(token) is not str:
        return None
    first, _, second = token.partition(".")
    head, tail = task_key(first), task_key(second)
    return None if head is None or tail is None else (head, tail)


def _show(value: object) -> str:
    """A value as it was written in the JSON, cut short to keep a message on one line."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):
        shown = repr(value)
    return shown if len(shown) <= 100 else shown[:97] + "..."
