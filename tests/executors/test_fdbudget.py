"""Tests for executors.fdbudget, each in a fresh Python whose descriptor limit it sets."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
from ptx.executors import fdbudget
jobs, limit = fdbudget.supervisable(int(sys.argv[3]))
print(json.dumps([jobs, limit, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


def _supervisable(soft: int, hard: int, jobs: int) -> list[int]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(soft), str(hard), str(jobs)],
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[int] = json.loads(result.stdout)
    return found


def test_the_soft_limit_is_raised_as_far_as_the_jobs_need_and_no_further() -> None:
    jobs, limit, soft = _supervisable(64, 4096, 40)
    assert jobs == 40
    assert 64 < limit == soft < 4096  # tasks inherit it: raised only as far as needed


def test_jobs_are_lowered_to_what_the_hard_limit_allows() -> None:
    jobs, limit, soft = _supervisable(64, 64, 40)
    assert limit == soft == 64
    assert 1 <= jobs < 40


def test_a_limit_that_already_fits_is_left_alone() -> None:
    assert _supervisable(1024, 4096, 4) == [4, 1024, 1024]
