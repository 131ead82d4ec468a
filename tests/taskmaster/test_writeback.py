"""Tests for taskmaster.writeback: in-place status edits, Taskmaster's lock, set-status rules."""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from builders import CORPUS, REPO, SCRIPTS

from ptx.core.errors import InputError, LockTimeoutError
from ptx.taskmaster.writeback import set_statuses

if TYPE_CHECKING:
    from pathlib import Path

CORPUS_FILES = sorted(CORPUS.glob("*__*.json"))
STATUS_LINE = re.compile(r'^\s*"status": "[a-z-]+",?\r?$')


# --- helpers --------------------------------------------------------------------------------------


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / "tasks.json"
    shutil.copyfile(CORPUS / name, target)
    return target


def _names(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


def _tasks(data: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    tasks = data["tasks"] if isinstance(data.get("tasks"), list) else data[tag]["tasks"]
    assert isinstance(tasks, list)
    return tasks


def _find(data: dict[str, Any], tag: str, key: str) -> dict[str, Any]:
    """The object of task "7" or subtask "7.2", by the same id reading Taskmaster uses."""
    parent, _, sub = key.partition(".")
    task = next(t for t in _tasks(data, tag) if str(t.get("id")) == parent)
    if not sub:
        return task
    return next(s for s in task["subtasks"] if str(s.get("id")).rsplit(".", 1)[-1] == sub)


def _tags(data: dict[str, Any]) -> list[str]:
    if isinstance(data.get("tasks"), list):
        return ["master"]
    return [k for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("tasks"), list)]


def _all_ids(data: dict[str, Any], tag: str) -> list[str]:
    ids: list[str] = []
    for task in _tasks(data, tag):
        ids.append(str(task["id"]))
        ids += [
            f"{task['id']}.{str(s['id']).rsplit('.', 1)[-1]}" for s in task.get("subtasks") or []
        ]
    return ids


def _expected(before: str, tag: str, statuses: dict[str, str]) -> Any:
    data = copy.deepcopy(json.loads(before))
    for key, status in statuses.items():
        _find(data, tag, key)["status"] = status
    return data


def _assert_only_status_lines_changed(before: str, after: str, changed: int, added: int) -> None:
    old, new = before.splitlines(), after.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    removed_lines: list[str] = []
    added_lines: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            removed_lines += old[i1:i2]
            added_lines += new[j1:j2]
    assert all(STATUS_LINE.match(line) for line in removed_lines + added_lines)
    assert len(removed_lines) == changed - added
    assert len(added_lines) == changed
    assert after.endswith("\n") == before.endswith("\n")


def _write(tmp_path: Path, tasks: list[dict[str, Any]], *, tag: str = "master") -> Path:
    path = tmp_path / "tasks.json"
    document = {tag: {"tasks": tasks, "metadata": {"description": "é"}}}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def _family(parent: str, *subs: str | None) -> list[dict[str, Any]]:
    """Task 1 with the given status and subtasks 1.1, 1.2... (None: no status key)."""
    subtasks = [
        {"id": n, "title": f"s{n}"} | ({} if s is None else {"status": s})
        for n, s in enumerate(subs, 1)
    ]
    return [{"id": 1, "title": "parent", "status": parent, "subtasks": subtasks}]


def _statuses(path: Path) -> dict[str, str | None]:
    task = json.loads(path.read_text())["master"]["tasks"][0]
    found = {"1": task.get("status")}
    found.update({f"1.{s['id']}": s.get("status") for s in task["subtasks"]})
    return found


# --- text is edited in place ----------------------------------------------------------------------

CASES = [
    # legacy layout, int ids, arrays on one line (not what json.dumps writes), final newline
    ("AojdevStudio__dental-dashboard.json", "master", {"6": "in-progress", "7.2": "done"}),
    # tagged, string ids, no final newline
    ("309dot__309agnet.json", "master", {"2": "pending", "36": "review"}),
    # dotted string subtask ids
    ("devq-ai__cerby.json", "master", {"1.2": "done", "3": "in-progress", "3.1": "review"}),
    # subtasks without a status key: one is inserted
    ("1rokoko__hotel-boost.json", "master", {"1.2": "done", "2.1": "in-progress", "3": "review"}),
    # float subtask ids and ids >= 100
    ("Alivanroy__Typosentinel.json", "master", {"29.1": "pending", "31.312": "review"}),
    # six tags: only bugfix-tui changes
    ("AcidicSoil__oraclepack.json", "bugfix-tui", {"2.1": "done", "3": "in-progress"}),
    # \u00a9 escapes in the text stay escapes
    ("5dlabs__cto-test-rex-gemini.json", "master", {"2": "done"}),
]


@pytest.mark.parametrize(("name", "tag", "changes"), CASES, ids=[c[0] for c in CASES])
def test_corpus_copy_changes_only_the_given_statuses(
    tmp_path: Path, name: str, tag: str, changes: dict[str, str]
) -> None:
    path = _copy(name, tmp_path)
    before = path.read_text(encoding="utf-8")
    missing = sum(1 for key in changes if "status" not in _find(json.loads(before), tag, key))

    previous = set_statuses(path, tag, changes, cascade=False)

    after = path.read_text(encoding="utf-8")
    assert json.loads(after) == _expected(before, tag, changes)
    _assert_only_status_lines_changed(before, after, changed=len(changes), added=missing)
    original = json.loads(before)
    assert previous == {k: _find(original, tag, k).get("status", "pending") for k in changes}
    assert _names(tmp_path) == ["tasks.json"]


def test_other_tags_are_byte_identical(tmp_path: Path) -> None:
    path = _copy("AcidicSoil__oraclepack.json", tmp_path)
    before = path.read_text(encoding="utf-8")

    set_statuses(path, "chore-overview", {"1.1": "done", "2": "review"})

    old, new = json.loads(before), json.loads(path.read_text(encoding="utf-8"))
    assert list(new) == list(old)
    for tag in old:
        if tag != "chore-overview":
            assert json.dumps(new[tag]) == json.dumps(old[tag])


@pytest.mark.parametrize("source", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_every_status_of_every_corpus_file_can_be_set(tmp_path: Path, source: Path) -> None:
    path = _copy(source.name, tmp_path)
    before = path.read_text(encoding="utf-8")
    data = json.loads(before)
    expected = copy.deepcopy(data)
    for tag in _tags(data):
        changes = dict.fromkeys(_all_ids(data, tag), "review")
        set_statuses(path, tag, changes, cascade=False)
        for key in changes:
            _find(expected, tag, key)["status"] = "review"
    after = path.read_text(encoding="utf-8")
    assert json.loads(after) == expected
    assert after.endswith("\n") == before.endswith("\n")


@pytest.mark.parametrize("ending", ["", "\n"], ids=["no-final-newline", "final-newline"])
def test_final_newline_is_kept_as_it_was(tmp_path: Path, ending: str) -> None:
    path = _write(tmp_path, _family("pending", "pending"))
    path.write_text(path.read_text() + ending)

    set_statuses(path, "master", {"1": "review"})

    text = path.read_text()
    assert text.endswith("}" + ending)
    assert json.loads(text)["master"]["tasks"][0]["status"] == "review"


def test_restoring_the_returned_statuses_gives_back_the_same_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, _family("pending", "pending", "done", "review"))
    before = path.read_bytes()

    previous = set_statuses(path, "master", {"1": "done"})
    assert previous == {"1": "pending", "1.1": "pending", "1.3": "review"}
    set_statuses(path, "master", previous, cascade=False)

    assert path.read_bytes() == before


def test_missing_status_is_inserted_after_the_title_with_crlf_kept(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    lines = [
        "{",
        '  "tasks": [',
        "    {",
        '      "id": "3",',
        '      "title": "t"',
        "    }",
        "  ]",
        "}",
    ]
    path.write_bytes("\r\n".join(lines).encode())

    assert set_statuses(path, "master", {"3": "done"}) == {"3": "pending"}

    expected = [*lines[:4], '      "title": "t",', '      "status": "done"', *lines[5:]]
    assert path.read_bytes() == "\r\n".join(expected).encode()


def test_unchanged_status_rewrites_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, _family("review", None))
    os.utime(path, (1_000_000, 1_000_000))

    assert set_statuses(path, "master", {"1": "review", "1.1": "pending"}) == {
        "1": "review",
        "1.1": "pending",
    }
    assert path.stat().st_mtime == 1_000_000


def test_permission_bits_and_symlink_are_kept(tmp_path: Path) -> None:
    real = _write(tmp_path, _family("pending"))
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real.name)

    set_statuses(link, "master", {"1": "done"})

    assert link.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o640
    assert json.loads(real.read_text())["master"]["tasks"][0]["status"] == "done"
    assert _names(tmp_path) == ["link.json", "tasks.json"]


# --- what Taskmaster's set-status does around a change --------------------------------------------


def test_parent_done_takes_unfinished_subtasks_along(tmp_path: Path) -> None:
    path = _write(tmp_path, _family("in-progress", "pending", None, "completed", "review"))

    previous = set_statuses(path, "master", {"1": "done"})

    assert _statuses(path) == {
        "1": "done",
        "1.1": "done",
        "1.2": "done",
        "1.3": "completed",
        "1.4": "done",
    }
    assert previous == {"1": "in-progress", "1.1": "pending", "1.2": "pending", "1.4": "review"}


def test_parent_set_to_other_statuses_leaves_subtasks_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, _family("pending", "pending", "done"))

    set_statuses(path, "master", {"1": "in-progress"})

    assert _statuses(path) == {"1": "in-progress", "1.1": "pending", "1.2": "done"}


@pytest.mark.parametrize(
    ("parent", "subs", "change", "expected_parent"),
    [
        ("pending", ("pending", "pending"), {"1.1": "in-progress"}, "in-progress"),
        ("in-progress", ("done", "pending"), {"1.2": "done"}, "done"),
        ("pending", ("pending", "deferred"), {"1.1": "done"}, "in-progress"),
        ("in-progress", ("in-progress", None), {"1.1": "pending"}, "pending"),
        ("review", ("review", "deferred"), {"1.1": "pending"}, "review"),
        ("done", ("done", "done"), {"1.1": "done"}, "done"),
    ],
    ids=["started", "all-done", "one-done", "all-pending", "mixed-unchanged", "no-change"],
)
def test_parent_follows_its_subtasks(
    tmp_path: Path,
    parent: str,
    subs: tuple[str | None, ...],
    change: dict[str, str],
    expected_parent: str,
) -> None:
    path = _write(tmp_path, _family(parent, *subs))

    previous = set_statuses(path, "master", change)

    assert _statuses(path)["1"] == expected_parent
    assert ("1" in previous) == (expected_parent != parent)


def test_without_cascade_only_the_given_ids_change(tmp_path: Path) -> None:
    path = _write(tmp_path, _family("pending", "pending", "pending"))

    set_statuses(path, "master", {"1": "done", "1.1": "in-progress"}, cascade=False)

    assert _statuses(path) == {"1": "done", "1.1": "in-progress", "1.2": "pending"}


# --- nothing is written when the file changed under us --------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag", "changes", "message"),
    [
        ('{"master": {"tasks": [{"id": 1, "title": "a"}]}}', "other", {"1": "done"}, "'other'"),
        ('{"master": {"tasks": [{"id": 1, "title": "a"}]}}', "master", {"2": "done"}, "task 2"),
        ('{"master": {"tasks": [{"id": 1}]}}', "master", {"1.1": "done"}, "task 1.1"),
        ('{"tasks": [{"id": 1, "title": "a"}]}', "feature", {"1": "done"}, "only master"),
        ('{"master": {"tasks": [{"id": 1, "title": "a"}]}', "master", {"1": "done"}, "JSON"),
        ('{"master": {"tasks": []}} x', "master", {"1": "done"}, "JSON"),
        ('[{"id": 1}]', "master", {"1": "done"}, "not a JSON object"),
    ],
    ids=["tag-gone", "id-gone", "subtask-gone", "legacy-tag", "truncated", "extra", "array"],
)
def test_unreadable_or_changed_file_raises_input_error_and_writes_nothing(
    tmp_path: Path, text: str, tag: str, changes: dict[str, str], message: str
) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(text)

    with pytest.raises(InputError, match=re.escape(message)):
        set_statuses(path, tag, changes)

    assert path.read_text() == text
    assert _names(tmp_path) == ["tasks.json"]


# --- Taskmaster's lock ----------------------------------------------------------------------------


def _hold_file_lock(path: Path) -> Path:
    lock = path.with_name("tasks.json.lock")
    lock.write_text('{"pid":4242,"timestamp":1}')
    return lock


def _hold_dir_lock(path: Path) -> Path:
    lock = path.with_name("tasks.json.lock")
    lock.mkdir()
    return lock


@pytest.mark.parametrize(
    ("hold", "holder"),
    [(_hold_file_lock, "pid 4242"), (_hold_dir_lock, "directory lock")],
    ids=["file", "directory"],
)
def test_fresh_lock_times_out_and_writes_nothing(tmp_path: Path, hold: Any, holder: str) -> None:
    path = _write(tmp_path, _family("pending"))
    before = path.read_bytes()
    lock = hold(path)
    lock_before = lock.read_bytes() if lock.is_file() else None

    started = time.monotonic()
    with pytest.raises(LockTimeoutError) as raised:
        set_statuses(path, "master", {"1": "done"}, lock_timeout=0.3)
    elapsed = time.monotonic() - started

    assert 0.3 <= elapsed < 10
    message = str(raised.value)
    assert str(lock) in message
    assert holder in message
    assert "\n" not in message
    assert path.read_bytes() == before
    assert (lock.read_bytes() if lock.is_file() else None) == lock_before
    assert lock.exists()
    assert _names(tmp_path) == ["tasks.json", "tasks.json.lock"]


@pytest.mark.parametrize("hold", [_hold_file_lock, _hold_dir_lock], ids=["file", "directory"])
def test_stale_lock_is_broken_and_the_write_succeeds(tmp_path: Path, hold: Any) -> None:
    path = _write(tmp_path, _family("pending"))
    lock = hold(path)
    old = time.time() - 20
    os.utime(lock, (old, old))

    set_statuses(path, "master", {"1": "done"}, lock_timeout=5)

    assert _statuses(path)["1"] == "done"
    assert _names(tmp_path) == ["tasks.json"]


def test_non_empty_stale_directory_is_never_removed(tmp_path: Path) -> None:
    path = _write(tmp_path, _family("pending"))
    lock = _hold_dir_lock(path)
    (lock / "keep").write_text("not proper-lockfile's")
    old = time.time() - 20
    os.utime(lock, (old, old))

    with pytest.raises(LockTimeoutError):
        set_statuses(path, "master", {"1": "done"}, lock_timeout=0.2)

    assert (lock / "keep").read_text() == "not proper-lockfile's"


def test_waits_for_a_lock_released_by_taskmaster(tmp_path: Path) -> None:
    path = _write(tmp_path, _family("pending"))
    lock = _hold_dir_lock(path)
    release = threading.Timer(0.2, lock.rmdir)
    release.start()
    try:
        set_statuses(path, "master", {"1": "done"}, lock_timeout=10)
    finally:
        release.join(10)

    assert _statuses(path)["1"] == "done"
    assert not lock.exists()


# --- two real writers -----------------------------------------------------------------------------


def test_two_processes_lose_no_update(tmp_path: Path) -> None:
    # Long details make each read-modify-write slow enough for the two writers to overlap.
    tasks = [
        {"id": n, "title": f"t{n}", "status": "pending", "details": "x" * 20_000}
        for n in range(1, 61)
    ]
    (tmp_path / "project").mkdir()
    path = _write(tmp_path / "project", tasks)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    command = [sys.executable, str(SCRIPTS / "status_writer.py"), str(path)]
    workers = [
        subprocess.Popen([*command, str(first), str(go)], env=env, cwd=tmp_path)
        for first in (1, 31)
    ]
    time.sleep(0.3)  # let both start up and wait at the barrier; not a timing assertion
    go.touch()
    codes = [worker.wait(timeout=60) for worker in workers]

    assert codes == [0, 0]
    data = json.loads(path.read_text())
    assert [t["status"] for t in data["master"]["tasks"]] == ["done"] * 60
    assert _names(path.parent) == ["tasks.json"]
