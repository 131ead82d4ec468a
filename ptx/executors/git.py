"""Every git command ptx runs: an argv without a shell, in one directory, output captured."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.errors import PtxError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

MIN_VERSION = (2, 20)  # worktree remove, merge --no-ff -m, var: all older than 2.20
# Commits ptx makes when the user has no identity configured: a missing identity must never
# fail a task, so git gets one it can always use.
FALLBACK_NAME = "ptx"
FALLBACK_EMAIL = "ptx@localhost"
_VERSION = re.compile(r"git version (\d+)\.(\d+)")
# Set by git for hooks (ptx run from a hook, say): they would point every command, ptx's and
# the tasks', at the user's repository and index instead of the directory given.
LOCATION_VARIABLES = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX"}
)


class GitError(PtxError):
    """A git command failed; carries its exit code and output for callers that expect it."""

    def __init__(self, message: str, *, code: int, output: str) -> None:
        super().__init__(message)
        self.code, self.output = code, output


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str


def git(
    where: Path | str,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    stdin: str | None = None,
) -> Result:
    """Run `git -C where args...`; with `check`, a non-zero exit raises GitError naming it."""
    # No optional locks: a `git status` in the user's checkout must not rewrite its index.
    argv = ["git", "--no-optional-locks", "-C", str(where), *args]
    environ = {k: v for k, v in os.environ.items() if k not in LOCATION_VARIABLES}
    environ.update(env or {}, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        done = subprocess.run(  # an argv of ptx's own, never a shell
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=environ,
            check=False,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise PtxError("git is not installed (isolation needs git on PATH)") from exc
    if check and done.returncode != 0:
        what = (done.stderr or done.stdout).strip().splitlines()
        detail = what[-1] if what else f"exit {done.returncode}"
        raise GitError(
            f"git {' '.join(args[:2])} failed: {detail}",
            code=done.returncode,
            output=done.stdout + done.stderr,
        )
    return Result(done.returncode, done.stdout, done.stderr)


def lines(where: Path | str, *args: str) -> list[str]:
    """The non-empty lines a git command printed."""
    return [line for line in git(where, *args).out.splitlines() if line]


def version() -> tuple[int, int] | None:
    """git's version, or None when git is not on PATH."""
    if shutil.which("git") is None:
        return None
    found = _VERSION.search(git(".", "--version").out)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def identity_env(where: Path | str) -> dict[str, str]:
    """Author and committer variables for a commit in `where`: none when the user configured
    an identity git accepts (user.email, or the GIT_*_EMAIL / EMAIL variables), else ptx's
    fixed one. A guessed user@host identity does not count: it differs from machine to machine.
    """
    emails = ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "EMAIL")
    configured = any(os.environ.get(name) for name in emails)
    configured = configured or git(where, "config", "user.email", check=False).code == 0
    usable = all(
        git(where, "var", ident, check=False).code == 0
        for ident in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")
    )
    if configured and usable:
        return {}
    return {
        "GIT_AUTHOR_NAME": FALLBACK_NAME,
        "GIT_AUTHOR_EMAIL": FALLBACK_EMAIL,
        "GIT_COMMITTER_NAME": FALLBACK_NAME,
        "GIT_COMMITTER_EMAIL": FALLBACK_EMAIL,
    }


def commit_message(subject: str, trailers: Sequence[tuple[str, str]]) -> str:
    """A subject line and trailers, as `git interpret-trailers` reads them."""
    lines_ = [" ".join(subject.split()) or "ptx task", ""]
    lines_ += [f"{key}: {value}" for key, value in trailers]
    return "\n".join(lines_) + "\n"
