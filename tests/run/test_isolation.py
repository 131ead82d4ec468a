"""`ptx run --isolate` on real git repositories: worktrees, task branches, integration."""

from __future__ import annotations

import hashlib
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from projects import (
    HANG_GUARD,
    alive,
    attempts,
    kill_guardian,
    make_project,
    progress,
    ptx,
    python,
    q,
    read_report,
    spawn,
    task,
    wait_for,
)

TASKS_FILE = ".taskmaster/tasks/tasks.json"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git identity of the test's own, so nothing depends on the machine's git config."""
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Tess Ter\n\temail = tess@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return config


def repository(root: Path, tasks: list[dict[str, Any]], **config: Any) -> Path:
    """A Taskmaster project that is a git repository with one commit."""
    root.mkdir(exist_ok=True)
    make_project(root, tasks, **config)
    (root / "shared.txt").write_text("line one\nline two\n")
    (root / ".gitignore").write_text("*.log\n")
    git(root, "init", "--quiet", "--initial-branch", "main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "start")
    return root


def report_of(root: Path) -> dict[str, Any]:
    return read_report(root / "report.json")


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return ptx(root, "run", "--isolate", "--report-json", str(root / "report.json"), *args)


def concurrent_run(root: Path) -> subprocess.CompletedProcess[str]:
    """A run whose machine guard never holds a task back, so tasks meant to overlap do."""
    return python(root, "idle_isolated_run.py")


def meet(barrier: Path, me: int, other: int) -> str:
    """Shell that waits until task `other` also started: both begin from the same tip."""
    return (
        f"touch {q(barrier / str(me))}; i=0; while [ ! -e {q(barrier / str(other))} ]"
        f' && [ "$i" -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; '
    )


def snapshot(root: Path) -> dict[str, Any]:
    """Everything of the user's checkout an isolated run must leave as it was."""
    files = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and path.relative_to(root).parts[0] not in {".git", ".ptx"}
        and path.name != "report.json"
    }
    return {
        "head": git(root, "rev-parse", "HEAD"),
        "branch": git(root, "symbolic-ref", "HEAD"),
        "status": git(root, "status", "--porcelain", "--", ".", ":(exclude)report.json"),
        "index": hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest(),
        "files": files,
    }


def on_branch(root: Path, branch: str, path: str) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(root), "show", f"{branch}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


# --- the core: independent work, dependents, conflicts ----------------------------------------


def test_independent_tasks_both_land_and_the_checkout_is_untouched(
    tmp_path: Path, identity: Path
) -> None:
    root = repository(
        tmp_path / "p", [task(1, "echo one > one.txt"), task(2, "echo two > two.txt")]
    )
    (root / "shared.txt").write_text("line one\nchanged but not committed\n")  # dirty
    before = snapshot(root)
    result = run(root, "-j", "2")
    assert result.returncode == 0, result.stderr
    assert snapshot(root) == before
    assert "1 uncommitted change(s)" in result.stderr
    report = report_of(root)
    branch = report["integration"]["branch"]
    assert branch.startswith("ptx/master/")
    assert report["integration"]["base"] == before["head"]
    assert report["integration"]["commit"] == git(root, "rev-parse", branch)
    assert on_branch(root, branch, "one.txt") == "one\n"
    assert on_branch(root, branch, "two.txt") == "two\n"
    assert on_branch(root, branch, "shared.txt") == "line one\nline two\n"  # not the dirty one
    for entry in report["tasks"]:
        found = entry["integration"]
        assert found["result"] == "merged"
        assert found["branch"] == f"ptx/master/task-{entry['id']}"
        assert found["paths"] == [{"1": "one.txt", "2": "two.txt"}[entry["id"]]]
        assert found["commit"] == git(root, "rev-parse", found["branch"])
    assert f"git merge --ff-only {branch}" in result.stdout
    assert "1: merged, ptx/master/task-1 at " in result.stdout
    assert "1 file +1 -0" in result.stdout
    again = ptx(root, "report")  # rebuilt from the journal, integration included
    assert again.returncode == 0, again.stderr
    assert f"adopt it: git merge --ff-only {branch}" in again.stdout
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1  # all removed
    assert "/.ptx/" in (root / ".git" / "info" / "exclude").read_text()


def test_a_dependent_starts_from_its_dependencys_merged_work(
    tmp_path: Path, identity: Path
) -> None:
    root = repository(
        tmp_path / "p",
        [
            task(1, "echo made by 1 > from1.txt"),
            task(2, 'test "$(cat from1.txt)" = "made by 1" && cat from1.txt > seen.txt', 1),
        ],
    )
    result = run(root)
    assert result.returncode == 0, result.stderr
    branch = report_of(root)["integration"]["branch"]
    assert on_branch(root, branch, "seen.txt") == "made by 1\n"
    log = git(root, "log", "--format=%s", branch)
    assert log.index("integrate task 2") < log.index("integrate task 1")  # 2 merged after 1


@pytest.mark.parametrize("strategy", ["merge", "squash"])
def test_a_conflict_ends_the_task_keeps_its_branch_and_skips_its_dependents(
    tmp_path: Path, identity: Path, strategy: str
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    edit = "printf 'line one\\n%s\\n' '{}' > shared.txt"
    root = repository(
        tmp_path / "p",
        [
            task(1, meet(barrier, 1, 2) + edit.format("from one")),
            task(2, meet(barrier, 2, 1) + edit.format("from two")),
            task(3, "true", 1),
            task(4, "true", 2),
        ],
        integration={"strategy": strategy},
    )
    result = concurrent_run(root)
    assert result.returncode == 1, result.stderr
    report = report_of(root)
    tasks = {entry["id"]: entry for entry in report["tasks"]}
    merged = [unit for unit in ("1", "2") if tasks[unit]["status"] == "succeeded"]
    conflicted = [unit for unit in ("1", "2") if tasks[unit]["status"] == "conflict"]
    assert len(merged) == len(conflicted) == 1, result.stderr
    loser = conflicted[0]
    found = tasks[loser]["integration"]
    assert found["result"] == "conflict"
    assert found["paths"] == ["shared.txt"]
    assert git(root, "rev-parse", found["branch"]) == found["commit"]  # kept
    assert found["worktree"] is not None
    assert Path(found["worktree"]).is_dir()  # kept for inspection
    dependent = {"1": "3", "2": "4"}[loser]
    assert tasks[dependent]["status"] == "skipped"
    assert tasks[dependent]["integration"]["result"] == "not run"
    assert tasks[dependent]["reason"] == f"dependency {loser} conflicted in shared.txt"
    assert tasks[{"1": "3", "2": "4"}[merged[0]]]["status"] == "succeeded"
    assert report["status"] == "failed"
    winner_text = "from one" if merged[0] == "1" else "from two"
    branch = report["integration"]["branch"]
    assert on_branch(root, branch, "shared.txt") == f"line one\n{winner_text}\n"
    assert git(root, "status", "--porcelain", "--", ".", ":(exclude)report.json") == ""
    assert git(root, "-C", found["worktree"], "status", "--porcelain") == ""  # no half merge


# --- what a task leaves -----------------------------------------------------------------------


def test_own_commits_untracked_files_count_and_ignored_files_do_not(
    tmp_path: Path, identity: Path
) -> None:
    script = (
        "echo committed > c.txt && git add c.txt && git commit --quiet -m 'my own commit'"
        " && echo untracked > u.txt && echo noise > debug.log && echo edited >> shared.txt"
    )
    root = repository(tmp_path / "p", [task(1, script, title="Write the files")])
    result = run(root)
    assert result.returncode == 0, result.stderr
    found = report_of(root)["tasks"][0]["integration"]
    branch = report_of(root)["integration"]["branch"]
    assert sorted(found["paths"]) == ["c.txt", "shared.txt", "u.txt"]
    assert on_branch(root, branch, "c.txt") == "committed\n"
    assert on_branch(root, branch, "u.txt") == "untracked\n"
    assert on_branch(root, branch, "debug.log") is None
    subjects = git(root, "log", "--format=%s", found["branch"]).splitlines()
    assert subjects[:2] == ["Write the files", "my own commit"]
    trailers = git(root, "log", "-1", "--format=%(trailers)", found["branch"])
    assert "Ptx-Task: 1" in trailers
    assert (
        git(root, "log", "-1", "--format=%an <%ae>", found["branch"])
        == "Tess Ter <tess@example.com>"
    )


def test_tasks_file_edits_inside_a_worktree_are_left_out(tmp_path: Path, identity: Path) -> None:
    script = f"sed -i 's/pending/done/' {TASKS_FILE} && echo work > w.txt"
    root = repository(tmp_path / "p", [task(1, script)])
    original = (root / TASKS_FILE).read_text()
    result = run(root)
    assert result.returncode == 0, result.stderr
    report = report_of(root)
    branch = report["integration"]["branch"]
    assert on_branch(root, branch, TASKS_FILE) == original
    assert on_branch(root, branch, "w.txt") == "work\n"
    assert report["tasks"][0]["integration"]["paths"] == ["w.txt"]
    log = (root / report["tasks"][0]["log"]).read_text()
    assert f"left out of the task's commit (ptx owns them): {TASKS_FILE}" in log
    assert (root / TASKS_FILE).read_text() == original


def test_a_task_that_changes_nothing_succeeds_with_no_changes(
    tmp_path: Path, identity: Path
) -> None:
    root = repository(tmp_path / "p", [task(1, "true")])
    result = run(root)
    assert result.returncode == 0, result.stderr
    report = report_of(root)
    assert report["tasks"][0]["integration"]["result"] == "no changes"
    assert report["integration"]["commit"] == report["integration"]["base"]
    assert git(root, "branch", "--list", "ptx/master/task-1") == ""


def test_without_a_git_identity_ptx_commits_as_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "none"))
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "p"
    root.mkdir()
    make_project(root, [task(1, "echo one > one.txt")])
    git(root, "init", "--quiet", "--initial-branch", "main")
    git(root, "add", "--all")
    git(root, "-c", "user.name=Set Up", "-c", "user.email=setup@example.com", "commit", "-qm", "s")
    result = run(root)
    assert result.returncode == 0, result.stderr
    branch = report_of(root)["integration"]["branch"]
    assert git(root, "log", "-1", "--format=%an <%ae>", branch) == "ptx <ptx@localhost>"
    assert on_branch(root, branch, "one.txt") == "one\n"


# --- setup, verify, copy ----------------------------------------------------------------------


def test_a_failing_verify_undoes_that_merge(tmp_path: Path, identity: Path) -> None:
    root = repository(
        tmp_path / "p",
        [task(1, "echo good > good.txt"), task(2, "echo bad > bad.txt", 1), task(3, "true", 2)],
        integration={"verify": "test ! -e bad.txt"},
    )
    result = run(root)
    assert result.returncode == 1
    report = report_of(root)
    tasks = {entry["id"]: entry for entry in report["tasks"]}
    assert tasks["1"]["status"] == "succeeded"
    assert tasks["2"]["status"] == "failed"
    assert tasks["2"]["reason"].startswith("verification failed: see ")
    assert tasks["2"]["integration"]["result"] == "verify failed"
    assert tasks["3"]["reason"] == "dependency 2 failed"
    branch = report["integration"]["branch"]
    assert on_branch(root, branch, "good.txt") == "good\n"
    assert on_branch(root, branch, "bad.txt") is None
    verify_log = root / ".ptx" / "logs" / report["run_id"] / "2.verify.log"
    assert verify_log.read_text() == "[ptx] verification failed: the merge is undone\n"


def test_setup_runs_in_the_fresh_worktree_and_copy_brings_untracked_files(
    tmp_path: Path, identity: Path
) -> None:
    root = repository(
        tmp_path / "p",
        [task(1, 'test "$(cat .env)" = secret && test -e ready && echo ok > ok.txt')],
        workspace={"copy": [".env"], "setup": "touch ready"},
    )
    (root / ".gitignore").write_text("*.log\n.env\nready\n")
    git(root, "commit", "-qam", "ignore .env")
    (root / ".env").write_text("secret")
    result = run(root)
    assert result.returncode == 0, result.stderr
    branch = report_of(root)["integration"]["branch"]
    assert on_branch(root, branch, "ok.txt") == "ok\n"
    assert on_branch(root, branch, ".env") is None


def test_a_failing_setup_fails_the_attempt(tmp_path: Path, identity: Path) -> None:
    root = repository(
        tmp_path / "p", [task(1, "echo never > n.txt")], workspace={"setup": "echo nope; exit 3"}
    )
    result = run(root)
    assert result.returncode == 1
    entry = report_of(root)["tasks"][0]
    assert entry["status"] == "failed"
    log = (root / entry["log"]).read_text()
    assert "nope" in log
    assert "setup failed" in log
    assert "setup failed" in result.stderr


def test_the_environment_names_the_worktree_and_the_branch(tmp_path: Path, identity: Path) -> None:
    names = '"$PTX_WORKTREE" "$PTX_BASE_COMMIT" "$PTX_BRANCH" "$PWD"'
    script = f'for v in {names}; do echo "$v"; done > env.txt'
    root = repository(tmp_path / "p", [task(1, script)])
    result = run(root)
    assert result.returncode == 0, result.stderr
    report = report_of(root)
    written = on_branch(root, report["integration"]["branch"], "env.txt") or ""
    worktree, base, branch, cwd = written.split()
    assert worktree == str(root / ".ptx" / "worktrees" / report["run_id"] / "1")
    assert worktree == cwd
    assert base == report["integration"]["base"]
    assert branch == "ptx/master/task-1"


# --- preconditions ----------------------------------------------------------------------------


def test_a_project_outside_git_is_refused(tmp_path: Path, identity: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    make_project(root, [task(1, "true")])
    result = ptx(root, "run", "--isolate")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ptx: error: --isolate needs a git repository: {root} is not in a git work tree"
    ]
    assert not (root / ".ptx").exists()


def test_an_unborn_head_is_refused(tmp_path: Path, identity: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    make_project(root, [task(1, "true")])
    git(root, "init", "--quiet")
    result = ptx(root, "run", "--isolate")
    assert result.returncode == 2
    assert "needs a commit to start from" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_dirty_checkout_is_refused_when_configured(tmp_path: Path, identity: Path) -> None:
    root = repository(tmp_path / "p", [task(1, "true")], workspace={"refuse_dirty": True})
    (root / "new.txt").write_text("x")
    result = ptx(root, "run", "--isolate")
    assert result.returncode == 2
    assert "1 uncommitted change(s)" in result.stderr
    assert "refuse_dirty" in result.stderr


def test_an_unknown_base_is_refused(tmp_path: Path, identity: Path) -> None:
    root = repository(tmp_path / "p", [task(1, "true")])
    result = ptx(root, "run", "--isolate", "--base", "no-such-ref")
    assert result.returncode == 2
    assert result.stderr.strip() == f"ptx: error: --base no-such-ref: not a commit in {root}"


def test_dry_run_shows_each_tasks_worktree_and_branch(tmp_path: Path, identity: Path) -> None:
    root = repository(tmp_path / "p", [task(1, "true"), task(2, "true", 1)])
    result = ptx(root, "run", "--isolate", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "1\ttrue\tworktree .ptx/worktrees/<run>/1\tbranch ptx/master/task-1",
        "2\ttrue\tworktree .ptx/worktrees/<run>/2\tbranch ptx/master/task-2",
    ]


# --- crash, resume, clean ---------------------------------------------------------------------


def test_kill_9_then_resume_finishes_without_rerunning_integrated_tasks(
    tmp_path: Path, identity: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    counter, go = tmp_path / "runs-of-1", tmp_path / "go"
    root = repository(
        tmp_path / "p",
        [
            task(1, f"echo 1 >> {q(counter)} && echo one > one.txt"),
            task(2, f"while [ ! -e {q(go)} ]; do sleep 0.05; done; echo two > two.txt", 1),
        ],
    )
    first = spawn(root, "run", "--isolate", "--plain")
    background.append(first)
    wait_for(lambda: "started 2" in progress(root), "task 2 to start")
    first.send_signal(signal.SIGKILL)
    first.wait(HANG_GUARD)
    go.touch()
    result = ptx(root, "run", "--resume", "--report-json", str(root / "report.json"))  # kept
    assert result.returncode == 0, result.stderr
    assert counter.read_text() == "1\n"  # task 1 was integrated: not run again
    report = report_of(root)
    assert [entry["id"] for entry in report["tasks"]] == ["2"]
    branch = report["integration"]["branch"]
    assert on_branch(root, branch, "one.txt") == "one\n"
    assert on_branch(root, branch, "two.txt") == "two\n"
    first_run = attempts(root, 0)[0].run_id
    assert branch == f"ptx/master/{first_run}"  # the same branch, continued


def test_clean_removes_worktrees_and_task_branches_through_git(
    tmp_path: Path, identity: Path
) -> None:
    root = repository(tmp_path / "p", [task(1, "echo one > one.txt"), task(2, "exit 1")])
    result = run(root)
    assert result.returncode == 1
    report = report_of(root)
    kept = report["tasks"][1]["integration"]["worktree"]
    assert kept is not None
    assert Path(kept).is_dir()
    assert f"2: not integrated, worktree kept: {kept}" in result.stdout
    branch = report["integration"]["branch"]
    cleaned = ptx(root, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"removed worktree {kept}" in cleaned.stdout
    assert "removed task branch ptx/master/task-1" in cleaned.stdout
    assert not Path(kept).exists()
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(root, "branch", "--list", "ptx/master/task-*") == ""
    assert git(root, "branch", "--list", branch) != ""  # kept without --all
    everything = ptx(root, "clean", "--all")
    assert everything.returncode == 0, everything.stderr
    assert f"removed integration branch {branch}" in everything.stdout
    assert git(root, "branch", "--list", "ptx/*") == ""


def test_squash_makes_one_plain_commit_per_task(tmp_path: Path, identity: Path) -> None:
    root = repository(
        tmp_path / "p",
        [task(1, "echo one > one.txt && echo more > more.txt"), task(2, "echo two > two.txt", 1)],
        integration={"strategy": "squash"},
    )
    result = run(root)
    assert result.returncode == 0, result.stderr
    report = report_of(root)
    branch, base = report["integration"]["branch"], report["integration"]["base"]
    assert git(root, "log", "--merges", "--format=%s", f"{base}..{branch}") == ""
    subjects = git(root, "log", "--format=%s", f"{base}..{branch}").splitlines()
    assert subjects == ["ptx: integrate task 2: task 2", "ptx: integrate task 1: task 1"]
    assert on_branch(root, branch, "more.txt") == "more\n"
    assert on_branch(root, branch, "two.txt") == "two\n"


def test_a_retry_starts_from_a_fresh_worktree_and_the_failed_one_is_kept(
    tmp_path: Path, identity: Path
) -> None:
    marker = tmp_path / "failed-once"
    script = (
        f"echo attempt > mine.txt; if [ ! -e {q(marker)} ]; then touch {q(marker)};"
        " echo half > half.txt; exit 1; fi"
    )
    root = repository(tmp_path / "p", [task(1, script, ptx_retries=1)])
    result = run(root)
    assert result.returncode == 0, result.stderr
    report = report_of(root)
    folder = root / ".ptx" / "worktrees" / report["run_id"]
    assert (folder / "1" / "half.txt").exists()  # the failed attempt's, kept
    assert not (folder / "1.2").exists()  # the retry's, merged and removed
    branch = report["integration"]["branch"]
    assert on_branch(root, branch, "half.txt") is None  # the retry did not start from it
    assert on_branch(root, branch, "mine.txt") == "attempt\n"


@pytest.mark.parametrize(
    ("fake_git", "message"),
    [
        (None, "ptx: error: --isolate needs git, which is not on PATH"),
        (
            "#!/bin/sh\necho 'git version 2.1.0'\n",
            "ptx: error: --isolate needs git 2.20 or newer, found 2.1",
        ),
    ],
)
def test_git_missing_or_too_old_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_git: str | None, message: str
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    make_project(root, [task(1, "true")])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if fake_git is not None:
        (bin_dir / "git").write_text(fake_git)
        (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = ptx(root, "run", "--isolate")
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_clean_after_kill_9_ends_the_dead_runs_tasks_and_removes_their_worktrees(
    tmp_path: Path, identity: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    pid_file = tmp_path / "pid"
    root = repository(tmp_path / "p", [task(1, f"echo $$ > {q(pid_file)}; exec sleep 300")])
    first = spawn(root, "run", "--isolate", "--plain")
    background.append(first)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", "task 1 to run")
    # Only a group the journal knows can be ended: ptx records it just after the spawn.
    wait_for(lambda: any(record.pgid for record in attempts(root)), "the journal to have it")
    pid = int(pid_file.read_text())
    kill_guardian(first)  # else it ends the task itself: what clean does is tested here
    first.send_signal(signal.SIGKILL)
    first.wait(HANG_GUARD)
    assert alive(pid)
    cleaned = ptx(root, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not alive(pid)
    assert "removed worktree " in cleaned.stdout
    assert git(root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not any((root / ".ptx" / "worktrees").iterdir())


def test_a_project_in_a_subfolder_and_a_task_cwd_map_into_the_worktree(
    tmp_path: Path, identity: Path
) -> None:
    top = tmp_path / "repo"
    top.mkdir()
    (top / "README").write_text("top\n")
    root = top / "app"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "keep").write_text("")
    make_project(
        root,
        [
            task(1, "echo at root > root.txt"),
            task(2, "echo in lib > here.txt", ptx_cwd="lib"),
            task(3, f"sed -i 's/pending/done/' ../{TASKS_FILE} && echo x > x.txt", ptx_cwd="lib"),
        ],
    )
    git(top, "init", "--quiet")
    git(top, "add", "--all")
    git(top, "commit", "--quiet", "-m", "start")
    result = run(root)
    assert result.returncode == 0, result.stderr
    branch = report_of(root)["integration"]["branch"]
    assert on_branch(top, branch, "app/root.txt") == "at root\n"
    assert on_branch(top, branch, "app/lib/here.txt") == "in lib\n"
    assert on_branch(top, branch, "app/lib/x.txt") == "x\n"
    assert on_branch(top, branch, f"app/{TASKS_FILE}") == (root / TASKS_FILE).read_text()
    assert "/app/.ptx/" in (top / ".git" / "info" / "exclude").read_text()


def test_git_location_variables_of_a_hook_do_not_reach_the_users_index(
    tmp_path: Path, identity: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "echo x > x.txt && git add x.txt && git commit --quiet -m 'own' && echo y > y.txt"
    root = repository(tmp_path / "p", [task(1, script)])
    before = snapshot(root)
    monkeypatch.setenv("GIT_DIR", str(root / ".git"))  # as git sets them for a hook
    monkeypatch.setenv("GIT_INDEX_FILE", str(root / ".git" / "index"))
    monkeypatch.setenv("GIT_WORK_TREE", str(root))
    result = run(root)
    for name in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):
        monkeypatch.delenv(name)
    assert result.returncode == 0, result.stderr
    assert snapshot(root) == before
    branch = report_of(root)["integration"]["branch"]
    assert on_branch(root, branch, "x.txt") == "x\n"
    assert on_branch(root, branch, "y.txt") == "y\n"
