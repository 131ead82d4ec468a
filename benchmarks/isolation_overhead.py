"""Per-task cost of `ptx run --isolate` against a shell script running the same git commands.

A repository of 5,000 files (~50 MB, 10 KB each in 50 folders), one commit. TASKS independent
tasks, one at a time (-j 1), each writing one new file. The floor is a shell script that does
for each task what isolation needs and nothing else: worktree add at the integration tip,
the task's command, add + commit, point the task branch at it, a --no-ff merge in the
integration worktree, worktree remove. ptx without --isolate on the same tasks shows what ptx
costs by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PTX = Path(sys.executable).with_name("ptx")
FILES, FOLDERS, FILE_BYTES = 5_000, 50, 10_000
TASKS = 20
REPEAT = 3
IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
FLOOR = r"""
set -e
repo=$1; tasks=$2; w=$repo/.floor
git -C "$repo" branch -f floor-int HEAD
git -C "$repo" worktree add -q "$w/int" floor-int
i=1
while [ "$i" -le "$tasks" ]; do
  tip=$(git -C "$repo" rev-parse refs/heads/floor-int)
  git -C "$repo" worktree add -q --detach "$w/$i" "$tip"
  (cd "$w/$i" && echo "$i" > "floor-$i.txt")
  git -C "$w/$i" add --all
  git -C "$w/$i" commit -q -m "task $i"
  head=$(git -C "$w/$i" rev-parse HEAD)
  git -C "$repo" update-ref "refs/heads/floor-task-$i" "$head"
  git -C "$w/int" merge -q --no-ff -m "merge task $i" "$head"
  git -C "$repo" worktree remove --force "$w/$i"
  i=$((i + 1))
done
git -C "$repo" worktree remove --force "$w/int"
"""


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, **IDENTITY}
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def _repository(repo: Path) -> None:
    shutil.rmtree(repo, ignore_errors=True)
    for number in range(FILES):
        folder = repo / "src" / f"d{number % FOLDERS:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{number}.txt").write_bytes(os.urandom(FILE_BYTES // 2).hex().encode())
    tasks = [
        {
            "id": number,
            "title": f"write out-{number}",
            "status": "pending",
            "dependencies": [],
            "metadata": {"ptx": {"command": f"echo {number} > out-{number}.txt"}},
        }
        for number in range(1, TASKS + 1)
    ]
    tasks_file = repo / ".taskmaster" / "tasks" / "tasks.json"
    tasks_file.parent.mkdir(parents=True)
    tasks_file.write_text(json.dumps({"master": {"tasks": tasks}}, indent=2) + "\n")
    (repo / "floor.sh").write_text(FLOOR)
    _git(repo, "init", "-q")
    _git(repo, "add", "--all")
    _git(repo, "commit", "-q", "-m", "bench: 5,000 files")


def _timed(argv: list[str], repo: Path) -> float:
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=repo, env={**os.environ, **IDENTITY}, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{argv} failed ({done.returncode}): {done.stderr[-500:]}")
    return wall


def run(folder: Path, repeat: int = REPEAT) -> list[str]:
    repo = folder / "repo"
    _repository(repo)
    size = sum(path.stat().st_size for path in (repo / "src").rglob("*.txt"))
    cases = {
        "shell floor (same git commands)": ["sh", "floor.sh", str(repo), str(TASKS)],
        "ptx run --isolate -j 1": [str(PTX), "run", "--isolate", "-j", "1", "-q"],
        "ptx run -j 1 (no isolation)": [str(PTX), "run", "-j", "1", "-q"],
    }
    for argv in cases.values():  # one unmeasured round: page cache and bytecode warm
        _timed(argv, repo)
    walls: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, argv in cases.items():
            walls[name].append(_timed(argv, repo))
    median = {name: statistics.median(values) for name, values in walls.items()}
    floor = median["shell floor (same git commands)"]
    rows = [f"isolation: {TASKS} tasks, -j 1, on {FILES:,} files / {size / 1e6:.0f} MB"]
    rows.extend(
        f"{name:36} median {wall:6.2f} s  {wall / TASKS * 1000:6.1f} ms per task"
        f"  ratio {wall / floor:4.2f}x"
        for name, wall in median.items()
    )
    return rows


if __name__ == "__main__":
    print("\n".join(run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/isolation"))))
