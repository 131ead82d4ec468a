"""Tests for taskmaster.reader: the real corpus, normalised tasks and ids, metadata.ptx."""

from __future__ import annotations

import gc
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from builders import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptx.core.errors import InputError, UsageError
from ptx.core.model import Code, Finding, Severity, Task, TaskList, TaskOptions
from ptx.taskmaster import discovery
from ptx.taskmaster import reader as taskmaster
from ptx.taskmaster.options import OPTION_RULES
from ptx.taskmaster.reader import (
    load_all_tags,
    load_project,
    parse_tag,
    read_document,
)

if TYPE_CHECKING:
    from pathlib import Path

CORPUS_FILES = sorted(p for p in CORPUS.glob("*.json") if p.name != "sources.json")


def _sources_table() -> dict[str, dict[str, Any]]:
    """Per-file figures from SOURCES.md: layout, tags with task counts, tasks, subtasks."""
    rows = {}
    text = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 8 or not cells[0].endswith(".json"):
            continue
        tags = {name: int(n) for name, n in re.findall(r"([^\s,]+)\((\d+)\)", cells[5])}
        rows[cells[0]] = {
            "layout": cells[4],
            "tags": {"master" if name == "(root)" else name: n for name, n in tags.items()},
            "tasks": int(cells[6]),
            "subtasks": int(cells[7]),
        }
    return rows


SOURCES = _sources_table() if CORPUS.is_dir() else {}
AMBIGUITIES = {
    "0xAmaan__ai-video-gen-pipeline.json": 1,
    "AcidicSoil__oraclepack.json": 2,
    "AcidicSoil__prompts.json": 4,
}


def _all_tags(path: Path) -> dict[str, TaskList]:
    return {p.tasks.tag: p.tasks for p in load_all_tags(file=path, start=path.parent)}


def _findings(lists: dict[str, TaskList]) -> list[Finding]:
    return [f for tasks in lists.values() for f in tasks.findings]


def _by_id(tasks: TaskList) -> dict[str, Task]:
    return {t.id: t for t in tasks.tasks}


def _write(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def _tasks(tmp_path: Path, tasks: list[Any]) -> TaskList:
    doc = read_document(_write(tmp_path / "tasks.json", {"tasks": tasks}))
    return parse_tag(doc, "master")


def _codes(tasks: TaskList) -> list[tuple[Code, Severity, str | None]]:
    return [(f.code, f.severity, f.task) for f in tasks.findings]


# --- the corpus -----------------------------------------------------------------------------


def test_corpus_is_present_with_all_30_files() -> None:
    assert len(CORPUS_FILES) == 30, f"corpus not found or incomplete at {CORPUS}"
    assert set(SOURCES) == {p.name for p in CORPUS_FILES}


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_corpus_file_matches_sources_table(path: Path) -> None:
    expected = SOURCES[path.name]
    doc = read_document(path)
    lists = _all_tags(path)
    assert doc.layout == expected["layout"]
    assert doc.tags == tuple(expected["tags"])
    counts = {tag: sum(not t.is_subtask for t in tl.tasks) for tag, tl in lists.items()}
    assert counts == expected["tags"]
    assert sum(t.is_subtask for tl in lists.values() for t in tl.tasks) == expected["subtasks"]
    assert sum(counts.values()) == expected["tasks"]


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_corpus_file_reads_with_normalised_ids_and_no_errors(path: Path) -> None:
    lists = _all_tags(path)
    errors = [f for f in _findings(lists) if f.severity is Severity.ERROR]
    if path.name != "0xfauzi__testcraft.json":
        assert errors == []
    ambiguous = [f for f in _findings(lists) if f.code is Code.AMBIGUOUS_SUBTASK_DEPENDENCY]
    assert len(ambiguous) == AMBIGUITIES.get(path.name, 0)
    assert all(f.tag in lists for f in _findings(lists))
    for tasks in lists.values():
        for task in tasks.tasks:
            assert re.fullmatch(r"\d+(\.\d+)?", task.id)
            assert all(re.fullmatch(r"\d+(\.\d+)?", dep) for dep in task.dependencies)
            assert task.subtasks == tuple(t.id for t in tasks.tasks if t.parent == task.id)


def test_testcraft_comma_joined_dependencies_are_the_only_errors() -> None:
    # SOURCES.md counts 3 "other-str" entries: 29.4, 29.5 and 29.9 each hold one joined string.
    tasks = _all_tags(CORPUS / "0xfauzi__testcraft.json")["master"]
    errors = [f for f in tasks.findings if f.severity is Severity.ERROR]
    assert [(f.code, f.task) for f in errors] == [
        (Code.MALFORMED_DEPENDENCY, "29.4"),
        (Code.MALFORMED_DEPENDENCY, "29.5"),
        (Code.MALFORMED_DEPENDENCY, "29.9"),
    ]
    assert '"29.1,29.2,29.3"' in errors[0].message
    assert _by_id(tasks)["29.4"].dependencies == ()
    assert _by_id(tasks)["29.2"].dependencies == ("29.1",)


def test_ambiguous_subtask_dependency_is_read_as_the_task() -> None:
    tasks = _all_tags(CORPUS / "0xAmaan__ai-video-gen-pipeline.json")["master"]
    (finding,) = [f for f in tasks.findings if f.code is Code.AMBIGUOUS_SUBTASK_DEPENDENCY]
    assert finding.severity is Severity.WARNING
    assert finding.task == "18.5"
    assert finding.message.startswith("depends on 12: no subtask 18.12 exists")
    assert "12" in _by_id(tasks)["18.5"].dependencies


def test_id_zero_is_a_warning() -> None:
    tasks = _all_tags(CORPUS / "BretMeraki__forest-front-end-forge.json")["master"]
    assert _codes(tasks) == [(Code.SUSPICIOUS_ID, Severity.WARNING, "0")]
    assert _by_id(tasks)["0"].token == 0


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("Galaxybigbird__QT-MT5-2.5.json", "quantower"),
        ("EasyEscrow-AI__easy-escrow-ai-backend.json", "19-dec-updates"),
    ],
)
def test_file_without_master_uses_its_only_tag_and_says_so(name: str, tag: str) -> None:
    project = load_project(file=CORPUS / name, start=CORPUS, tag=None, environ={})
    assert project.tasks.tag == tag
    assert project.notices == (f"using tag '{tag}', the only tag in {CORPUS / name}",)


def test_empty_master_tag_loads_empty() -> None:
    path = CORPUS / "Alterya__agents.json"
    project = load_project(file=path, start=CORPUS, tag=None, environ={})
    assert project.tasks.tag == "master"
    assert project.tasks.tasks == ()
    assert project.tags == ("master", "agent-wars", "agent-wars-frontend", "agent-wars-backend")
    assert project.notices == ()


def test_string_task_ids_and_dotted_subtask_ids_normalise() -> None:
    tasks = _by_id(_all_tags(CORPUS / "devq-ai__cerby.json")["master"])
    assert (tasks["2"].token, tasks["2"].dependencies) == ("2", ("1",))
    assert (tasks["2.4"].token, tasks["2.4"].parent) == ("2.4", "2")
    assert tasks["2.4"].dependencies == ("2.2", "2.3")
    assert tasks["2"].subtasks[:2] == ("2.1", "2.2")


def test_float_and_concatenated_subtask_ids_normalise() -> None:
    tasks = _by_id(_all_tags(CORPUS / "Alivanroy__Typosentinel.json")["master"])
    assert tasks["29.1"].token == 29.1
    assert type(tasks["29.1"].token) is float
    assert tasks["29"].subtasks == ("29.1", "29.2")
    assert tasks["31"].subtasks == ("31.311", "31.312", "31.313", "31.314")
    assert tasks["30.1"].title == ""  # these subtasks have no title at all


def test_null_test_strategy_reads_as_empty_text() -> None:
    lists = _all_tags(CORPUS / "AcidicSoil__oraclepack.json")
    nulls = [
        t
        for tl in lists.values()
        for t in tl.tasks
        if "testStrategy" in t.raw and t.raw["testStrategy"] is None
    ]
    assert nulls
    assert {t.test_strategy for t in nulls} == {""}


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["find_tasks_file", "project_root", "read_document", "resolve_tag", "Document"]
)
def test_discovery_names_are_still_served_from_taskmaster(name: str) -> None:
    assert getattr(taskmaster, name) is getattr(discovery, name)
    assert name in taskmaster.__all__


@pytest.mark.parametrize(
    ("token", "key", "number"),
    [
        (7, "7", "7"),
        ("007", "7", "7"),
        ("7.2", None, "2"),
        (7.2, None, "2"),
        (3.0, None, "3"),
        (-1, None, None),
        (True, None, None),
        ("٣", None, None),
        (float("nan"), None, None),
        ("7.x", None, None),
    ],
)
def test_id_rules(token: object, key: str | None, number: str | None) -> None:
    assert (taskmaster.task_key(token), taskmaster.subtask_number(token)) == (key, number)


def test_malformed_and_duplicate_task_ids_leave_the_task_out(tmp_path: Path) -> None:
    bad = ["abc", None, True, -1, 1.5, "1.2", " 3", "٣"]
    tasks = _tasks(
        tmp_path,
        [{"id": b} for b in bad]
        + [7, {"title": "no id"}, {"id": "007", "title": "first"}, {"id": 7}],
    )
    assert [t.id for t in tasks.tasks] == ["7"]
    assert (tasks.tasks[0].title, tasks.tasks[0].token) == ("first", "007")
    malformed = [f for f in tasks.findings if f.code is Code.MALFORMED_TASK]
    assert len(malformed) == len(bad) + 2
    assert all(f.severity is Severity.ERROR and f.tag == "master" for f in malformed)
    assert malformed[0].message == (
        'tasks[0]: id "abc" is not a non-negative integer or digit string; left out'
    )
    assert malformed[len(bad)].message == "tasks[8]: 7 is not an object; left out"
    assert tasks.findings[-1].code is Code.DUPLICATE_ID
    assert tasks.findings[-1].task == "7"


def test_subtask_ids_in_every_form(tmp_path: Path) -> None:
    subs = [
        {"id": 1},
        {"id": "2"},
        {"id": "7.3"},
        {"id": 7.4},
        {"id": 5.0},
        {"id": 61},
        {"id": "007"},
    ]
    bad = [{"id": "7.x"}, {"id": "1.2.3"}, {"id": -2}, {"id": None}, "str", {"id": 3}, {"id": 1.0}]
    tasks = _tasks(tmp_path, [{"id": 7, "subtasks": subs + bad}])
    by_id = _by_id(tasks)
    assert by_id["7"].subtasks == ("7.1", "7.2", "7.3", "7.4", "7.5", "7.61", "7.7")
    assert [by_id[i].token for i in by_id["7"].subtasks] == [1, "2", "7.3", 7.4, 5.0, 61, "007"]
    assert all(by_id[i].parent == "7" for i in by_id["7"].subtasks)
    assert [c for c, _, _ in _codes(tasks)] == [Code.MALFORMED_TASK] * 5 + [Code.DUPLICATE_ID] * 2
    assert tasks.findings[-1].task == "7.1"


def test_subtasks_that_is_not_a_list_is_an_error(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path, [{"id": 1, "subtasks": {"id": 1}}, {"id": 2, "subtasks": None}])
    assert [t.id for t in tasks.tasks] == ["1", "2"]
    assert _codes(tasks) == [(Code.MALFORMED_TASK, Severity.ERROR, "1")]


def test_fields_are_normalised_and_raw_is_kept(tmp_path: Path) -> None:
    task = {
        "id": 1,
        "title": "T",
        "status": " In-Progress ",
        "priority": "HIGH",
        "x-extra": [1],
        "subtasks": [{"id": 1}, {"id": 2, "priority": "low", "status": "Done"}],
    }
    tasks = _by_id(_tasks(tmp_path, [task]))
    assert (tasks["1"].status, tasks["1"].priority) == ("in-progress", "high")
    assert (tasks["1.1"].status, tasks["1.1"].priority, tasks["1.1"].title) == (
        "pending",
        "high",
        "",
    )
    assert (tasks["1.2"].status, tasks["1.2"].priority) == ("done", "low")
    assert tasks["1"].raw == task
    assert tasks["1.2"].raw == {"id": 2, "priority": "low", "status": "Done"}
    with pytest.raises(TypeError):
        tasks["1"].raw["status"] = "done"  # type: ignore[index]


def test_unknown_status_and_priority_are_warnings(tmp_path: Path) -> None:
    tasks = _tasks(
        tmp_path,
        [
            {"id": 1, "status": "WIP", "priority": "urgent"},
            {"id": 2, "priority": None, "status": None},
        ],
    )
    assert (tasks.tasks[0].status, tasks.tasks[0].priority) == ("wip", "medium")
    assert (tasks.tasks[1].status, tasks.tasks[1].priority) == ("pending", "medium")
    assert _codes(tasks) == [
        (Code.UNKNOWN_PRIORITY, Severity.WARNING, "1"),
        (Code.UNKNOWN_STATUS, Severity.WARNING, "1"),
    ]
    assert tasks.findings[1].message == 'unknown status "wip", kept as written'


def test_wrong_types_in_text_fields_are_coerced_with_a_warning(tmp_path: Path) -> None:
    tasks = _tasks(
        tmp_path,
        [{"id": 1, "title": 5, "description": None, "details": ["a"], "testStrategy": True}],
    )
    task = tasks.tasks[0]
    assert (task.title, task.description, task.details, task.test_strategy) == (
        "5",
        "",
        "['a']",
        "True",
    )
    assert _codes(tasks) == [(Code.MALFORMED_TASK, Severity.WARNING, "1")] * 3
    assert tasks.findings[0].message == "title should be a string, got 5"


# --- dependencies ---------------------------------------------------------------------------


def test_task_dependencies_in_every_form(tmp_path: Path) -> None:
    deps = [2, "3", "04", "2.1", 2.2, 5.0]
    tasks = _by_id(_tasks(tmp_path, [{"id": 1, "dependencies": deps}, {"id": 9}]))
    assert tasks["1"].dependencies == ("2", "3", "4", "2.1", "2.2", "5")
    assert tasks["9"].dependencies == ()


@pytest.mark.parametrize(
    "entry", ["29.1,29.2", "abc", None, [1], True, -1, "", "1.2.3", {"id": 1}, 1e-05]
)
def test_malformed_dependency_is_dropped_and_quoted_exactly(tmp_path: Path, entry: object) -> None:
    tasks = _tasks(tmp_path, [{"id": 1, "dependencies": [entry, 2]}])
    assert tasks.tasks[0].dependencies == ("2",)
    assert _codes(tasks) == [(Code.MALFORMED_DEPENDENCY, Severity.ERROR, "1")]
    assert tasks.findings[0].message == f"malformed dependency {json.dumps(entry)}, dropped"


@pytest.mark.parametrize("value", ["1,2", 3, {"a": 1}, True])
def test_dependencies_that_are_not_a_list_are_an_error(tmp_path: Path, value: object) -> None:
    tasks = _tasks(tmp_path, [{"id": 1, "dependencies": value}, {"id": 2, "dependencies": None}])
    assert [t.dependencies for t in tasks.tasks] == [(), ()]
    assert _codes(tasks) == [(Code.MALFORMED_DEPENDENCY, Severity.ERROR, "1")]


def test_subtask_dependency_resolution(tmp_path: Path) -> None:
    subs = [
        {"id": 1},
        {"id": 2, "dependencies": [1, "3.1", 3.1]},  # sibling, then another task's subtask
        {"id": 3, "dependencies": [12]},  # no sibling 12, task 12 exists: the task
        {"id": 4, "dependencies": [99]},  # neither exists: the sibling (missing)
        {"id": 5, "dependencies": ["1", 1, "4.1"]},  # duplicates after normalisation
    ]
    tasks = _tasks(
        tmp_path, [{"id": 4, "subtasks": subs}, {"id": 3, "subtasks": [{"id": 1}]}, {"id": 12}]
    )
    by_id = _by_id(tasks)
    assert by_id["4.2"].dependencies == ("4.1", "3.1")
    assert by_id["4.3"].dependencies == ("12",)
    assert by_id["4.4"].dependencies == ("4.99",)
    assert by_id["4.5"].dependencies == ("4.1",)
    assert _codes(tasks) == [
        (Code.DUPLICATE_DEPENDENCY, Severity.WARNING, "4.2"),
        (Code.AMBIGUOUS_SUBTASK_DEPENDENCY, Severity.WARNING, "4.3"),
        (Code.DUPLICATE_DEPENDENCY, Severity.WARNING, "4.5"),
        (Code.DUPLICATE_DEPENDENCY, Severity.WARNING, "4.5"),
    ]
    assert tasks.findings[1].message == (
        "depends on 12: no subtask 4.12 exists, read as task 12"
        " (Taskmaster's `next` reads it as 4.12 and never runs 4.3)"
    )


def test_self_and_parent_dependencies_are_dropped(tmp_path: Path) -> None:
    subs = [{"id": 1, "dependencies": [1, "5.1", 5, "5", 2]}, {"id": 2}]
    tasks = _tasks(tmp_path, [{"id": 5, "dependencies": [5, "5", 6], "subtasks": subs}, {"id": 6}])
    by_id = _by_id(tasks)
    assert by_id["5"].dependencies == ("6",)
    assert by_id["5.1"].dependencies == ("5.2",)
    assert _codes(tasks) == [
        (Code.SELF_DEPENDENCY, Severity.ERROR, "5"),
        (Code.SELF_DEPENDENCY, Severity.ERROR, "5"),
        (Code.SELF_DEPENDENCY, Severity.ERROR, "5.1"),
        (Code.SELF_DEPENDENCY, Severity.ERROR, "5.1"),
        (Code.SUBTASK_DEPENDS_ON_PARENT, Severity.WARNING, "5.1"),
        (Code.SUBTASK_DEPENDS_ON_PARENT, Severity.WARNING, "5.1"),
    ]


# --- metadata.ptx ---------------------------------------------------------------------------


_COMMAND = "must be a command string or a non-empty list of strings"


def _options_of(tmp_path: Path, ptx: object) -> TaskList:
    return _tasks(tmp_path, [{"id": 7, "metadata": {"owner": "x", "ptx": ptx}}])


def test_all_options_are_read(tmp_path: Path) -> None:
    ptx = {
        "command": ["make", "build"],
        "timeout_seconds": 10,
        "retries": 2,
        "resources": {"db": 1},
        "cwd": "sub",
        "env": {"A": "x", "B": 3, "D": 1.5},
        "estimate_seconds": 0,
    }
    tasks = _options_of(tmp_path, ptx)
    options = tasks.tasks[0].options
    assert tasks.findings == ()
    assert (options.command, options.timeout_seconds, options.retries) == (("make", "build"), 10, 2)
    assert (dict(options.resources), options.cwd, options.estimate_seconds) == ({"db": 1}, "sub", 0)
    assert dict(options.env) == {"A": "x", "B": "3", "D": "1.5"}
    assert _options_of(tmp_path, {"command": "echo hi"}).tasks[0].options.command == "echo hi"


@pytest.mark.parametrize(
    ("ptx", "problem"),
    [
        ({"timeout_seconds": "10"}, '.timeout_seconds: must be a number > 0, got "10"'),
        ({"timeout_seconds": 0}, ".timeout_seconds: must be a number > 0, got 0"),
        ({"timeout_seconds": True}, ".timeout_seconds: must be a number > 0, got true"),
        ({"estimate_seconds": -1}, ".estimate_seconds: must be a number >= 0, got -1"),
        ({"retries": 1.0}, ".retries: must be an integer >= 0, got 1.0"),
        ({"retries": False}, ".retries: must be an integer >= 0, got false"),
        ({"command": []}, f".command: {_COMMAND}, got a list"),
        ({"command": ["a", 1]}, f".command: {_COMMAND}, got a list"),
        ({"command": [" ", "x"]}, f".command: {_COMMAND}, got a list"),
        ({"command": "echo \0"}, f'.command: {_COMMAND}, got "echo \\u0000"'),
        ({"resources": {"db": 0}}, ".resources.db: must be a positive integer, got 0"),
        (
            {"resources": {"a b": 1}},
            '.resources."a b": resource names must match [A-Za-z_][A-Za-z0-9_.-]*, got "a b"',
        ),
        ({"cwd": ""}, '.cwd: must be a non-empty string, got ""'),
        ({"cwd": " "}, '.cwd: must be a non-empty string, got " "'),
        (
            {"env": {"A=B": "x"}},
            '.env."A=B": variable names must be strings without \'=\', got "A=B"',
        ),
        ({"env": {"A": None}}, ".env.A: must be a string or a number, got null"),
        ({"env": {"A": True}}, ".env.A: must be a string or a number, got true"),
        ({"env": {"A": 1e400}}, ".env.A: must be a string or a number, got inf"),
        ({"comand": "x"}, ".comand: unknown key (did you mean 'command'?)"),
        (
            {"x": 1},
            (
                ".x: unknown key (allowed: command, cwd, env, estimate_seconds, keep_daemons,"
                " memory_limit, resources, result, retries, timeout_seconds)"
            ),
        ),
        ("make", ': must be a mapping, got "make"'),
    ],
)
def test_bad_options_are_errors_naming_the_key_path(
    tmp_path: Path, ptx: object, problem: str
) -> None:
    tasks = _options_of(tmp_path, ptx)
    assert _codes(tasks) == [(Code.BAD_TASK_OPTIONS, Severity.ERROR, "7")]
    assert tasks.findings[0].message == f"metadata.ptx{problem}"


def test_good_options_count_next_to_a_bad_one(tmp_path: Path) -> None:
    tasks = _options_of(tmp_path, {"retries": -1, "cwd": "here", "timeout_seconds": 1e400})
    assert [f.message for f in tasks.findings] == [
        "metadata.ptx.retries: must be an integer >= 0, got -1",
        "metadata.ptx.timeout_seconds: must be a number > 0, got inf",
    ]
    assert (tasks.tasks[0].options.cwd, tasks.tasks[0].options.retries) == ("here", None)


def test_null_options_mean_unset(tmp_path: Path) -> None:
    tasks = _options_of(tmp_path, dict.fromkeys(OPTION_RULES))
    assert tasks.findings == ()
    assert tasks.tasks[0].options == TaskOptions()
    assert _options_of(tmp_path, None).tasks[0].options == TaskOptions()


def test_metadata_without_ptx_means_no_options(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path, [{"id": 1, "metadata": {"a": 1}}, {"id": 2, "metadata": "text"}])
    assert tasks.findings == ()
    assert all(t.options.command is None for t in tasks.tasks)


def test_reading_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.json", {"tasks": [{"id": 1}]})
    assert gc.isenabled()
    parse_tag(read_document(path), "master")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_tag(read_document(path), "master")
        assert not gc.isenabled()
    finally:
        gc.enable()
    (tmp_path / "tasks.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputError):
        read_document(path)
    assert gc.isenabled()


# --- never a traceback ----------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)
_ID = st.one_of(
    st.integers(-2, 40), st.floats(-1, 40), st.sampled_from(["1", "2.1", "x", "", "07"]), _JSON
)
_TASK = st.fixed_dictionaries(
    {"id": _ID},
    optional={
        "dependencies": st.lists(_ID, max_size=4) | _JSON,
        "subtasks": st.lists(
            st.fixed_dictionaries(
                {"id": _ID}, optional={"dependencies": st.lists(_ID, max_size=3), "priority": _JSON}
            )
            | _JSON,
            max_size=4,
        ),
        "status": _JSON,
        "title": _JSON,
        "metadata": st.fixed_dictionaries(
            {
                "ptx": st.dictionaries(
                    st.sampled_from(["command", "env", "retries", "timeout_seconds", "x"]), _JSON
                )
            }
        ),
    },
)
_DOCUMENT = st.one_of(
    _JSON,
    st.fixed_dictionaries({"tasks": st.lists(_TASK, max_size=6)}),
    st.dictionaries(
        st.text(max_size=4),
        st.fixed_dictionaries({"tasks": st.lists(_TASK, max_size=4)}),
        max_size=3,
    ),
)

# Every example overwrites the same file, so sharing tmp_path between examples is safe.
_ONE_FILE_PER_EXAMPLE = [HealthCheck.function_scoped_fixture]


def _load_anything(path: Path) -> None:
    message = ""
    try:
        projects = load_all_tags(file=path, start=path.parent)
        load_project(file=path, start=path.parent, tag=None, environ={})
    except (InputError, UsageError) as exc:
        projects, message = (), str(exc)
    assert "\n" not in message
    for project in projects:
        assert all("\n" not in f.message for f in project.tasks.findings)


@settings(max_examples=150, deadline=None, suppress_health_check=_ONE_FILE_PER_EXAMPLE)
@given(content=st.binary(max_size=200))
def test_random_bytes_load_or_raise_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tasks.json"
    path.write_bytes(content)
    _load_anything(path)


@settings(max_examples=200, deadline=None, suppress_health_check=_ONE_FILE_PER_EXAMPLE)
@given(document=_DOCUMENT)
def test_random_json_loads_or_raises_input_error(tmp_path: Path, document: object) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    _load_anything(path)
