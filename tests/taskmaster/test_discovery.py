"""Tests for taskmaster.discovery: finding tasks.json, its root, the tag chain, unreadable input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ptx.core.errors import InputError, UsageError
from ptx.taskmaster.discovery import find_tasks_file, project_root, read_document, resolve_tag
from ptx.taskmaster.reader import load_project, parse_tag


def _write(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


# --- discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [".taskmaster/tasks/tasks.json", "tasks/tasks.json"])
def test_finds_the_file_from_a_nested_directory(tmp_path: Path, layout: str) -> None:
    path = _write(tmp_path / layout, {"tasks": []})
    nested = tmp_path / "src" / "deep" / "er"
    nested.mkdir(parents=True)
    assert find_tasks_file(nested) == path.resolve()
    assert project_root(find_tasks_file(nested)) == tmp_path.resolve()


def test_prefers_taskmaster_dir_and_the_nearest_directory(tmp_path: Path) -> None:
    _write(tmp_path / "tasks" / "tasks.json", {"tasks": []})
    inner = _write(tmp_path / "app" / "tasks" / "tasks.json", {"tasks": []})
    assert find_tasks_file(tmp_path / "app") == inner.resolve()
    modern = _write(tmp_path / "app" / ".taskmaster" / "tasks" / "tasks.json", {"tasks": []})
    assert find_tasks_file(tmp_path / "app") == modern.resolve()


def test_not_found_names_both_paths_and_suggests_file(tmp_path: Path) -> None:
    start = tmp_path.resolve()
    for folder in (start, *start.parents):
        if (folder / "tasks" / "tasks.json").exists() or (folder / ".taskmaster").exists():
            pytest.skip(f"a stray tasks file above the test directory: {folder}")
    with pytest.raises(InputError) as caught:
        find_tasks_file(tmp_path)
    assert str(caught.value) == (
        "no tasks.json found: looked for .taskmaster/tasks/tasks.json and tasks/tasks.json"
        f" in {start} and its parents; use --file"
    )


@pytest.mark.parametrize(
    ("relative", "root"),
    [
        ("p/.taskmaster/tasks/tasks.json", "p"),
        ("p/tasks/tasks.json", "p"),
        ("p/.taskmaster/tasks.json", "p"),
        ("p/docs/tasks.json", "p/docs"),
        ("p/tasks/other.json", "p/tasks"),
    ],
)
def test_project_root(relative: str, root: str) -> None:
    assert project_root(Path("/x") / relative) == Path("/x") / root


def test_explicit_file_sets_the_root_from_its_location(tmp_path: Path) -> None:
    path = _write(tmp_path / "proj" / ".taskmaster" / "tasks.json", {"tasks": [{"id": 1}]})
    project = load_project(file=path, start=Path("/"), tag=None, environ={})
    assert (project.path, project.root) == (path.resolve(), (tmp_path / "proj").resolve())
    assert (project.layout, project.tags) == ("legacy", ("master",))


# --- the tag chain --------------------------------------------------------------------------


@pytest.fixture
def tagged(tmp_path: Path) -> Path:
    """A project with tags master, a, b, c and no settings files yet; returns its root."""
    tags = {name: {"tasks": [{"id": 1, "title": name}]} for name in ("master", "a", "b", "c")}
    _write(tmp_path / ".taskmaster" / "tasks" / "tasks.json", tags)
    return tmp_path


def _tag(root: Path, requested: str | None = None, **environ: str) -> tuple[str, str | None]:
    doc = read_document(root / ".taskmaster" / "tasks" / "tasks.json")
    return resolve_tag(doc, root, requested, environ)


def test_tag_chain_each_step_wins_over_the_next(tagged: Path) -> None:
    assert _tag(tagged) == ("master", None)
    _write(tagged / ".taskmaster" / "config.json", {"global": {"defaultTag": "c"}})
    assert _tag(tagged) == ("c", None)
    _write(tagged / ".taskmaster" / "state.json", {"activeTag": "b"})
    assert _tag(tagged) == ("b", None)
    _write(tagged / ".taskmaster" / "state.json", {"currentTag": "a", "activeTag": "b"})
    assert _tag(tagged) == ("a", None)
    assert _tag(tagged, TASKMASTER_TAG="b") == ("b", None)
    assert _tag(tagged, "c", TASKMASTER_TAG="b") == ("c", None)
    assert _tag(tagged, TASKMASTER_TAG="") == ("a", None)


@pytest.mark.parametrize(
    ("requested", "env", "settings", "source"),
    [
        ("zz", {}, {}, "--tag"),
        (None, {"TASKMASTER_TAG": "zz"}, {}, "TASKMASTER_TAG"),
        (None, {}, {"state.json": {"currentTag": "zz"}}, "{dir}/state.json currentTag"),
        (None, {}, {"state.json": {"activeTag": "zz"}}, "{dir}/state.json activeTag"),
        (
            None,
            {},
            {"config.json": {"global": {"defaultTag": "zz"}}},
            "{dir}/config.json global.defaultTag",
        ),
    ],
)
def test_missing_tag_asked_by_any_source_is_an_error_listing_the_tags(
    tagged: Path, requested: str | None, env: dict[str, str], settings: dict[str, Any], source: str
) -> None:
    for name, content in settings.items():
        _write(tagged / ".taskmaster" / name, content)
    path = tagged / ".taskmaster" / "tasks" / "tasks.json"
    with pytest.raises(UsageError) as caught:
        load_project(file=path, start=tagged, tag=requested, environ=env)
    where = source.format(dir=tagged.resolve() / ".taskmaster")
    assert str(caught.value) == (
        f"tag 'zz' not found in {path.resolve()} (from {where}); tags: master, a, b, c"
    )


def test_without_master_and_several_tags_nothing_is_guessed(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.json", {"x": {"tasks": []}, "y": {"tasks": []}})
    with pytest.raises(
        UsageError, match=r"tag 'master' not found .* \(from the default\); tags: x, y"
    ):
        load_project(file=path, start=tmp_path, tag=None, environ={})


def test_only_tag_named_master_needs_no_notice(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.json", {"master": {"tasks": []}, "meta": {"a": 1}})
    assert load_project(file=path, start=tmp_path, tag=None, environ={}).notices == ()


def test_only_tag_rule_does_not_apply_when_a_tag_was_asked_for(tmp_path: Path) -> None:
    path = _write(tmp_path / ".taskmaster" / "tasks" / "tasks.json", {"solo": {"tasks": []}})
    _write(tmp_path / ".taskmaster" / "state.json", {"currentTag": "master"})
    with pytest.raises(UsageError, match="tag 'master' not found"):
        load_project(file=path, start=tmp_path, tag=None, environ={})


def test_legacy_file_has_only_master(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.json", {"tasks": [], "meta": {}})
    assert load_project(file=path, start=tmp_path, tag="master", environ={}).tasks.tag == "master"
    with pytest.raises(UsageError, match=r"tags: master$"):
        load_project(file=path, start=tmp_path, tag="feature", environ={})


@pytest.mark.parametrize("content", ["{broken", "[1, 2]", "\xff\xfe"])
def test_unreadable_state_json_is_ignored_with_a_notice(tagged: Path, content: str) -> None:
    state = tagged / ".taskmaster" / "state.json"
    state.write_bytes(content.encode("latin-1"))
    _write(tagged / ".taskmaster" / "config.json", {"global": {"defaultTag": "b"}})
    tag, notice = _tag(tagged)
    assert tag == "b"
    assert notice is not None
    assert notice.startswith(f"ignoring {state}: ")


def test_load_project_carries_the_notices(tmp_path: Path) -> None:
    path = _write(tmp_path / ".taskmaster" / "tasks" / "tasks.json", {"solo": {"tasks": []}})
    (tmp_path / ".taskmaster" / "config.json").write_text("nope", encoding="utf-8")
    project = load_project(file=None, start=tmp_path, tag=None, environ={})
    assert project.tasks.tag == "solo"
    assert len(project.notices) == 2
    assert project.notices[0].startswith(f"ignoring {tmp_path.resolve()}/.taskmaster/config.json")
    assert project.notices[1] == f"using tag 'solo', the only tag in {path.resolve()}"


# --- unreadable input -----------------------------------------------------------------------


def _input_error(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        read_document(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"  \n\t ", "is empty"),
        (b'{"tasks": [\xff]}', "is not valid UTF-8 (bad byte at offset 11)"),
        (b'{"tasks": []}\n  ]', ":2:3: invalid JSON: Extra data"),
        (b'{\n  "tasks": [1,,]\n}', ":2:15: invalid JSON: Expecting value"),
        (b"[" * 100_000, "nested deeper than 200 levels"),
        (b'{"a":' * 100_000, "nested deeper than 200 levels"),
        (b'{"tasks": [], "x": ' + b"[" * 250 + b"]" * 250 + b"}", "nested deeper than 200 levels"),
        (b'{"tasks": [{"id": ' + b"9" * 5000 + b"}]}", "invalid JSON: Exceeds the limit"),
        (b'[{"id": 1}]', "the root is an array, not an object"),
        (b"5", "the root is a JSON int, not an object"),
        (b"null", "the root is a JSON NoneType, not an object"),
        (b'{"tasks": [], "m": {"tasks": []}}', 'both a root "tasks" array and tags (m)'),
        (b'{"tasks": {}, "version": 2}', "no task lists found"),
        (b"{}", "no task lists found"),
    ],
)
def test_bad_files_are_one_line_input_errors(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "tasks.json"
    path.write_bytes(content)
    assert expected in _input_error(path)


def test_depth_within_the_limit_and_brackets_in_strings_are_fine(tmp_path: Path) -> None:
    deep = {
        "tasks": [
            {"id": 1, "title": "[" * 500, "metadata": {"x": json.loads("[" * 150 + "]" * 150)}}
        ]
    }
    doc = read_document(_write(tmp_path / "tasks.json", deep))
    assert parse_tag(doc, "master").tasks[0].title == "[" * 500


def test_file_over_50_mb_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    with path.open("wb") as stream:
        stream.truncate(60 * 1024 * 1024)  # sparse: nothing is written
    assert "is 60.0 MB; ptx reads tasks files up to 50 MB" in _input_error(path)


def test_missing_file_and_directory_are_input_errors(tmp_path: Path) -> None:
    assert "cannot read" in _input_error(tmp_path / "nope.json")
    assert "cannot read" in _input_error(tmp_path)


def test_tag_names_with_control_characters_are_escaped_in_messages(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.json", {"a\nb": {"tasks": []}, "c": {"tasks": []}})
    with pytest.raises(UsageError) as raised:
        load_project(file=path, start=tmp_path, tag="x\ty", environ={})
    assert str(raised.value) == (
        f"tag 'x\\ty' not found in {path.resolve()} (from --tag); tags: a\\nb, c"
    )
