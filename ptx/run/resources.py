"""Slot accounting for named resources (`db: 1`, `gpu: 2`); no threads, no I/O.

Starvation policy: ready tasks are looked at best first (the scheduler's rank order). A task
whose request does not fit reserves its whole request from what is free, so a task looked at
after it may only use the units that reservation leaves. A big request therefore waits only
for the units in use to come back, never behind a stream of smaller tasks that keep taking
them. Reservations last for one pick of the next task and are rebuilt, in rank order, for
the next pick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


class Resources:
    """Units in use per named resource, never above its capacity."""

    def __init__(self, capacities: Mapping[str, int]) -> None:
        self.capacities = dict(capacities)
        self.used = dict.fromkeys(self.capacities, 0)

    def free(self, name: str) -> int:
        return self.capacities[name] - self.used[name]

    def fits(self, request: Mapping[str, int]) -> bool:
        """Whether `request` could be acquired now (an unknown resource never fits)."""
        return all(
            name in self.used and amount <= self.free(name) for name, amount in request.items()
        )

    def acquire(self, request: Mapping[str, int]) -> None:
        if not self.fits(request):
            raise ValueError(f"request {dict(request)} does not fit: {self.used} in use")
        for name, amount in request.items():
            self.used[name] += amount

    def release(self, request: Mapping[str, int]) -> None:
        for name, amount in request.items():
            if amount > self.used.get(name, 0):
                raise ValueError(
                    f"releasing {amount} of {name!r}, but {self.used.get(name, 0)} in use"
                )
            self.used[name] -= amount

    def round(self) -> Round:
        """A scheduling round (one pick of the next task): what is free now, nothing reserved."""
        return Round(self)


class Round:
    """One scheduling round: asked about ready tasks in rank order, it applies the reservations."""

    def __init__(self, resources: Resources) -> None:
        self._free = {name: resources.free(name) for name in resources.capacities}

    def lacking(self, request: Mapping[str, int]) -> str | None:
        """None when `request` may start now; else the first resource it lacks, and its whole
        request is reserved so that tasks asked about later cannot take those units."""
        short = next(
            (name for name, amount in request.items() if amount > self._free.get(name, 0)), None
        )
        if short is None:
            return None
        for name, amount in request.items():
            if name in self._free:
                self._free[name] = max(0, self._free[name] - amount)
        return short
