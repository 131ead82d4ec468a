"""Tests for a run's machine-readable outputs: JUnit XML, the Chrome trace, Prometheus metrics
(file and Pushgateway), the GitHub step summary and `ptx report --format` on past runs."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest
from projects import HANG_GUARD, attempts, clean_environment, make_project, read_report, task
from prometheus_client.parser import text_string_to_metric_families

from ptx.core.events import BreakerChanged, Degraded, RunResult, Status, TaskResult
from ptx.journal.schema import AttemptRecord
from ptx.outputs.trace import chrome_trace, worker_slots

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FAILING = "echo building; echo 'boom: \x1b[31mred\x1b[0m \x01 <&>' >&2; exit 3"


def run_ptx(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in clean_environment().items() if k != "GITHUB_STEP_SUMMARY"}
    return subprocess.run(
        [sys.executable, "-m", "ptx", *args],
        cwd=root,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


def failing_project(root: Path) -> Path:
    """1 and 4 succeed, 2 fails after a retry, 3 (after 2) is skipped."""
    return make_project(
        root,
        [
            task(1, "echo one"),
            task(2, FAILING, 1, ptx_retries=1),
            task(3, "true", 2),
            task(4, "sleep 0.2"),
        ],
    )


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client itself."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# --- JUnit XML ----------------------------------------------------------------------------------


def test_junit_counts_tests_failures_and_skips_with_the_log_tail(tmp_path: Path) -> None:
    root = failing_project(tmp_path)
    ran = run_ptx(root, "run", "-j", "2", "--junit", "out/junit.xml")
    assert ran.returncode == 1, ran.stderr
    suites = ET.parse(root / "out" / "junit.xml").getroot()  # noqa: S314 - our own file
    (suite,) = suites.findall("testsuite")
    counts = {key: suite.get(key) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "4", "failures": "1", "errors": "0", "skipped": "1"}
    assert suites.get("tests") == "4"
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["1: task 1", "2: task 2", "3: task 3", "4: task 4"]
    assert {case.get("classname") for case in cases.values()} == {"ptx.master"}
    assert float(cases["4: task 4"].get("time") or 0) >= 0.2
    failure = cases["2: task 2"].find("failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message")) == ("exit 3", "failed (exit 3)")
    # The log tail, without its ANSI colours and the control character XML cannot carry.
    assert failure.text is not None
    assert "building\nboom: red  <&>" in failure.text
    skipped = cases["3: task 3"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "dependency 2 failed"
    out = cases["1: task 1"].find("system-out")
    assert out is not None
    assert out.text == "one"
    assert cases["1: task 1"].find("failure") is None


# --- the Chrome trace ---------------------------------------------------------------------------


def test_the_trace_has_one_complete_event_per_attempt_timed_as_the_journal(
    tmp_path: Path,
) -> None:
    root = failing_project(tmp_path)
    ran = run_ptx(root, "run", "-j", "2", "--trace", "t.json", "--report-json", "r.json")
    assert ran.returncode == 1, ran.stderr
    events = json.loads((root / "t.json").read_text())["traceEvents"]
    started = read_report(root / "r.json")["started_at"]
    complete = [event for event in events if event["ph"] == "X"]
    records = attempts(root)
    assert [(r.task, r.attempt) for r in records].count(("2", 2)) == 1  # the retry is there
    assert len(complete) == len(records) == 4  # 1, 2 twice, 4; 3 never ran
    by_attempt = {(e["args"]["id"], e["args"]["attempt"]): e for e in complete}
    for record in records:
        event = by_attempt[record.task, record.attempt]
        assert record.ended_at is not None
        assert event["dur"] == pytest.approx((record.ended_at - record.started_at) * 1e6, abs=2)
        assert event["ts"] == pytest.approx((record.started_at - started) * 1e6, abs=1)
        assert event["args"]["status"] == record.status
        assert event["args"]["exit_code"] == record.exit_code
        assert event["name"] == f"{record.task}: task {record.task}"
    tracks = {event["tid"] for event in complete}
    assert tracks <= {1, 2}
    named = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert named == tracks
    for track in tracks:  # Perfetto refuses overlapping events on one track
        spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in complete if e["tid"] == track)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    running = [e["args"]["running"] for e in events if e["ph"] == "C"]
    assert max(running) <= 2
    assert running[-1] == 0


def record(task_id: str, attempt: int, start: float, end: float) -> AttemptRecord:
    return AttemptRecord(
        run_id="r",
        task=task_id,
        attempt=attempt,
        command_hash="h",
        pgid=None,
        pgid_create_time=None,
        started_at=start,
        ended_at=end,
        exit_code=0,
        status="succeeded",
        log_path="/dev/null",
    )


def test_the_trace_marks_the_fall_back_and_breaker_changes_as_instant_events() -> None:
    result = RunResult(
        run_id="r",
        status="failed",
        jobs=2,
        started_at=100.0,
        ended_at=110.0,
        tasks=(TaskResult(id="1", title="t", status=Status.SUCCEEDED, attempts=1),),
        dependencies={"1": ()},
        degraded=Degraded(reason="too many failures", at=104.0),
        breakers=(BreakerChanged(resource="db", state="open", reason="5 failures", at=103.5),),
    )
    events = json.loads(chrome_trace(result, [record("1", 1, 101.0, 102.0)]))["traceEvents"]
    instants = [(e["name"], e["ts"], e["args"]["reason"]) for e in events if e["ph"] == "i"]
    assert instants == [
        ("breaker db open", 3_500_000, "5 failures"),
        ("fell back to sequential, one task at a time", 4_000_000, "too many failures"),
    ]


def test_worker_slots_reuse_the_first_free_slot_and_never_overlap() -> None:
    intervals = [(0.0, 2.0), (0.0, 1.0), (1.0, 3.0), (2.0, 2.5), (2.0, 4.0), (3.0, 3.5)]
    assert worker_slots(intervals) == [1, 2, 2, 1, 3, 1]


# --- Prometheus ---------------------------------------------------------------------------------


def test_the_metrics_file_parses_and_carries_the_report_figures(tmp_path: Path) -> None:
    root = failing_project(tmp_path)
    ran = run_ptx(root, "run", "-j", "2", "--metrics-file", "m/ptx.prom", "--report-json", "r.json")
    assert ran.returncode == 1, ran.stderr
    values = metric_values((root / "m" / "ptx.prom").read_text())
    report = read_report(root / "r.json")
    for metric, key in (
        ("ptx_run_wall_seconds", "wall_seconds"),
        ("ptx_run_work_seconds", "work_seconds"),
        ("ptx_run_speedup", "speedup"),
        ("ptx_run_efficiency_ratio", "efficiency"),
        ("ptx_run_optimality_ratio", "optimality"),
    ):
        assert values[metric, ()] == pytest.approx(report[key], abs=6e-4), metric
    assert values["ptx_run_critical_path_seconds", ()] == pytest.approx(
        report["critical_path"]["seconds"], abs=6e-4
    )
    for status in Status:
        expected = sum(entry["status"] == status.value for entry in report["tasks"])
        assert values["ptx_tasks_total", (("status", status.value),)] == expected
    assert values["ptx_run_failure_ratio", ()] == pytest.approx(1 / 3)  # 3 ran, 1 failed
    assert values["ptx_task_duration_seconds_count", ()] == 3
    busy = sum((r.ended_at or 0) - r.started_at for r in attempts(root))
    utilization = busy / (report["wall_seconds"] * 2)
    assert values["ptx_run_utilization_ratio", ()] == pytest.approx(utilization, rel=0.01)
    assert values["ptx_run_info", (("run_id", report["run_id"]), ("status", "failed"))] == 1
    assert not list((root / "m").glob("*.prom.*"))  # the temporary file was renamed


def test_the_metrics_carry_reported_costs_tokens_and_flaky_tasks(tmp_path: Path) -> None:
    report = """printf '{"cost_usd": 0.5, "tokens": {"input": 10, "output": 4}}' > "$PTX_RESULT" """
    flaky = 'if [ "$PTX_ATTEMPT" = 1 ]; then exit 1; fi'
    root = make_project(tmp_path, [task(1, report), task(2, flaky, ptx_retries=1)])
    ran = run_ptx(root, "run", "--metrics-file", "m.prom")
    assert ran.returncode == 0, ran.stderr
    values = metric_values((root / "m.prom").read_text())
    assert values["ptx_run_cost_usd", ()] == 0.5
    assert values["ptx_run_tokens", (("kind", "input"),)] == 10
    assert values["ptx_run_tokens", (("kind", "output"),)] == 4
    assert values["ptx_task_cost_usd", (("task", "1"),)] == 0.5
    assert values["ptx_task_tokens", (("kind", "output"), ("task", "1"))] == 4
    assert ("ptx_task_cost_usd", (("task", "2"),)) not in values  # it reported nothing
    assert values["ptx_run_flaky_tasks", ()] == 1


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]]

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append((self.command, self.path, self.rfile.read(length).decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        """Quiet: pytest would show the access log as captured stderr."""


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """A stand-in Pushgateway on loopback that records each request; stopped after the test."""
    received: list[tuple[str, str, str]] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", received
        finally:
            server.shutdown()
            thread.join(HANG_GUARD)


def test_the_pushgateway_receives_the_same_metrics_as_the_file(
    tmp_path: Path, gateway: tuple[str, list[tuple[str, str, str]]]
) -> None:
    url, received = gateway
    root = make_project(tmp_path, [task(1, "true"), task(2, "true", 1)])
    ran = run_ptx(root, "run", "--pushgateway", url, "--metrics-file", "m.prom")
    assert ran.returncode == 0, ran.stderr
    ((method, path, body),) = received
    assert (method, path) == ("PUT", "/metrics/job/ptx")
    assert metric_values(body) == metric_values((root / "m.prom").read_text())
    assert metric_values(body)["ptx_tasks_total", (("status", "succeeded"),)] == 2


def test_an_output_that_fails_makes_a_good_run_exit_2_and_the_others_are_written(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = make_project(tmp_path, [task(1, "true")])
    ran = run_ptx(root, "run", "--pushgateway", f"http://127.0.0.1:{port}", "--junit", "j.xml")
    assert ran.returncode == 2
    assert f"ptx: error: cannot push metrics to http://127.0.0.1:{port}" in ran.stderr
    assert (root / "j.xml").is_file()


def test_metrics_without_prometheus_client_stop_before_anything_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker" / "prometheus_client"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not installed')\n")
    root = make_project(tmp_path / "p", [task(1, "touch ran")])
    path = os.pathsep.join(filter(None, [str(blocker.parent), os.environ.get("PYTHONPATH")]))
    ran = run_ptx(root, "run", "--metrics-file", "m.prom", env={"PYTHONPATH": path})
    assert ran.returncode == 2
    assert "pip install 'ptx[metrics]'" in ran.stderr
    assert not (root / "ran").exists()


# --- the GitHub step summary and `ptx report --format` -------------------------------------------


def test_the_step_summary_names_flaky_tasks_cost_and_the_budget(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    flaky = 'if [ "$PTX_ATTEMPT" = 1 ]; then exit 1; fi'
    cost = """printf '{"cost_usd": 2.5}' > "$PTX_RESULT" """
    tasks = [task(1, flaky, ptx_retries=1), task(2, cost, 1), task(3, "true", 2)]
    root = make_project(tmp_path / "p", tasks)
    ran = run_ptx(root, "run", "--max-cost", "2", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert ran.returncode == 1, ran.stderr
    text = summary.read_text()
    assert "| reported cost | $2.50 |" in text
    assert "| flaky (passed on a retry) | 1 |" in text
    assert "| budget | $2.00 reached: the rest not started |" in text


def test_the_github_step_summary_is_appended_with_the_failed_tasks(tmp_path: Path) -> None:
    root = failing_project(tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("# an earlier step\n")
    ran = run_ptx(root, "run", "-j", "2", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert ran.returncode == 1, ran.stderr
    text = summary.read_text()
    assert text.startswith("# an earlier step\n### ptx run `")
    assert "`: failed\n" in text
    assert "4 tasks on 2 workers: 2 succeeded, 1 failed, 1 skipped" in text
    assert "| speedup |" in text
    details = text[text.index("<details>") :]
    assert details.startswith("<details><summary><b>2: task 2</b>: failed (exit 3)</summary>")
    assert "building\nboom: red \x01 <&>\n```\n" in details
    assert details.count("<details>") == 1


def test_every_format_of_a_past_run_is_what_the_run_wrote(tmp_path: Path) -> None:
    root = failing_project(tmp_path)
    outputs = ("--junit", "j.xml", "--trace", "t.json", "--metrics-file", "m.prom")
    first = run_ptx(root, "run", "-j", "2", "--report-json", "r.json", *outputs)
    assert first.returncode == 1, first.stderr
    run_id = read_report(root / "r.json")["run_id"]
    assert run_ptx(root, "run", "-j", "2").returncode == 1  # now the first is not the last
    files = {"json": "r.json", "junit": "j.xml", "trace": "t.json", "metrics": "m.prom"}
    for output, name in files.items():
        again = run_ptx(root, "report", "--run", run_id, "--format", output)
        assert again.returncode == 0, again.stderr
        assert again.stdout == (root / name).read_text(), output
    assert run_ptx(root, "report", run_id, "--json").stdout == (root / "r.json").read_text()
    text = run_ptx(root, "report", run_id, "--format", "text")
    assert (text.returncode, text.stdout) == (0, first.stdout)
    latest = run_ptx(root, "report", "--format", "junit")
    assert latest.returncode == 0
    assert run_id not in latest.stdout


def test_two_different_runs_asked_for_is_a_usage_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    assert run_ptx(root, "run").returncode == 0
    both = run_ptx(root, "report", "a", "--run", "b")
    assert (both.returncode, both.stderr) == (2, "ptx: error: two runs asked for: a and --run b\n")
