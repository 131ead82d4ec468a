"""Tests for taskmaster.config: real files under tmp_path, real YAML, real environment mappings."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from builders import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from ptx.core.errors import ConfigError, ExitCode
from ptx.core.model import DEFAULT_SATISFIED, KNOWN_STATUSES, TaskOptions
from ptx.taskmaster.config import (
    DEFAULT_PATH,
    CircuitBreaker,
    Config,
    Monitoring,
    ResourceLimits,
    SafetyThresholds,
    default_config,
    load_config,
)

SHIPPED = REPO / DEFAULT_PATH
WHERE = DEFAULT_PATH  # how problems name a project's own config file


def write_config(root: Path, body: str) -> Path:
    path = root / DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def load(root: Path, body: str, **environ: str) -> Config:
    write_config(root, body)
    return load_config(None, root=root, environ=environ)


def problems(root: Path, body: str, **environ: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(root, body, **environ)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    return caught.value.problems


def setting(key: str, value: str) -> str:
    """A file that sets one key path (dotted, under parallel_execution) to a YAML value."""
    lines, indent = ["parallel_execution:"], "  "
    *sections, last = key.split(".")
    for section in sections:
        lines.append(f"{indent}{section}:")
        indent += "  "
    lines.append(f"{indent}{last}: {value}")
    return "\n".join(lines) + "\n"


# --- defaults and the shipped file -----------------------------------------------------------


def test_defaults_follow_the_design() -> None:
    config = default_config()
    assert config.enabled is True
    assert config.max_concurrency == 10
    assert config.safety_thresholds == SafetyThresholds(
        max_failure_rate=0.1, max_resource_utilization=0.8, timeout_multiplier=2.0
    )
    assert config.circuit_breaker == CircuitBreaker(
        failure_threshold=5, timeout_seconds=60, half_open_timeout_seconds=30
    )
    assert config.resource_limits == ResourceLimits(
        cpu_per_task=0.5, memory_per_task=512 * 1024 * 1024, max_concurrent_tasks=10
    )
    assert config.monitoring == Monitoring(
        metrics_enabled=True, detailed_logging=True, performance_tracking=True
    )
    assert config.command is None
    assert config.default_timeout_seconds is None
    assert (config.kill_grace_seconds, config.retries, config.retry_backoff_seconds) == (5, 0, 1)
    assert config.failure_policy == "continue"
    assert config.satisfied_statuses == DEFAULT_SATISFIED
    assert config.update_status is False
    assert dict(config.resources) == {}
    assert dict(config.tasks) == {}
    assert config.source is None


def test_no_file_and_no_environment_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(None, root=tmp_path, environ={})
    assert config == default_config()
    assert config.source is None


def test_the_shipped_file_holds_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / DEFAULT_PATH
    path.parent.mkdir()
    shutil.copy(SHIPPED, path)
    config = load_config(None, root=tmp_path, environ={})
    assert config == default_config()
    assert config.source == path


def test_the_shipped_file_documents_every_key() -> None:
    document = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["parallel_execution"]
    fields = {f.name for f in dataclasses.fields(Config)} - {"source"}
    assert set(document) == fields
    sections = ("safety_thresholds", "circuit_breaker", "resource_limits", "monitoring")
    for name in (*sections, "workspace", "integration"):
        nested = type(getattr(default_config(), name))
        assert set(document[name]) == {f.name for f in dataclasses.fields(nested)}


@pytest.mark.parametrize("body", ["", "# only a comment\n", "parallel_execution:\n"])
def test_an_empty_file_or_section_gives_the_defaults(tmp_path: Path, body: str) -> None:
    config = load(tmp_path, body)
    assert config == default_config()
    assert config.source == tmp_path / DEFAULT_PATH


# --- values that are accepted ----------------------------------------------------------------


def test_every_key_is_read(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        parallel_execution:
          enabled: no
          max_concurrency: 3
          safety_thresholds:
            max_failure_rate: 0
            max_resource_utilization: 1
            timeout_multiplier: 3
          circuit_breaker:
            failure_threshold: 2
            timeout_seconds: 1.5
            half_open_timeout_seconds: 2
          resource_limits: {cpu_per_task: 2, memory_per_task: 1000, max_concurrent_tasks: 4}
          monitoring: {metrics_enabled: false, detailed_logging: false, performance_tracking: false}
          command: [run-task, "{id}"]
          default_timeout_seconds: 30
          kill_grace_seconds: 0.5
          retries: 2
          retry_backoff_seconds: 0
          failure_policy: fail-fast
          satisfied_statuses: [Done, review]
          update_status: true
          resources: {db: 1, gpu.a100: 2}
        """,
    )
    assert config.enabled is False
    assert config.max_concurrency == 3
    assert config.safety_thresholds == SafetyThresholds(
        max_failure_rate=0, max_resource_utilization=1, timeout_multiplier=3
    )
    assert config.circuit_breaker == CircuitBreaker(
        failure_threshold=2, timeout_seconds=1.5, half_open_timeout_seconds=2
    )
    assert config.resource_limits == ResourceLimits(
        cpu_per_task=2, memory_per_task=1000, max_concurrent_tasks=4
    )
    assert config.monitoring == Monitoring(
        metrics_enabled=False, detailed_logging=False, performance_tracking=False
    )
    assert config.command == ("run-task", "{id}")
    assert (config.default_timeout_seconds, config.kill_grace_seconds) == (30, 0.5)
    assert (config.retries, config.retry_backoff_seconds) == (2, 0)
    assert config.failure_policy == "fail-fast"
    assert config.satisfied_statuses == frozenset({"done", "review"})
    assert config.update_status is True
    assert dict(config.resources) == {"db": 1, "gpu.a100": 2}


@pytest.mark.parametrize(
    ("value", "cores"),
    [("0.5", 0.5), ('"0.5"', 0.5), ('"500m"', 0.5), ("2", 2.0), ('"1.25"', 1.25), ('"1m"', 0.001)],
)
def test_cpu_quantities(tmp_path: Path, value: str, cores: float) -> None:
    config = load(tmp_path, setting("resource_limits.cpu_per_task", value))
    assert config.resource_limits.cpu_per_task == pytest.approx(cores)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ('"512Mi"', 512 * 2**20),
        ('"2Gi"', 2 * 2**30),
        ('"1G"', 10**9),
        ('"100M"', 100 * 10**6),
        ('"1024Ki"', 2**20),
        ('"1.5Gi"', 3 * 2**29),
        ('"64k"', 64_000),
        ('"4096"', 4096),
        ("4096", 4096),
    ],
)
def test_memory_quantities(tmp_path: Path, value: str, size: int) -> None:
    assert load(tmp_path, setting("resource_limits.memory_per_task", value)).resource_limits == (
        ResourceLimits(memory_per_task=size)
    )


def test_per_task_overrides_are_normalised(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        parallel_execution:
          tasks:
            7:
              command: make test
              timeout_seconds: 600
              retries: 2
              resources: {db: 1}
              cwd: backend
              env: {CI: 1, RATIO: 0.5, NAME: ptx}
              estimate_seconds: 0
            "7.2": {command: [pytest, -x]}
            "09": {retries: 0}
        """,
    )
    assert set(config.tasks) == {"7", "7.2", "9"}
    assert config.tasks["7"] == TaskOptions(
        command="make test",
        timeout_seconds=600,
        retries=2,
        resources={"db": 1},
        cwd="backend",
        env={"CI": "1", "RATIO": "0.5", "NAME": "ptx"},
        estimate_seconds=0,
    )
    assert config.tasks["7.2"].command == ("pytest", "-x")
    assert config.tasks["9"].retries == 0
    assert config.tasks["7.2"].timeout_seconds is None


def test_anchors_and_merge_keys_are_allowed(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        parallel_execution:
          tasks:
            1: &slow {timeout_seconds: 900, retries: 1}
            2: {<<: *slow, retries: 3}
        """,
    )
    assert (config.tasks["1"].retries, config.tasks["2"].retries) == (1, 3)
    assert config.tasks["2"].timeout_seconds == 900


# --- values that are refused, with their exact messages --------------------------------------


def _problem(key: str, message: str) -> str:
    return f"{WHERE}: parallel_execution.{key}: {message}"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("enabled", '"yes"', 'must be true or false, got "yes"'),
        ("enabled", "1", "must be true or false, got 1"),
        ("max_concurrency", "0", "must be a positive integer, got 0"),
        ("max_concurrency", "true", "must be a positive integer, got true"),
        ("max_concurrency", "2.5", "must be a positive integer, got 2.5"),
        ("max_concurrency", '"4"', 'must be a positive integer, got "4"'),
        ("safety_thresholds.max_failure_rate", "1.5", "must be a number from 0 to 1, got 1.5"),
        (
            "safety_thresholds.max_resource_utilization",
            "-0.1",
            "must be a number from 0 to 1, got -0.1",
        ),
        ("safety_thresholds.max_failure_rate", ".nan", "must be a number from 0 to 1, got nan"),
        ("safety_thresholds.timeout_multiplier", "0", "must be a number > 0, got 0"),
        ("safety_thresholds.timeout_multiplier", ".inf", "must be a number > 0, got inf"),
        ("circuit_breaker.failure_threshold", "0", "must be a positive integer, got 0"),
        ("circuit_breaker.timeout_seconds", "null", "must be a number > 0, got null"),
        ("circuit_breaker.half_open_timeout_seconds", "[]", "must be a number > 0, got a list"),
        ("resource_limits.max_concurrent_tasks", "0", "must be a positive integer, got 0"),
        (
            "resource_limits.cpu_per_task",
            '"lots"',
            'must be a number of cores > 0 such as 0.5, "0.5" or "500m", got "lots"',
        ),
        (
            "resource_limits.cpu_per_task",
            '"0m"',
            'must be a number of cores > 0 such as 0.5, "0.5" or "500m", got "0m"',
        ),
        (
            "resource_limits.memory_per_task",
            '"512MB"',
            'must be a byte count > 0 or a quantity such as "512Mi" or "2G", got "512MB"',
        ),
        (
            "resource_limits.memory_per_task",
            "0",
            'must be a byte count > 0 or a quantity such as "512Mi" or "2G", got 0',
        ),
        ("monitoring.metrics_enabled", "null", "must be true or false, got null"),
        ("isolation", "git", 'must be one of none, worktree, got "git"'),
        ("workspace.copy", ".env", 'must be a list of glob patterns, got ".env"'),
        ("workspace.refuse_dirty", "1", "must be true or false, got 1"),
        ("integration.strategy", "rebase", 'must be one of merge, squash, got "rebase"'),
        (
            "integration.task_branch",
            "ptx/task",
            'must be a branch name template containing {id}, got "ptx/task"',
        ),
        (
            "integration.branch",
            "ptx/{tag}",
            'must be a branch name template containing {run}, got "ptx/{tag}"',
        ),
        (
            "command",
            '""',
            'must be a command string or a non-empty list of strings, got ""',
        ),
        (
            "command",
            "[]",
            "must be a command string or a non-empty list of strings, got a list",
        ),
        (
            "command",
            "[echo, 3]",
            "must be a command string or a non-empty list of strings, got a list",
        ),
        (
            "command",
            '"echo\\0"',
            'must be a command string or a non-empty list of strings, got "echo\\u0000"',
        ),
        (
            "command",
            "{run: x}",
            "must be a command string or a non-empty list of strings, got a mapping",
        ),
        ("default_timeout_seconds", "-5", "must be a number > 0, got -5"),
        ("kill_grace_seconds", "0", "must be a number > 0, got 0"),
        ("retries", "-1", "must be an integer >= 0, got -1"),
        ("retries", "false", "must be an integer >= 0, got false"),
        ("retry_backoff_seconds", "-1", "must be a number >= 0, got -1"),
        ("failure_policy", "fail_fast", 'must be one of continue, fail-fast, got "fail_fast"'),
        ("satisfied_statuses", "done", 'must be a list of statuses, got "done"'),
        ("update_status", '"no"', 'must be true or false, got "no"'),
        ("resources", "[db]", "must be a mapping, got a list"),
        ("tasks", "[1, 2]", "must be a mapping of task ids to options, got a list"),
        (
            "started",
            "2024-01-01",
            "unknown key (allowed: "
            + ", ".join(sorted([f.name for f in dataclasses.fields(Config) if f.name != "source"]))
            + ")",
        ),
    ],
)
def test_a_wrong_value_is_named_by_its_key_path(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    assert problems(tmp_path, setting(key, value)) == [_problem(key, message)]


def test_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, setting("monitoring", "true")) == [
        _problem("monitoring", "must be a mapping, got true")
    ]


def test_entries_of_lists_and_mappings_are_named(tmp_path: Path) -> None:
    body = """\
        parallel_execution:
          satisfied_statuses: [done, finished, 3]
          resources: {db: 0, "bad name": 1}
          tasks:
            "7":
              resources: {db: -1}
              env: {OK: x, FLAG: true, "A=B": y}
        """
    known = "blocked, cancelled, completed, deferred, done, in-progress, pending, review"
    assert problems(tmp_path, body) == [
        _problem("satisfied_statuses[1]", f'must be a known status ({known}), got "finished"'),
        _problem("satisfied_statuses[2]", f"must be a known status ({known}), got 3"),
        _problem(
            'resources."bad name"',
            'resource names must match [A-Za-z_][A-Za-z0-9_.-]*, got "bad name"',
        ),
        _problem("resources.db", "must be a positive integer, got 0"),
        _problem("tasks.7.resources.db", "must be a positive integer, got -1"),
        _problem('tasks.7.env."A=B"', "variable names must be strings without '=', got \"A=B\""),
        _problem("tasks.7.env.FLAG", "must be a string or a number, got true"),
    ]


def test_bad_task_ids_and_options(tmp_path: Path) -> None:
    body = """\
        parallel_execution:
          tasks:
            7.2: {}
            abc: {}
            3: {comand: x}
            "03": {}
            4: {timeout_seconds: 0, cwd: ""}
            5: run it
        """
    assert problems(tmp_path, body) == [
        _problem(
            'tasks."7.2"', 'must be a task id such as 7 or "7.2" (quote subtask ids), got 7.2'
        ),
        _problem(
            "tasks.abc", 'must be a task id such as 7 or "7.2" (quote subtask ids), got "abc"'
        ),
        _problem("tasks.3.comand", "unknown key (did you mean 'command'?)"),
        _problem("tasks.03", "task 3 appears twice"),
        _problem("tasks.4.timeout_seconds", "must be a number > 0, got 0"),
        _problem("tasks.4.cwd", 'must be a non-empty string, got ""'),
        _problem("tasks.5", 'must be a mapping, got "run it"'),
    ]


def test_unknown_key_suggests_the_likely_one(tmp_path: Path) -> None:
    body = setting("max_concurency", "3") + "  circuit_breaker: {failure_treshold: 2}\n"
    assert problems(tmp_path, body) == [
        _problem("max_concurency", "unknown key (did you mean 'max_concurrency'?)"),
        _problem(
            "circuit_breaker.failure_treshold", "unknown key (did you mean 'failure_threshold'?)"
        ),
    ]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    body = """\
        parallel_execution:
          max_concurrency: 0
          retries: many
          safety_thresholds: {max_failure_rate: 2}
          tasks: {"1": {retries: -1}}
        """
    assert problems(tmp_path, body) == [
        _problem("max_concurrency", "must be a positive integer, got 0"),
        _problem("retries", 'must be an integer >= 0, got "many"'),
        _problem("safety_thresholds.max_failure_rate", "must be a number from 0 to 1, got 2"),
        _problem("tasks.1.retries", "must be an integer >= 0, got -1"),
    ]


def test_a_root_without_the_section_names_its_keys(tmp_path: Path) -> None:
    assert problems(tmp_path, "max_concurrency: 4\nparallel-execution: {}\n") == [
        f"{WHERE}: max_concurrency: unknown key (allowed: parallel_execution)",
        f"{WHERE}: parallel-execution: unknown key (did you mean 'parallel_execution'?)",
    ]


@pytest.mark.parametrize(
    ("body", "got"), [("- a\n- b\n", "a list"), ("just text\n", '"just text"')]
)
def test_a_root_that_is_not_a_mapping(tmp_path: Path, body: str, got: str) -> None:
    assert problems(tmp_path, body) == [
        f"{WHERE}: must be a mapping with a 'parallel_execution' key, got {got}"
    ]


# --- broken files ----------------------------------------------------------------------------


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    body = "parallel_execution:\n  retries: 1\n  command: [unclosed\n"
    [line] = problems(tmp_path, body)
    assert line.startswith(f"{WHERE}:4:1: invalid YAML: ")


def test_a_bad_indent_is_located(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "parallel_execution:\n  retries: 1\n   bad: 2\n")
    # libyaml and pure-Python PyYAML word the end of this message differently
    assert line.startswith(f"{WHERE}:3:7: invalid YAML: mapping values are not allowed")


def test_several_documents_are_refused(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "parallel_execution: {}\n---\nparallel_execution: {}\n")
    assert line == (
        f"{WHERE}:2:1: invalid YAML: "
        "expected a single document in the stream, but found another document"
    )


def test_an_impossible_date_is_a_config_error(tmp_path: Path) -> None:
    assert problems(tmp_path, setting("retries", "2024-13-45")) == [
        f"{WHERE}: invalid YAML: month must be in 1..12"
    ]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("!!bool maybe", "'maybe'"),
        ("!!timestamp x", "'NoneType' object has no attribute 'groupdict'"),
        ("!!int x", "invalid literal for int() with base 10: 'x'"),
        ("!!float x", "could not convert string to float: 'x'"),
    ],
)
def test_tagged_nonsense_is_a_config_error(tmp_path: Path, value: str, error: str) -> None:
    assert problems(tmp_path, setting("retries", value)) == [f"{WHERE}: invalid YAML: {error}"]


def test_python_tags_are_refused(tmp_path: Path) -> None:
    [line] = problems(tmp_path, setting("command", "!!python/object/apply:os.system [echo hi]"))
    assert line.startswith(f"{WHERE}:2:12: invalid YAML: could not determine a constructor")


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    path.write_bytes(b"parallel_execution:\n  command: \xff\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(at byte offset 31\)"):
        load_config(None, root=tmp_path, environ={})


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / DEFAULT_PATH).mkdir(parents=True)
    with pytest.raises(ConfigError, match="cannot read: a directory, not a regular file"):
        load_config(None, root=tmp_path, environ={})


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    path.write_text("# padding\n" * 200_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="larger than 1000000 bytes"):
        load_config(None, root=tmp_path, environ={})


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    body = "\n".join(levels) + "\nparallel_execution: {command: *a9}\n"
    started = time.monotonic()
    assert problems(tmp_path, body) == [
        f"{WHERE}: more than 100000 values once aliases are expanded"
    ]
    assert time.monotonic() - started < 10  # guards against a hang, not a speed test


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    body = "parallel_execution: {command: " + "[" * 500 + "]" * 500 + "}\n"
    assert problems(tmp_path, body) == [f"{WHERE}: nested deeper than 32 levels"]


# --- where the config comes from, and the environment ----------------------------------------


def test_an_explicit_file_wins_and_must_exist(tmp_path: Path) -> None:
    write_config(tmp_path, setting("retries", "1"))
    other = tmp_path / "other.yaml"
    other.write_text(setting("retries", "2"), encoding="utf-8")
    environ = {"PTX_CONFIG": str(tmp_path / DEFAULT_PATH)}
    config = load_config(other, root=tmp_path, environ=environ)
    assert (config.retries, config.source) == (2, other)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, root=tmp_path, environ={})
    assert caught.value.problems == [f"{missing}: config file not found"]


def test_ptx_config_names_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, setting("retries", "1"))
    other = tmp_path / "elsewhere.yaml"
    other.write_text(setting("retries", "3"), encoding="utf-8")
    config = load_config(None, root=tmp_path, environ={"PTX_CONFIG": str(other)})
    assert (config.retries, config.source) == (3, other)
    with pytest.raises(ConfigError) as caught:
        load_config(None, root=tmp_path, environ={"PTX_CONFIG": str(tmp_path / "nope.yaml")})
    assert caught.value.problems == [f"PTX_CONFIG: config file not found: {tmp_path / 'nope.yaml'}"]


def test_a_file_outside_the_root_is_named_as_given(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    other = tmp_path / "shared.yaml"
    other.write_text(setting("retries", "x"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(other, root=root, environ={})
    assert caught.value.problems == [
        f'{other}: parallel_execution.retries: must be an integer >= 0, got "x"'
    ]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    body = """\
        parallel_execution:
          max_concurrency: 4
          default_timeout_seconds: 10
          retries: 1
          failure_policy: fail-fast
          update_status: true
          command: from-file
        """
    assert load(tmp_path, body).max_concurrency == 4
    config = load(
        tmp_path,
        body,
        PTX_JOBS="6",
        PTX_TIMEOUT="2.5",
        PTX_RETRIES="0",
        PTX_FAILURE_POLICY="continue",
        PTX_UPDATE_STATUS="No",
        PTX_COMMAND="echo {id}",
    )
    assert (config.max_concurrency, config.default_timeout_seconds, config.retries) == (6, 2.5, 0)
    assert (config.failure_policy, config.update_status, config.command) == (
        "continue",
        False,
        "echo {id}",
    )


def test_environment_applies_without_a_file(tmp_path: Path) -> None:
    config = load_config(None, root=tmp_path, environ={"PTX_UPDATE_STATUS": "1", "PTX_JOBS": "2"})
    assert (config.update_status, config.max_concurrency, config.source) == (True, 2, None)


def test_empty_environment_variables_are_ignored(tmp_path: Path) -> None:
    config = load(tmp_path, setting("max_concurrency", "4"), PTX_JOBS="", PTX_TIMEOUT=" ")
    assert (config.max_concurrency, config.default_timeout_seconds) == (4, None)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PTX_JOBS", "x", 'must be a positive integer, got "x"'),
        ("PTX_JOBS", "0", 'must be a positive integer, got "0"'),
        ("PTX_JOBS", "-2", 'must be a positive integer, got "-2"'),
        ("PTX_JOBS", "1.5", 'must be a positive integer, got "1.5"'),
        ("PTX_TIMEOUT", "soon", 'must be a number > 0, got "soon"'),
        ("PTX_TIMEOUT", "0", 'must be a number > 0, got "0"'),
        ("PTX_TIMEOUT", "nan", 'must be a number > 0, got "nan"'),
        ("PTX_RETRIES", "-1", 'must be an integer >= 0, got "-1"'),
        ("PTX_FAILURE_POLICY", "stop", 'must be one of continue, fail-fast, got "stop"'),
        ("PTX_UPDATE_STATUS", "maybe", 'must be one of 1, 0, true, false, yes, no, got "maybe"'),
    ],
)
def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, root=tmp_path, environ={name: value})
    assert caught.value.problems == [f"{name}: {message}"]


def test_file_and_environment_problems_are_reported_together(tmp_path: Path) -> None:
    assert problems(tmp_path, setting("retries", "-1"), PTX_JOBS="none") == [
        _problem("retries", "must be an integer >= 0, got -1"),
        'PTX_JOBS: must be a positive integer, got "none"',
    ]


# --- anything YAML can hold ------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        *(f.name for f in dataclasses.fields(Config)),
        "cpu_per_task",
        "memory_per_task",
        "max_failure_rate",
        "failure_threshold",
        "metrics_enabled",
        "command",
        "env",
        "timeout_seconds",
        "7",
        "7.2",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec="utf-8"), max_size=12)
    | st.sampled_from(["500m", "512Mi", "done", "fail-fast", "1.5", "0"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(KEYS | st.integers() | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(document=st.dictionaries(KEYS, VALUES, max_size=5) | VALUES, nest=st.booleans())
def test_any_yaml_raises_nothing_but_config_error(document: object, nest: bool) -> None:
    content = {"parallel_execution": document} if nest else document
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ptx.yaml"
        path.write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
        found: list[str] = []
        try:
            assert_sound(load_config(path, root=Path(directory), environ={}))
        except ConfigError as error:
            found = error.problems or ["(empty ConfigError)"]
    assert all(line.startswith("ptx.yaml") for line in found)


def assert_sound(config: Config) -> None:
    """What every accepted config guarantees to the modules that read it."""
    assert isinstance(config.enabled, bool)
    assert isinstance(config.max_concurrency, int)
    assert config.max_concurrency >= 1
    assert 0 <= config.safety_thresholds.max_failure_rate <= 1
    assert config.resource_limits.cpu_per_task > 0
    assert config.resource_limits.memory_per_task > 0
    assert config.command is None or isinstance(config.command, str | tuple)
    assert config.satisfied_statuses <= KNOWN_STATUSES
    assert config.failure_policy in {"continue", "fail-fast"}
    assert all(isinstance(units, int) and units >= 1 for units in config.resources.values())
    for task_id, options in config.tasks.items():
        assert all(part.isdigit() for part in task_id.split("."))
        assert isinstance(options, TaskOptions)
        assert all(isinstance(value, str) for value in options.env.values())
