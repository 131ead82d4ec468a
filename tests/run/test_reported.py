"""What attempts report back: PTX_RESULT files and recorded Claude Code results, read on their
own and through real runs of ptx (cost, tokens and sessions in the report and the journal)."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from builders import REPO
from projects import attempts, make_project, ptx, read_report, task

from ptx.run import reported

if TYPE_CHECKING:
    from pathlib import Path

CLAUDE = REPO / "tests" / "data" / "claude"


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_no_result_file_reports_nothing(tmp_path: Path) -> None:
    said = reported.read(str(tmp_path / "absent.json"), str(tmp_path / "absent.log"), None)
    assert said == reported.NOTHING
    assert said.empty


def test_a_result_file_gives_its_fields_and_keeps_unknown_ones(tmp_path: Path) -> None:
    document = {
        "cost_usd": 0.42,
        "tokens": {"input": 1200, "output": 800, "cache": 5},
        "session_id": "s-1",
        "summary": "done",
        "model": "m",
    }
    said = reported.read(write(tmp_path / "r.json", json.dumps(document)), "", None)
    assert (said.cost_usd, said.input_tokens, said.output_tokens) == (0.42, 1200, 800)
    assert (said.session_id, said.summary, said.warning) == ("s-1", "done", None)
    assert said.data == document


def test_malformed_result_files_are_warnings(tmp_path: Path) -> None:
    cases = {
        "not json": "is not JSON",
        "[1, 2]": "is not a JSON object",
        "x" * (reported.MAX_BYTES + 1): "is larger than",
    }
    for text, warning in cases.items():
        said = reported.read(write(tmp_path / "r.json", text), "", None)
        assert said.data is None
        assert warning in (said.warning or ""), text


def test_fields_of_the_wrong_type_are_left_out_and_named(tmp_path: Path) -> None:
    document = {"cost_usd": "cheap", "tokens": {"input": -1, "output": 7}, "session_id": 3}
    said = reported.read(write(tmp_path / "r.json", json.dumps(document)), "", None)
    assert (said.cost_usd, said.input_tokens, said.output_tokens, said.session_id) == (
        None,
        None,
        7,
        None,
    )
    assert said.warning == (
        "reported cost_usd must be a number, session_id must be a string,"
        " tokens.input must be a whole number >= 0: left out"
    )


def test_claude_json_reads_a_recorded_result(tmp_path: Path) -> None:
    for recorded in ("result.json", "with-stderr.log"):
        said = reported.read(str(tmp_path / "none"), str(CLAUDE / recorded), "claude-json")
        assert said.cost_usd == 0.4213
        assert said.input_tokens == 1200 + 3000 + 15000  # cache reads and writes are input too
        assert said.output_tokens == 800
        assert said.session_id == "4f1c2a9e-7b3d-4e8a-9c61-2d5e8f0a1b37"
        assert said.summary == "Implemented the parser and its tests; all 14 tests pass."
        assert said.data is not None
        assert said.data["num_turns"] == 7  # Claude's own fields are kept
        assert said.warning is None


def test_claude_json_without_a_result_is_a_warning_and_the_file_still_counts(
    tmp_path: Path,
) -> None:
    log = write(tmp_path / "out.log", "no json here\n")
    said = reported.read(str(tmp_path / "none"), log, "claude-json")
    assert said.warning == "its output holds no claude-json result (a JSON object)"
    result = write(tmp_path / "r.json", '{"cost_usd": 1}')
    said = reported.read(result, log, "claude-json")
    assert (said.cost_usd, said.warning) == (
        1.0,
        "its output holds no claude-json result (a JSON object)",
    )


def test_the_result_file_wins_over_the_claude_output_field_by_field(tmp_path: Path) -> None:
    result = write(tmp_path / "r.json", '{"cost_usd": 2.5, "summary": "mine"}')
    said = reported.read(result, str(CLAUDE / "result.json"), "claude-json")
    assert (said.cost_usd, said.summary, said.output_tokens) == (2.5, "mine", 800)


# --- through real runs -------------------------------------------------------------------------

REPORT = """printf '{"cost_usd": %s, "tokens": {"input": %s, "output": %s}, "session_id": "%s",\
 "extra": [1]}' > "$PTX_RESULT" """


def test_costs_and_tokens_reach_the_report_and_the_journal(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        [
            task(1, REPORT % (0.25, 100, 10, "a")),
            task(2, REPORT % (0.5, 200, 20, "b"), 1),
            task(3, "true", 2),
        ],
    )
    ran = ptx(root, "run", "--report-json", "r.json")
    assert ran.returncode == 0, ran.stderr
    report = read_report(root / "r.json")
    by_id = {entry["id"]: entry for entry in report["tasks"]}
    assert (by_id["1"]["cost_usd"], by_id["1"]["tokens"]) == (0.25, {"input": 100, "output": 10})
    assert (by_id["2"]["session_id"], by_id["3"]["cost_usd"], by_id["3"]["tokens"]) == (
        "b",
        None,
        None,
    )
    assert (report["cost_usd"], report["tokens"]) == (0.75, {"input": 300, "output": 30})
    assert "reported $0.75, 300 tokens in, 30 out" in ran.stdout
    assert "  1  $0.25, 100 tokens in, 10 out" in ran.stdout
    records = {record.task: record for record in attempts(root)}
    assert (records["2"].cost_usd, records["2"].input_tokens, records["2"].session_id) == (
        0.5,
        200,
        "b",
    )
    again = ptx(root, "report", "--json")
    assert again.stdout == (root / "r.json").read_text()


def test_a_malformed_result_file_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, 'echo nope > "$PTX_RESULT"')])
    ran = ptx(root, "run", "--report-json", "r.json")
    assert ran.returncode == 0, ran.stderr
    assert "task 1 attempt 1: its PTX_RESULT file is not JSON" in ran.stderr
    (entry,) = read_report(root / "r.json")["tasks"]
    assert entry["status"] == "succeeded"
    assert entry["warnings"][0].startswith("its PTX_RESULT file is not JSON")


def test_claude_json_tasks_report_what_claude_printed(tmp_path: Path) -> None:
    shutil.copy(CLAUDE / "with-stderr.log", tmp_path / "claude.out")
    root = make_project(
        tmp_path,
        [task(1, "cat claude.out", ptx_result="claude-json"), task(2, "cat claude.out")],
    )
    ran = ptx(root, "run", "--report-json", "r.json")
    assert ran.returncode == 0, ran.stderr
    by_id = {entry["id"]: entry for entry in read_report(root / "r.json")["tasks"]}
    assert by_id["1"]["cost_usd"] == 0.4213
    assert by_id["1"]["session_id"] == "4f1c2a9e-7b3d-4e8a-9c61-2d5e8f0a1b37"
    assert by_id["2"]["cost_usd"] is None  # only the task that says so is read
    everywhere = make_project(
        tmp_path / "all", [task(1, "cat ../claude.out")], result="claude-json"
    )
    ran = ptx(everywhere, "run", "--report-json", "r.json")
    assert read_report(everywhere / "r.json")["cost_usd"] == 0.4213


def test_a_bad_result_option_is_refused_before_anything_runs(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "touch ran")], result="claude")
    ran = ptx(root, "run")
    assert ran.returncode == 2
    assert "parallel_execution.result: must be one of claude-json" in ran.stderr
    assert not (root / "ran").exists()


def test_a_retry_gets_the_previous_attempts_session(tmp_path: Path) -> None:
    # The session id holds shell syntax: it reaches the command as data, never as code.
    first = """printf '{"session_id": "s 1; touch pwned"}' > "$PTX_RESULT"; exit 1"""
    second = 'printf "%s|%s" {session_id} "$PTX_PREVIOUS_SESSION_ID" > seen'
    command = f'if [ "$PTX_ATTEMPT" = 1 ]; then {first}; else {second}; fi'
    root = make_project(tmp_path, [task(1, command, ptx_retries=1)])
    ran = ptx(root, "run")
    assert ran.returncode == 0, ran.stderr
    assert (root / "seen").read_text() == "s 1; touch pwned|s 1; touch pwned"
    assert not (root / "pwned").exists()
