"""Tests for taskmaster.options: per-task options and shared value rules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptx.core.errors import ConfigError
from ptx.core.model import TaskOptions
from ptx.taskmaster.config import DEFAULT_PATH, load_config
from ptx.taskmaster.options import (
    OPTION_RULES,
    key_text,
    parse_mapping,
    parse_options,
    show,
    unknown_key,
)
from ptx.taskmaster.reader import load_project

if TYPE_CHECKING:
    from pathlib import Path


def test_every_option_is_read_and_converted() -> None:
    raw = {
        "command": ["make", "build"],
        "timeout_seconds": 10,
        "retries": 0,
        "resources": {"db": 1},
        "cwd": "sub",
        "env": {"A": "x", "B": 3, "C": 0.5},
        "estimate_seconds": 0,
    }
    assert parse_options(raw, "p") == (
        TaskOptions(
            command=("make", "build"),
            timeout_seconds=10.0,
            retries=0,
            resources={"db": 1},
            cwd="sub",
            env={"A": "x", "B": "3", "C": "0.5"},
            estimate_seconds=0.0,
        ),
        [],
    )
    assert isinstance(parse_options(raw, "p")[0].timeout_seconds, float)


def test_problems_name_the_key_path_under_the_prefix_and_good_values_still_count() -> None:
    raw = {"retries": -1, "cwd": "here", "env": {"OK": "1", "A=B": "x", "N": True}, "x y": 1}
    options, problems = parse_options(raw, 'tasks."7.2"')
    assert options == TaskOptions(cwd="here")
    assert problems == [
        'tasks."7.2".retries: must be an integer >= 0, got -1',
        'tasks."7.2".env."A=B": variable names must be strings without \'=\', got "A=B"',
        'tasks."7.2".env.N: must be a string or a number, got true',
        (
            'tasks."7.2"."x y": unknown key (allowed: command, cwd, env, estimate_seconds,'
            " keep_daemons, memory_limit, resources, result, retries, timeout_seconds)"
        ),
    ]


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        (None, []),
        ({}, []),
        (dict.fromkeys(OPTION_RULES), []),
        ([], ["p: must be a mapping, got a list"]),
        ("make", ['p: must be a mapping, got "make"']),
    ],
)
def test_null_and_empty_mean_no_options(raw: object, problems: list[str]) -> None:
    assert parse_options(raw, "p") == (TaskOptions(), problems)


def test_a_mapping_at_the_root_has_no_path_to_name() -> None:
    parsers = {"enabled": lambda v: v}
    assert parse_mapping({"enabeld": 1}, "", parsers) == (
        {},
        ["enabeld: unknown key (did you mean 'enabled'?)"],
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "null"),
        (True, "true"),
        (2**70, "a very large integer"),
        (float("inf"), "inf"),
        ("x" * 100, '"' + "x" * 55 + '..."'),
        ({"a": 1}, "a mapping"),
        (b"x", "a value of type bytes"),
    ],
)
def test_show_keeps_a_value_short_and_on_one_line(value: object, shown: str) -> None:
    assert show(value) == shown


def test_keys_are_quoted_only_when_they_are_not_plain() -> None:
    assert [key_text(k) for k in ("db", "7", "7.2", 7, "a b")] == ["db", "7", '"7.2"', "7", '"a b"']
    assert unknown_key("comand", OPTION_RULES) == "unknown key (did you mean 'command'?)"


_CASES = [
    {"timeout_seconds": 0},
    {"retries": True},
    {"command": []},
    {"env": {"A=B": "x", "C": None}},
    {"resources": {"db": 0}},
    {"cwd": ""},
    {"comand": "x"},
]


@pytest.mark.parametrize("raw", _CASES)
def test_config_and_tasks_json_report_the_same_problem(tmp_path: Path, raw: object) -> None:
    config = tmp_path / DEFAULT_PATH
    config.parent.mkdir()
    body = json.dumps({"parallel_execution": {"tasks": {"7": raw}}})
    config.write_text(body, encoding="utf-8")  # JSON is YAML
    with pytest.raises(ConfigError) as raised:
        load_config(None, root=tmp_path, environ={})
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps({"tasks": [{"id": 7, "metadata": {"ptx": raw}}]}))
    findings = load_project(file=tasks, start=tmp_path, tag=None, environ={}).tasks.findings

    from_config = [p.split("parallel_execution.tasks.7", 1)[1] for p in raised.value.problems]
    from_tasks = [f.message.split("metadata.ptx", 1)[1] for f in findings]
    assert from_config == from_tasks
    assert from_config


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.sampled_from([*OPTION_RULES, "x"]), _JSON) | _JSON)
def test_any_value_gives_options_or_problems_under_the_prefix(raw: object) -> None:
    options, problems = parse_options(raw, "pre")
    assert isinstance(options, TaskOptions)
    assert all(p.startswith("pre") and "\n" not in p for p in problems)
    assert all(type(value) is str for value in options.env.values())
    assert all(type(units) is int and units > 0 for units in options.resources.values())
