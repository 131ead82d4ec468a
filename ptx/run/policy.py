"""How long an attempt may run, whether and when a failed one runs again, and the budget."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ptx.core.events import FAILURES

if TYPE_CHECKING:
    from collections.abc import Callable

    from ptx.core.events import Status
    from ptx.core.model import TaskOptions
    from ptx.taskmaster.config import Config

# An estimate-derived timeout never drops below this: a task measured at 10 ms must not be
# killed because the machine hiccupped.
MIN_DERIVED_TIMEOUT = 5.0
MAX_BACKOFF = 60.0


def timeout(
    options: TaskOptions, config: Config, *, cli: float | None, estimate: float | None
) -> float | None:
    """Per task, then --timeout, then the config default, then multiplier x estimate."""
    for seconds in (options.timeout_seconds, cli):
        if seconds is not None:
            return seconds
    if config.default_timeout_seconds is not None:
        return config.default_timeout_seconds
    if estimate is None:
        return None
    multiplier = config.safety_thresholds.timeout_multiplier
    return max(multiplier * estimate, MIN_DERIVED_TIMEOUT)


def retries(options: TaskOptions, config: Config, *, cli: int | None) -> int:
    """How often a failed task runs again: per task, then --retries, then the config default."""
    if options.retries is not None:
        return options.retries
    return cli if cli is not None else config.retries


def retry_delay(
    status: Status,
    attempts: int,
    *,
    allowed: int,
    base: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float | None:
    """Seconds until a task runs again after its attempt number `attempts` ended with `status`,
    or None when it does not (it succeeded, was interrupted, or has used its `allowed` retries).

    The wait is `base` doubled per attempt, capped at MAX_BACKOFF, then cut by up to half at
    random, so that retries of tasks that failed together do not start together."""
    if status not in FAILURES or attempts > allowed:
        return None
    return min(MAX_BACKOFF, base * 2.0 ** (attempts - 1)) * uniform(0.5, 1.0)


class Budget:
    """The run's reported cost against its limit (`--max-cost`); the scheduler thread's own."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.spent = 0.0  # USD, as the attempts reported it
        self.reached = False

    def charge(self, cost: float | None) -> bool:
        """Add an attempt's cost; True the first time the total reaches the limit."""
        if cost is None:
            return False
        self.spent += cost
        if self.limit is None or self.reached or self.spent < self.limit:
            return False
        self.reached = True
        return True

    def reached_text(self) -> str:
        return f"budget reached: ${self.spent:.2f} of ${self.limit or 0:.2f}: nothing more starts"
