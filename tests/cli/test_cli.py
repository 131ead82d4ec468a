"""The validate and plan commands through Typer's runner, and `python -m ptx` as a process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from builders import CORPUS, REPO, SCRIPTS
from projects import ptx as run_ptx
from typer.testing import CliRunner

from ptx.cli.app import app, main

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

DEMO_PROJECT = REPO / "examples" / "demo"
CORPUS_FILES = sorted(CORPUS.glob("*__*.json"))
BROKEN = {"AlexCodeForge__cproject.json", "0xfauzi__testcraft.json"}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the bundled example, so no history from earlier demo runs leaks in."""
    shutil.copytree(DEMO_PROJECT / ".taskmaster", tmp_path / ".taskmaster")
    return tmp_path / ".taskmaster" / "tasks" / "tasks.json"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _plan_json(*args: str) -> Any:
    """`ptx plan ARGS`, which must succeed, read as JSON."""
    code, out, err = invoke("plan", *args)
    assert code == 0, err
    return json.loads(out)


def test_corpus_is_present() -> None:
    assert len(CORPUS_FILES) == 30


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.stem)
def test_every_corpus_file_validates_as_expected(path: Path) -> None:
    code, out, err = invoke("validate", "-f", str(path), "--all-tags")
    assert code == (1 if path.name in BROKEN else 0), out + err
    assert "Traceback" not in out + err


def test_the_corpus_cycle_is_reported_as_a_path() -> None:
    code, out, _ = invoke("validate", "-f", str(CORPUS / "AlexCodeForge__cproject.json"))
    assert code == 1
    errors = [line for line in out.splitlines() if ": error " in line]
    assert len(errors) == 1
    assert "error PTX101: dependency cycle: 5 -> 16 -> 5 (remove" in errors[0]


def test_the_comma_joined_dependency_is_reported_exactly() -> None:
    code, out, _ = invoke("validate", "-f", str(CORPUS / "0xfauzi__testcraft.json"))
    assert code == 1
    # The line names the subtask once: the message does not repeat it.
    assert 'subtask 29.4: error PTX106: malformed dependency "29.1,29.2,29.3"' in out
    assert all(line.count("29.4") <= 1 for line in out.splitlines())
    assert all("PTX106" in line for line in out.splitlines() if ": error " in line)


def test_validate_json_counts_findings() -> None:
    code, out, _ = invoke(
        "validate", "-f", str(CORPUS / "0xfauzi__testcraft.json"), "--format", "json"
    )
    document = json.loads(out)
    assert code == 1
    assert document["errors"] == 3
    assert document["tags"] == ["master"]
    assert {finding["code"] for finding in document["findings"]} == {"PTX106"}
    assert document["findings"][0]["task"] == "29.4"


def test_validate_github_prints_annotations() -> None:
    code, out, _ = invoke(
        "validate", "-f", str(CORPUS / "AlexCodeForge__cproject.json"), "--format", "github"
    )
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("::error file=")
    assert "::dependency cycle: 5 -> 16 -> 5" in lines[0]  # the data part stays raw
    assert lines[1].startswith("::warning file=")


def test_validate_github_escapes_colons_and_commas_in_properties(tmp_path: Path) -> None:
    path = tmp_path / "a:b,c.json"  # in the file= property, ':' and ',' would end the value
    shutil.copyfile(CORPUS / "AlexCodeForge__cproject.json", path)
    code, out, _ = invoke("validate", "-f", str(path), "--format", "github")
    assert code == 1
    properties, _, message = out.splitlines()[0][len("::error ") :].partition("::")
    assert "a%3Ab%2Cc.json,title=PTX101" in properties
    assert message.startswith("dependency cycle: 5 -> 16 -> 5")


def test_strict_turns_warnings_into_failure() -> None:
    path = str(CORPUS / "309dot__309agnet.json")
    assert invoke("validate", "-f", path)[0] == 0
    assert invoke("validate", "-f", path, "--strict")[0] == 1


def test_all_tags_checks_every_tag() -> None:
    code, out, err = invoke(
        "validate", "-f", str(CORPUS / "Alterya__agents.json"), "--all-tags", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["tags"] == [
        "master",
        "agent-wars",
        "agent-wars-frontend",
        "agent-wars-backend",
    ]


def test_a_missing_tag_lists_the_tags_and_exits_2() -> None:
    code, out, err = invoke("plan", "-f", str(CORPUS / "5dlabs__toolman.json"), "--tag", "nope")
    assert code == 2
    assert out == ""
    assert "tag 'nope' not found" in err
    assert "master, verification" in err
    assert len(err.strip().splitlines()) == 1


def test_invalid_json_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.json"
    bad.write_text('{"tasks": [\n  {"id": 1,}\n]}')
    code, out, err = invoke("validate", "-f", str(bad))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "tasks.json:2:12: invalid JSON" in err
    assert "Traceback" not in err


def test_bad_config_is_exit_2_with_the_key_path(tmp_path: Path, demo: Path) -> None:
    config = tmp_path / "ptx.yaml"
    config.write_text("parallel_execution:\n  max_concurency: 4\n")
    code, _, err = invoke("validate", "-f", str(demo), "-c", str(config))
    assert code == 2
    assert "parallel_execution.max_concurency: unknown key" in err
    assert "max_concurrency" in err


def test_no_tasks_file_found_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("plan")
    assert code == 2
    assert "no tasks.json found" in err


def test_plan_json_of_the_demo(demo: Path) -> None:
    code, out, _ = invoke("plan", "-f", str(demo), "-j", "4", "--json")
    plan = json.loads(out)
    assert code == 0
    assert plan["tag"] == "master"
    assert plan["jobs"] == 4
    assert plan["groups"] == [["2"], ["3", "4", "5"], ["6", "7", "8", "9"], ["10", "11"], ["12"]]
    assert plan["critical_path"] == {
        "tasks": ["2", "3", "6", "10", "12"],
        "seconds": 7.0,
        "steps": 5,
    }
    assert plan["predicted"]["makespan_seconds"] == 7.0
    assert plan["predicted"]["speedup"] == 2.0
    assert plan["blocked"] == [{"id": "13", "reason": "status is deferred"}]


def test_plan_all_ignores_statuses(demo: Path) -> None:
    plan = _plan_json("-f", str(demo), "--all", "--format", "json")
    assert plan["groups"][0] == ["1"]
    assert "13" in {unit for group in plan["groups"] for unit in group}
    assert plan["blocked"] == []


def test_plan_subtasks_as_units(demo: Path) -> None:
    groups = _plan_json("-f", str(demo), "--subtasks", "--json")["groups"]
    where = {unit: number for number, group in enumerate(groups) for unit in group}
    assert "7" not in where
    assert where["7.1"] < where["7.2"] < where["10"]
    assert where["3"] < where["7.1"]  # a subtask waits for what its parent depends on


def test_plan_mermaid_and_dot_carry_every_edge(demo: Path) -> None:
    mermaid_code, mermaid, _ = invoke("plan", "-f", str(demo), "--format", "mermaid")
    dot_code, dot, _ = invoke("plan", "-f", str(demo), "--format", "dot")
    assert (mermaid_code, dot_code) == (0, 0)
    assert mermaid.startswith("flowchart LR")
    assert "t3 --> t6" in mermaid
    assert mermaid.count("-->") == dot.count("->") == 15
    assert dot.startswith("digraph ptx {")
    assert '"3" -> "6";' in dot


def test_plan_text_names_the_critical_path(demo: Path) -> None:
    code, out, _ = invoke("plan", "-f", str(demo), "-j", "4")
    assert code == 0
    assert "critical path: 2 -> 3 -> 6 -> 10 -> 12 (7.0 s, 5 steps)" in out
    assert "blocked 13: status is deferred" in out


def test_markup_in_titles_stays_literal(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(
        json.dumps({"tasks": [{"id": 1, "title": "[bold]x[/bold]", "dependencies": []}]})
    )
    code, out, _ = invoke("plan", "-f", str(path))
    assert code == 0
    assert "[bold]x[/bold]" in out


def test_main_returns_exit_codes() -> None:
    assert main(["--version"]) == 0
    assert main(["validate", "--no-such-option"]) == 2


def test_python_dash_m_runs_as_a_process() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ptx",
            "validate",
            "-f",
            str(CORPUS / "AlexCodeForge__cproject.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "PTX101" in done.stdout
    assert "1 error" in done.stderr


def test_plan_uses_measured_history_once_tasks_have_run(demo: Path) -> None:
    root = demo.parents[2]
    tasks = json.loads(demo.read_text())
    for task in tasks["master"]["tasks"]:  # every command now takes ~0 s instead of its estimate
        task["metadata"]["ptx"]["command"] = "true"
    demo.write_text(json.dumps(tasks, indent=2))
    before = _plan_json("-f", str(demo), "--json")
    done = subprocess.run(
        [sys.executable, "-m", "ptx", "run", "-q"], cwd=root, capture_output=True, check=False
    )
    after = _plan_json("-f", str(demo), "--json")
    assert done.returncode == 0, done.stderr
    assert before["critical_path"]["seconds"] == 7.0  # from estimate_seconds
    assert after["critical_path"]["seconds"] < 1.0  # from the durations just measured
    assert (root / ".ptx" / "ptx.db").is_file()


def test_plan_uses_estimates_set_in_the_config(demo: Path) -> None:
    config = demo.parents[2] / "ptx.yaml"
    config.write_text("parallel_execution:\n  tasks:\n    '3': {estimate_seconds: 5}\n")
    before = _plan_json("-f", str(demo), "--json")
    after = _plan_json("-f", str(demo), "-c", str(config), "--json")
    assert before["critical_path"]["seconds"] == 7.0  # 2 -> 3 -> 6 -> 10 -> 12, 3 taking 2 s
    assert after["critical_path"]["seconds"] == 10.0  # the config's 5 s for task 3 wins


def test_plan_does_not_create_a_state_store(demo: Path) -> None:
    code, out, err = invoke("plan", "-f", str(demo))
    assert code == 0, err
    assert "critical path: " in out  # it planned, and still left no state behind
    assert not (demo.parents[2] / ".ptx").exists()


def test_validate_checks_resource_requests_made_in_the_config(demo: Path) -> None:
    config = demo.parents[2] / "ptx.yaml"
    config.write_text(
        "parallel_execution:\n"
        "  resources: {db: 1}\n"
        "  tasks:\n"
        "    '3': {resources: {db: 2}}\n"
        "    '99': {command: 'true'}\n"
    )
    code, out, _ = invoke("validate", "-f", str(demo), "-c", str(config))
    assert code == 1
    assert "task 3: error PTX122: requests 2 of 'db', whose capacity is 1" in out
    assert "warning PTX114: config tasks.99 names no task of tag 'master'" in out


# What each invocation must not import: start-up is paid by every task of a benchmark and every
# call from a script, so an option not given must not cost its modules.
_NEVER_PLAIN = (
    "yaml",
    "rich.live",
    "rich.table",
    "ptx.cli.live",
    "ptx.cli.follow",
    "ptx.cli.configview",
)
_NOT_WITHOUT_OUTPUTS = (
    "ptx.outputs.ci",
    "ptx.outputs.metrics",
    "ptx.outputs.trace",
    "prometheus_client",
    "dask",
)
_RUN_MACHINERY = (
    "ptx.run.workflow",
    "ptx.run.runner",
    "ptx.journal.store",
    "ptx.core.events",
    "ptx.outputs.report",
)
# A command's module is imported only for that command (cli/app.py: COMMANDS).
_OTHER_COMMANDS = (
    "ptx.cli.run",
    "ptx.cli.history",
    "ptx.cli.dashboard",
    "ptx.cli.config",
    "ptx.cli.clean",
)


@pytest.mark.parametrize(
    ("command", "unwanted"),
    [
        (
            ["run", "-q", "-f", "tasks.json"],
            (*_NEVER_PLAIN, *_NOT_WITHOUT_OUTPUTS, "ptx.outputs.export"),
        ),
        (
            ["validate", "-f", "tasks.json"],
            (
                *_NEVER_PLAIN,
                *_NOT_WITHOUT_OUTPUTS,
                *_RUN_MACHINERY,
                *_OTHER_COMMANDS,
                "rich",  # its lines are plain off a terminal: written without Rich
                "ptx.cli.render",
                "hashlib",
                "tempfile",
            ),
        ),
        (
            ["--version"],
            (
                *_NEVER_PLAIN,
                *_NOT_WITHOUT_OUTPUTS,
                *_RUN_MACHINERY,
                *_OTHER_COMMANDS,
                "ptx.outputs.export",
                "ptx.cli.check",
                "ptx.cli.ui",
                "ptx.taskmaster",
                "ptx.graph",
                "rich",
            ),
        ),
    ],
    ids=["run", "validate", "version"],
)
def test_an_invocation_imports_only_what_it_needs(
    tmp_path: Path, command: list[str], unwanted: tuple[str, ...]
) -> None:
    task = {"id": 1, "title": "t", "dependencies": [], "metadata": {"ptx": {"command": ["true"]}}}
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": [task]}))
    loaded = tmp_path / "modules.json"
    # No config file, outputs or GitHub step summary from the environment: a plain invocation.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PTX_") and key != "GITHUB_STEP_SUMMARY"
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "ptx_imports.py"), str(loaded), *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=True,
    )
    code, modules = json.loads(loaded.read_text())
    assert code == 0, done.stderr
    packages = {name.split(".")[0] for name in modules}
    assert [name for name in unwanted if name in modules or name in packages] == []


@pytest.mark.parametrize("force_color", [None, "1"])
def test_validate_styles_its_lines_only_where_rich_would(
    tmp_path: Path, force_color: str | None
) -> None:
    task = {"id": 1, "title": "t", "dependencies": [], "metadata": {"ptx": {"command": ["true"]}}}
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": [task]}))
    loaded = tmp_path / "modules.json"
    env = {
        key: value for key, value in os.environ.items() if key not in {"NO_COLOR", "FORCE_COLOR"}
    }
    if force_color is not None:
        env["FORCE_COLOR"] = force_color  # Rich styles what it writes to a pipe then
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "ptx_imports.py"),
            str(loaded),
            "validate",
            "-f",
            "tasks.json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    code, modules = json.loads(loaded.read_text())
    assert code == 0
    assert "0 errors, 0 warnings in 1 task" in done.stderr
    assert ("\x1b[" in done.stderr) == (force_color is not None)
    assert ("rich.console" in modules) == (force_color is not None)
    if force_color is None:
        assert done.stderr == "0 errors, 0 warnings in 1 task\n"


def test_a_command_is_listed_and_suggested_without_being_imported_first() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    names = ["validate", "plan", "run", "report", "runs", "dashboard", "config", "clean"]
    places = [out.find(f"\n  {name} ") for name in names]
    assert -1 not in places
    assert places == sorted(places)
    code, _, err = invoke("valdate")
    assert code == 2
    assert "No such command 'valdate'. Did you mean 'validate'?" in err


def test_an_unknown_executor_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    done = run_ptx(tmp_path, "run", "--executor", "ray")  # no tasks.json here either
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "ptx: error: unknown executor 'ray': use local or dask\n"


def _console(tmp_path: Path, before: Sequence[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ptx.cli.app.console()` in a real process with `args`, after the set-up `before` names
    (tests/scripts/ptx_console.py)."""
    # Buffered as for a user: the exit must flush what is still in the buffers.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "ptx_console.py"), *before, "--", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_console_exit_flushes_output_and_runs_exit_handlers(tmp_path: Path) -> None:
    tasks = [
        {"id": n, "title": f"task {n}", "dependencies": [n - 1] if n > 1 else []}
        for n in range(1, 5001)
    ]
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    done = _console(tmp_path, ["--exit-handler"], "plan", "-f", "tasks.json", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 2**16  # more than a pipe holds: all of it must still arrive
    assert len(json.loads(done.stdout)["groups"]) == 5000  # a chain: one task per group
    assert "exit handler ran" in done.stderr


def test_the_console_exit_waits_for_a_thread_that_still_runs(tmp_path: Path) -> None:
    marker = tmp_path / "written-late"
    done = _console(tmp_path, ["--late-writer", str(marker)], "--version")
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "done"
    assert done.stdout.startswith("ptx ")


def test_the_console_exit_code_is_mains(tmp_path: Path) -> None:
    done = _console(tmp_path, [], "validate", "-f", "missing.json")
    assert done.returncode == 2
    assert "missing.json" in done.stderr


def test_the_console_exit_flushes_what_exit_handlers_print(tmp_path: Path) -> None:
    done = _console(tmp_path, ["--print-at-exit"], "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ptx ")
    assert done.stdout.endswith("printed at exit")
