"""`ptx dashboard` as a real process: where it writes, what the file holds, bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

from builders import SCRIPTS
from projects import HANG_GUARD, clean_environment, make_project, ptx, task

if TYPE_CHECKING:
    from pathlib import Path

# Anything the page itself asks a browser to fetch: a script, style, image or frame from a URL
# (the browser test checks what the scripts fetch: nothing).
FETCHED = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", re.IGNORECASE)
SCRIPT_BODIES = re.compile(r"(<script\b[^>]*>).*?</script>", re.IGNORECASE | re.DOTALL)
HOSTILE = "</script><script>alert('t')</script>"


def test_an_empty_journal_gives_a_page_and_makes_no_journal(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    made = ptx(root, "dashboard")
    assert made.returncode == 0, made.stderr
    assert made.stdout == ".ptx/dashboard.html\n"
    page = (root / ".ptx" / "dashboard.html").read_text()
    assert "No runs recorded yet" in page
    assert not (root / ".ptx" / "ptx.db").exists()


def test_the_page_holds_every_script_and_escapes_task_text(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true", title=HOSTILE), task(2, "exit 3", 1)])
    assert ptx(root, "run").returncode == 1
    made = ptx(root, "dashboard", "-o", "out/d.html")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "out/d.html\n"
    page = (root / "out" / "d.html").read_text()
    assert FETCHED.search(SCRIPT_BODIES.sub(r"\1</script>", page)) is None
    assert "Bokeh" in page  # the library itself is in the file
    assert HOSTILE not in page  # the title cannot close the script that holds the data
    assert "Runs over time" in page
    assert "Tasks across runs" in page
    assert not list((root / "out").glob(".*tmp"))  # written through a temporary file


def test_one_run_is_chosen_by_id(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    assert ptx(root, "run").returncode == 0
    assert ptx(root, "run").returncode == 0
    first = json.loads(ptx(root, "runs", "--json").stdout)[-1]["run_id"]  # newest first
    made = ptx(root, "dashboard", "--run", first, "--runs", "1")
    assert made.returncode == 0, made.stderr
    page = (root / ".ptx" / "dashboard.html").read_text()
    assert f"Run {first}: succeeded" in page


def test_an_unknown_run_is_bad_input(tmp_path: Path) -> None:
    root = make_project(tmp_path, [task(1, "true")])
    made = ptx(root, "dashboard", "--run", "20000101-000000-0000")
    assert (made.returncode, made.stderr) == (
        2,
        "ptx: error: no run 20000101-000000-0000: no runs recorded yet\n",
    )
    assert ptx(root, "run").returncode == 0
    made = ptx(root, "dashboard", "--run", "20000101-000000-0000")
    assert (made.returncode, made.stderr) == (2, "ptx: error: no run 20000101-000000-0000\n")
    assert not (root / ".ptx" / "dashboard.html").exists()


def ptx_with(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ptx` in the project with the test environment and `env` over it."""
    return subprocess.run(
        [sys.executable, "-m", "ptx", *args],
        cwd=root,
        env={**clean_environment(), **env},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


def test_without_bokeh_the_command_names_the_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker" / "bokeh"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not installed')\n")
    root = make_project(tmp_path / "p", [task(1, "true")])
    path = os.pathsep.join(filter(None, [str(blocker.parent), os.environ.get("PYTHONPATH")]))
    made = ptx_with(root, {"PYTHONPATH": path}, "dashboard")
    assert made.returncode == 2
    assert made.stderr == (
        "ptx: error: the dashboard needs the bokeh library: pip install 'ptx[dashboard]'\n"
    )
    assert not (root / ".ptx").exists()


def test_open_hands_the_file_to_the_users_browser(tmp_path: Path) -> None:
    # webbrowser runs $BROWSER with %s replaced by the URL, and waits for it.
    root = make_project(tmp_path / "p", [task(1, "true")])
    browser = f"{sys.executable} {SCRIPTS / 'record_url.py'} %s"
    made = ptx_with(root, {"BROWSER": browser}, "dashboard", "--open")
    assert made.returncode == 0, made.stderr
    page = root / ".ptx" / "dashboard.html"
    assert (root / "opened").read_text() == page.resolve().as_uri()
