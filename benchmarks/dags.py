"""Scheduling quality: random DAGs of sleep tasks under make, ninja and ptx, against the bound.

Durations are heterogeneous (mostly short tasks, a few long ones): the case where counting
steps, as ninja does, or declaration order, as make does, starts long tasks late. Each
makespan is divided by the exact lower bound max(L, W/P) of its graph.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

PTX = Path(sys.executable).with_name("ptx")
NINJA = Path(sys.executable).with_name("ninja")


@dataclass(frozen=True)
class Dag:
    seed: int
    durations: dict[int, float]
    deps: dict[int, list[int]]

    def bound(self, jobs: int) -> float:
        finish: dict[int, float] = {}
        for task in TopologicalSorter(self.deps).static_order():
            before = max((finish[dep] for dep in self.deps[task]), default=0.0)
            finish[task] = before + self.durations[task]
        return max(*finish.values(), sum(self.durations.values()) / jobs)


def random_dag(seed: int, count: int = 40) -> Dag:
    """Chains of short steps next to a few long tasks with few steps after them."""
    rng = random.Random(seed)
    durations, deps = {}, {}
    for task in range(1, count + 1):
        long_task = rng.random() < 0.15
        durations[task] = round(rng.uniform(1.0, 2.0) if long_task else rng.uniform(0.05, 0.25), 3)
        window = list(range(max(1, task - 8), task))
        fan = 0 if not window or long_task else rng.choice((1, 1, 2))
        deps[task] = sorted(rng.sample(window, min(fan, len(window))))
    return Dag(seed=seed, durations=durations, deps=deps)


def write_makefile(dag: Dag, folder: Path) -> None:
    lines = ["all: " + " ".join(f"t{task}" for task in dag.deps), ".PHONY: all"]
    for task, deps in dag.deps.items():
        lines += [
            f"t{task}: " + " ".join(f"t{dep}" for dep in deps),
            f"\t@sleep {dag.durations[task]}",
        ]
        lines.append(f".PHONY: t{task}")
    (folder / "Makefile").write_text("\n".join(lines) + "\n")


def write_ninja(dag: Dag, folder: Path) -> None:
    lines = ["rule sleep", "  command = sleep $duration && touch $out", ""]
    for task, deps in dag.deps.items():
        inputs = " ".join(f"out/t{dep}" for dep in deps)
        lines.append(f"build out/t{task}: sleep {inputs}".rstrip())
        lines.append(f"  duration = {dag.durations[task]}")
    (folder / "build.ninja").write_text("\n".join(lines) + "\n")


def write_tasks(dag: Dag, folder: Path) -> None:
    tasks = [
        {
            "id": task,
            "title": f"sleep {dag.durations[task]}",
            "status": "pending",
            "dependencies": deps,
            "metadata": {"ptx": {"command": ["sleep", str(dag.durations[task])]}},
        }
        for task, deps in dag.deps.items()
    ]
    path = folder / ".taskmaster" / "tasks" / "tasks.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"master": {"tasks": tasks}}, indent=2))


# Commands run as a user's would: Python keeps the bytecode it compiles. A shell that sets
# PYTHONDONTWRITEBYTECODE (this project's CI does) would otherwise have ptx, installed in
# editable mode, recompile every module of its own on every start (~35 ms).
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def wall(argv: list[str], folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=folder, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - start


def ninja_span(folder: Path) -> float:
    """First start to last end of this build, from .ninja_log (milliseconds)."""
    rows = [
        line.split("\t")
        for line in (folder / ".ninja_log").read_text().splitlines()
        if not line.startswith("#")
    ]
    return (max(int(row[1]) for row in rows) - min(int(row[0]) for row in rows)) / 1000


def measure(dag: Dag, root: Path, jobs: int) -> dict[str, float]:
    """Makespan / bound per tool. make's is its process wall (it starts in milliseconds);
    ninja's and ptx's are their own logs' first start to last end; `ptx process` adds
    ptx's Python start-up, loading and report."""
    folder = root / f"dag{dag.seed}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    write_makefile(dag, folder)
    write_ninja(dag, folder)
    write_tasks(dag, folder)
    ptx = [str(PTX), "run", "-j", str(jobs), "-q", "--report-json", "report.json"]
    wall(ptx, folder)  # warm-up: ptx learns the durations
    results = {"make": wall(["make", "-s", f"-j{jobs}"], folder)}
    wall([str(NINJA), f"-j{jobs}"], folder)
    results["ninja"] = ninja_span(folder)
    results["ptx process"] = wall(ptx, folder)
    results["ptx"] = json.loads((folder / "report.json").read_text())["wall_seconds"]
    return {tool: seconds / dag.bound(jobs) for tool, seconds in results.items()}


TOOLS = ("make", "ninja", "ptx", "ptx process")


def run(root: Path, seeds: range, jobs: int = 4) -> list[str]:
    if not NINJA.exists() or shutil.which("make") is None:
        return ["scheduling: needs make and ninja (pip install '.[bench]'), skipped"]
    rows = [
        f"random DAGs of 40 sleep tasks, -j {jobs}: makespan / lower bound max(L, W/P)",
        f"{'dag':>5}  {'bound':>7}" + "".join(f"  {tool:>11}" for tool in TOOLS),
    ]
    ratios: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    for seed in seeds:
        dag = random_dag(seed)
        got = measure(dag, root, jobs)
        for tool in TOOLS:
            ratios[tool].append(got[tool])
        cells = "".join(f"  {got[tool]:11.3f}" for tool in TOOLS)
        rows.append(f"{seed:>5}  {dag.bound(jobs):6.2f}s{cells}")
    means = "".join(f"  {statistics.mean(ratios[tool]):11.3f}" for tool in TOOLS)
    rows.append(f"{'mean':>5}  {'':>7}{means}")
    return rows
