"""Tests of run.policy: which timeout and how many retries apply, and how long a retry waits."""

from __future__ import annotations

import pytest

from ptx.core.events import Status
from ptx.core.model import TaskOptions
from ptx.run.policy import MAX_BACKOFF, MIN_DERIVED_TIMEOUT, retries, retry_delay, timeout
from ptx.taskmaster.config import Config, SafetyThresholds

NONE = TaskOptions()
DEFAULTS = Config()


def test_timeout_prefers_the_task_then_the_command_line_then_the_config() -> None:
    config = Config(default_timeout_seconds=30.0)
    own = TaskOptions(timeout_seconds=7.0)
    assert timeout(own, config, cli=9.0, estimate=100.0) == 7.0
    assert timeout(NONE, config, cli=9.0, estimate=100.0) == 9.0
    assert timeout(NONE, config, cli=None, estimate=100.0) == 30.0


def test_a_timeout_from_the_estimate_is_a_multiple_with_a_floor() -> None:
    config = Config(safety_thresholds=SafetyThresholds(timeout_multiplier=3.0))
    assert timeout(NONE, config, cli=None, estimate=10.0) == 30.0
    assert timeout(NONE, config, cli=None, estimate=0.01) == MIN_DERIVED_TIMEOUT
    assert timeout(NONE, config, cli=None, estimate=None) is None


def test_retries_prefer_the_task_then_the_command_line_then_the_config() -> None:
    config = Config(retries=2)
    assert retries(TaskOptions(retries=0), config, cli=5) == 0
    assert retries(NONE, config, cli=5) == 5
    assert retries(NONE, config, cli=None) == 2


@pytest.mark.parametrize("status", [Status.FAILED, Status.TIMEOUT, Status.MEMORY_EXCEEDED])
def test_a_failed_attempt_waits_a_doubling_capped_backoff(status: Status) -> None:
    def most(low: float, high: float) -> float:
        assert (low, high) == (0.5, 1.0)
        return high

    waits = [retry_delay(status, n, allowed=20, base=1.5, uniform=most) for n in (1, 2, 3, 10)]
    assert waits == [1.5, 3.0, 6.0, MAX_BACKOFF]
    assert retry_delay(status, 2, allowed=20, base=4.0, uniform=lambda low, _: low) == 4.0


def test_no_retry_once_the_allowed_ones_are_used() -> None:
    assert retry_delay(Status.FAILED, 3, allowed=3, base=1.0) is not None  # the third retry
    assert retry_delay(Status.FAILED, 4, allowed=3, base=1.0) is None
    assert retry_delay(Status.FAILED, 1, allowed=0, base=1.0) is None


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.INTERRUPTED, Status.SKIPPED])
def test_only_failures_are_retried(status: Status) -> None:
    assert retry_delay(status, 1, allowed=5, base=1.0) is None


def test_the_random_part_only_ever_shortens_the_wait() -> None:
    for _ in range(200):
        wait = retry_delay(Status.FAILED, 2, allowed=5, base=1.0)
        assert wait is not None
        assert 1.0 <= wait <= 2.0
