"""`ptx plan` as text: the table of groups, aligned by hand, exactly as printed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projects import make_project, ptx, task

if TYPE_CHECKING:
    from pathlib import Path


def test_the_groups_table_is_aligned_and_cuts_long_titles(tmp_path: Path) -> None:
    long_title = "a title much longer than the sixty characters the column shows at most"
    tasks = [
        task(1, "true", title=long_title, ptx_estimate_seconds=2),
        task(2, "true", title="two\nlines", priority="high"),
        task(10, "true", 1, 2, title="[bold]literal[/bold]", ptx_estimate_seconds=75),
    ]
    result = ptx(make_project(tmp_path, tasks), "plan", "-j", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:6] == [
        "tag master: 3 tasks to run in 2 parallel groups, 0 already done, 0 blocked",
        "group  id  task                                                          priority      estimate",  # noqa: E501 - a whole line as printed
        "    1   1  a title much longer than the sixty characters the column sh…  medium           2.0 s",  # noqa: E501 - a whole line as printed
        "        2  two lines                                                     high",
        "    2  10  [bold]literal[/bold]                                          medium    1 min 15.0 s",  # noqa: E501 - a whole line as printed
        "critical path: 2 -> 10 (1 min 53.5 s, 2 steps)",
    ]


def test_ten_thousand_tasks_print_one_line_each(tmp_path: Path) -> None:
    tasks = [task(n, "true", *([n - 1] if n % 100 != 1 else [])) for n in range(1, 10_001)]
    result = ptx(make_project(tmp_path, tasks), "plan")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tag master: 10000 tasks to run in 100 parallel groups")
    assert lines[2].split() == ["1", "1", "task", "1", "medium"]
    assert sum(1 for line in lines if line.split()[-1:] == ["medium"]) == 10_000
