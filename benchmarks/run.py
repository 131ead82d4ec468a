"""`make bench`: ptx side by side with its floors and peers, medians of repeated runs.

Cases:
  big-graph  validate and plan of a 100,000-task file (~250,000 edges) against a bare script
             that only does json.load + graphlib static_order on the same file.
  no-op      2,000 tasks running `true` at -j 2 against `make -j2` on the equivalent Makefile,
             and against GNU `parallel -j2` on the same 2,000 commands (skipped, with a note,
             where parallel is not installed).
  scheduling random DAGs of sleep tasks with mixed durations under make, ninja and ptx at -j 4,
             each makespan over the graph's lower bound (see dags.py).
  dask       per-task overhead of the Dask executor against the local one (dask_overhead.py).
  plan-text  `ptx plan` of a 10,000-task file as text (the table of groups) against JSON;
             the goal is text within 2x of JSON.
  isolation  per-task cost of --isolate on a 5,000-file / 50 MB repository against a shell
             script running the same git commands (isolation_overhead.py).
  dashboard  `ptx dashboard` over a journal of 200 runs of 100 tasks: time and file size
             (limits: 2 s, 5 MB; see dashboard_history.py).
  start-up   `ptx --version` and `ptx validate` of a 60-task file against
             `python -c "import typer"`; the goal is at most 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dags
import dashboard_history
import dask_overhead
import isolation_overhead

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PTX = Path(sys.executable).with_name("ptx")

FLOOR = """
import json, sys
from graphlib import TopologicalSorter
tasks = json.load(open(sys.argv[1]))["tasks"]
list(TopologicalSorter({t["id"]: t["dependencies"] for t in tasks}).static_order())
"""


def generate(path: Path, count: int, edges_per_task: float, command: list[str] | None) -> int:
    """A legacy-layout tasks.json whose dependencies point only backwards (acyclic)."""
    rng = random.Random(count)
    tasks, edges = [], 0
    for number in range(1, count + 1):
        fan = min(number - 1, rng.choice((1, 2, 3, 4)) if edges_per_task else 0)
        deps = sorted(rng.sample(range(max(1, number - 50), number), fan)) if fan else []
        edges += len(deps)
        task = {
            "id": number,
            "title": f"Task {number}",
            "description": "generated",
            "status": "pending",
            "dependencies": deps,
            "priority": "medium",
        }
        if command:
            task["metadata"] = {"ptx": {"command": command}}
        tasks.append(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tasks": tasks}, indent=2))
    return edges


# The least a Python program can do for the no-op case: graphlib order, posix_spawn, pidfd
# poll, two in flight; no journal, logs, report or checks. What ptx adds is measured from here.
SPAWN_FLOOR = """
import json, os, select, shutil, sys
from graphlib import TopologicalSorter
tasks = json.load(open(sys.argv[1]))["tasks"]
order = TopologicalSorter({t["id"]: t["dependencies"] for t in tasks})
order.prepare()
true, poller, running, ready = shutil.which("true"), select.poll(), {}, []
while order.is_active():
    ready.extend(order.get_ready())
    while ready and len(running) < 2:
        pid = os.posix_spawn(true, ["true"], os.environ, setsid=True)
        fd = os.pidfd_open(pid)
        poller.register(fd, select.POLLIN)
        running[fd] = (pid, ready.pop())
    for fd, _ in poller.poll():
        pid, task = running.pop(fd)
        poller.unregister(fd)
        os.waitpid(pid, 0)
        os.close(fd)
        order.done(task)
"""


# The same loop doing the per-task I/O ptx must do, in the plainest Python: a PTX_TASK_JSON
# file on tmpfs, an O_TMPFILE log, a journal row committed at each start and updated at each
# end (ptx's own schema and connection settings), the group probe. ptx's time above this is
# its own Python.
SPAWN_IO_FLOOR = """
import json, os, select, shutil, sqlite3, sys, tempfile, time
from graphlib import TopologicalSorter
from ptx.journal.schema import configure, ensure_schema
tasks = {str(t["id"]): t for t in json.load(open(sys.argv[1]))["tasks"]}
order = TopologicalSorter({i: [str(d) for d in t["dependencies"]] for i, t in tasks.items()})
order.prepare()
shutil.rmtree(".io-floor", ignore_errors=True)
os.makedirs(".io-floor/logs")
logs, scratch = os.path.abspath(".io-floor/logs"), tempfile.mkdtemp(dir="/dev/shm")
db = sqlite3.connect(".io-floor/ptx.db", isolation_level=None)
configure(db, busy_timeout_ms=5000)
ensure_schema(db)
db.execute("INSERT INTO runs (run_id, started_at, status, tag, jobs, tasks_file, argv,"
    " owner_pid, owner_create_time) VALUES ('r', 0, 'running', 'master', 2, '', '[]', 0, 0)")
poller, running, ready, ends = select.poll(), {}, [], False
flags, null = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC, (os.POSIX_SPAWN_OPEN, 0, os.devnull, 0, 0)
while order.is_active():
    ready.extend(order.get_ready())
    while ready and len(running) < 2:
        task = ready.pop()
        path = f"{scratch}/{task}.task.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.write(fd, (json.dumps(tasks[task]) + "\\n").encode())
        os.close(fd)
        env = {**os.environ, "PTX_TASK_ID": task, "PTX_TASK_TITLE": tasks[task]["title"],
            "PTX_TASK_JSON": path, "PTX_TAG": "master", "PTX_RUN_ID": "r", "PTX_ATTEMPT": "1"}
        log = os.open(logs, os.O_TMPFILE | flags, 0o644)
        actions = [(os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2), null]
        pid = os.posix_spawnp("true", ["true"], env, setsid=True, file_actions=actions)
        db.execute("INSERT INTO attempts (run_id, task, attempt, command_hash, started_at,"
            " status, log_path, pgid, pgid_create_time) VALUES ('r', ?, 1, 'h', ?, 'running', ?,"
            " ?, 0.0)", (task, time.time(), f"{logs}/{task}.log", pid))
        if ends:
            db.execute("COMMIT")
            ends = False
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
        running[pidfd] = (pid, task, log)
    for pidfd, _ in poller.poll():
        pid, task, log = running.pop(pidfd)
        poller.unregister(pidfd)
        os.waitpid(pid, 0)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            pass
        os.close(pidfd)
        os.fstat(log)
        os.close(log)
        if not ends:
            db.execute("BEGIN")
            ends = True
        db.execute("UPDATE attempts SET ended_at = ?, exit_code = 0, status = 'succeeded'"
            " WHERE run_id = 'r' AND task = ? AND attempt = 1", (time.time(), task))
        order.done(task)
if ends:
    db.execute("COMMIT")
db.close()
for name in os.listdir(scratch):
    os.unlink(os.path.join(scratch, name))
os.rmdir(scratch)
"""


# A fresh wrapper per measurement, so ru_maxrss is the peak of that one command alone.
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
wall = time.perf_counter() - start
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, code)
"""


ENV = dags.ENV  # commands run as a user's would: see there


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and the peak RSS in MB of one child command. The disk is synced first
    (like hyperfine's `--prepare sync`): a run must not pay for the writeback of the files
    the run before it left, e.g. the previous ptx run's 2,000 logs or the deleted old tree."""
    os.sync()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    wall, peak, code = done.stdout.split()
    if int(code) not in (0, 1):
        sys.exit(f"{argv} failed ({code})")
    return float(wall), float(peak)


def medians(cases: dict[str, list[str]], cwd: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """Rounds interleave the cases, so a noisy moment hurts all of them alike. One unmeasured
    round first: bytecode compiled, files in the page cache, as in a user's second run."""
    for argv in cases.values():
        timed(argv, cwd)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, argv in cases.items():
            runs[name].append(timed(argv, cwd))
    return {
        name: (statistics.median(r[0] for r in got), max(r[1] for r in got))
        for name, got in runs.items()
    }


def big_graph(repeat: int) -> list[str]:
    folder = OUT / "big"
    path = folder / "tasks.json"
    edges = generate(path, 100_000, 2.5, None)
    floor_script = folder / "floor.py"
    floor_script.write_text(FLOOR)
    rows = [f"100,000 tasks, {edges:,} edges, {path.stat().st_size / 1e6:.0f} MB file"]
    cases = {
        "floor (json.load + static_order)": [sys.executable, str(floor_script), str(path)],
        "ptx validate": [str(PTX), "validate", "-f", str(path)],
        "ptx plan --format json": [str(PTX), "plan", "-f", str(path), "--format", "json"],
    }
    results = medians(cases, folder, repeat)
    floor = results["floor (json.load + static_order)"][0]
    rows.extend(
        f"{name:36} median {wall:6.2f} s  ratio {wall / floor:4.2f}x  peak RSS {rss:5.0f} MB"
        for name, (wall, rss) in results.items()
    )
    return rows


def plan_text(repeat: int) -> list[str]:
    folder = OUT / "plan-text"
    path = folder / "tasks.json"
    edges = generate(path, 10_000, 2.5, None)
    results = medians(
        {
            "ptx plan --format json": [str(PTX), "plan", "-f", str(path), "--format", "json"],
            "ptx plan (text)": [str(PTX), "plan", "-f", str(path)],
        },
        folder,
        repeat,
    )
    json_wall = results["ptx plan --format json"][0]
    return [
        f"10,000 tasks, {edges:,} edges: plan as text against JSON (stdout not a terminal)",
        *(
            f"{name:36} median {wall:6.2f} s  ratio {wall / json_wall:4.2f}x"
            f"  peak RSS {rss:5.0f} MB"
            for name, (wall, rss) in results.items()
        ),
    ]


def no_op(repeat: int) -> list[str]:
    if shutil.which("make") is None:
        return ["no-op: make not found, skipped"]
    folder = OUT / "noop"
    shutil.rmtree(folder, ignore_errors=True)
    path = folder / "tasks.json"
    generate(path, 2000, 2.0, ["true"])
    tasks = json.loads(path.read_text())["tasks"]
    makefile = ["all: " + " ".join(f"t{task['id']}" for task in tasks), ".PHONY: all"]
    for task in tasks:
        deps = " ".join(f"t{dep}" for dep in task["dependencies"])
        makefile += [f"t{task['id']}: {deps}", "\t@true", f".PHONY: t{task['id']}"]
    (folder / "Makefile").write_text("\n".join(makefile) + "\n")
    floor_script = folder / "spawn_floor.py"
    floor_script.write_text(SPAWN_FLOOR)
    io_floor_script = folder / "spawn_io_floor.py"
    io_floor_script.write_text(SPAWN_IO_FLOOR)
    cases = {
        "make": ["make", "-s", "-j2"],
        "floor": [sys.executable, str(floor_script), str(path)],
        "io floor": [sys.executable, str(io_floor_script), str(path)],
        "ptx": [str(PTX), "run", "-f", str(path), "-j", "2", "-q"],
    }
    commands = folder / "commands.txt"  # one command a line: what parallel runs with no command
    commands.write_text("true\n" * len(tasks))
    if shutil.which("parallel") is not None:
        cases["parallel"] = ["parallel", "--will-cite", "-j2", "-a", str(commands)]
    results = medians(cases, folder, repeat)
    make_wall, floor_wall = results["make"][0], results["floor"][0]
    io_floor_wall = results["io floor"][0]
    ptx_wall, rss = results["ptx"]
    overhead = (ptx_wall - make_wall) / 2000 * 1000  # wall time ptx adds per task over make
    return [
        "2,000 no-op tasks (`true`), -j 2",
        f"{'make -j2':36} median {make_wall:6.2f} s",
        (
            f"{'python floor (posix_spawn loop)':36} median {floor_wall:6.2f} s  ratio "
            f"{floor_wall / make_wall:4.2f}x"
        ),
        (
            f"{'  + the I/O ptx does per task':36} median {io_floor_wall:6.2f} s  ratio "
            f"{io_floor_wall / make_wall:4.2f}x"
        ),
        (
            f"{'ptx run -j 2':36} median {ptx_wall:6.2f} s  ratio {ptx_wall / make_wall:4.2f}x"
            f"  peak RSS {rss:5.0f} MB  +{overhead:.2f} ms wall per task over make"
        ),
        (
            f"{'GNU parallel -j2 (same commands)':36} median {results['parallel'][0]:6.2f} s  "
            f"ratio {results['parallel'][0] / make_wall:4.2f}x"
            if "parallel" in results
            else "GNU parallel: not installed, row skipped (apt-get install parallel)"
        ),
    ]


def dashboard(repeat: int) -> list[str]:
    folder = OUT / "dashboard"
    tasks_file = dashboard_history.make_history(folder)
    runs = str(dashboard_history.RUNS)
    argv = [str(PTX), "dashboard", "-f", str(tasks_file), "--runs", runs, "-o", "d.html"]
    results = medians({"ptx dashboard": argv}, folder, repeat)
    wall, rss = results["ptx dashboard"]
    size = (folder / "d.html").stat().st_size
    over = [
        f"OVER the {name} limit"
        for name, value, limit in (
            ("time", wall, dashboard_history.TIME_LIMIT),
            ("size", size, dashboard_history.SIZE_LIMIT),
        )
        if value > limit
    ]
    return [
        f"{runs} runs of {dashboard_history.TASKS} tasks in the journal (limits 2 s, 5 MB)",
        f"{'ptx dashboard':36} median {wall:6.2f} s  file {size / 1e6:4.2f} MB"
        f"  peak RSS {rss:5.0f} MB  {', '.join(over)}".rstrip(),
    ]


def start_up(repeat: int) -> list[str]:
    """Short commands: five times the rounds, so the medians hold still."""
    folder = OUT / "start-up"
    path = folder / "tasks.json"
    generate(path, 60, 2.0, ["true"])
    results = medians(
        {
            'python -c "import typer"': [sys.executable, "-c", "import typer"],
            "ptx --version": [str(PTX), "--version"],
            "ptx validate (60 tasks)": [str(PTX), "validate", "-f", str(path)],
        },
        folder,
        repeat * 5,
    )
    floor = results['python -c "import typer"'][0]
    return [
        "start-up, stdout and stderr not a terminal",
        *(
            f"{name:36} median {wall * 1000:6.0f} ms  ratio {wall / floor:4.2f}x"
            f"  peak RSS {rss:5.0f} MB"
            for name, (wall, rss) in results.items()
        ),
    ]


CASES: dict[str, Callable[[int], list[str]]] = {
    "big-graph": big_graph,
    "no-op": no_op,
    "scheduling": lambda _repeat: dags.run(OUT / "dags", range(1, 9)),
    "dask": lambda _repeat: dask_overhead.run(OUT / "dask"),
    "plan-text": plan_text,
    "isolation": lambda repeat: isolation_overhead.run(OUT / "isolation", repeat),
    "dashboard": dashboard,
    "start-up": start_up,
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with Path("/proc/meminfo").open() as handle:
        mem_kb = int(handle.readline().split()[1])
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"{mem_kb / 1024 / 1024:.0f} GiB, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("cases", nargs="*", default=list(CASES), help=", ".join(CASES))
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; cases: {', '.join(CASES)}")
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}, medians of {args.repeat} runs")
    for case in args.cases:
        print("\n".join(["", *CASES[case](args.repeat)]), flush=True)


if __name__ == "__main__":
    main()
