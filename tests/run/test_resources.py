"""Tests for run.resources: capacities hold, and the reservation policy stops starvation."""

from __future__ import annotations

import random

import pytest

from ptx.run.resources import Resources


def test_acquire_and_release_within_capacity() -> None:
    pool = Resources({"db": 1, "gpu": 2})
    assert pool.fits({"gpu": 2})
    pool.acquire({"gpu": 1, "db": 1})
    assert (pool.free("db"), pool.free("gpu")) == (0, 1)
    assert not pool.fits({"db": 1})
    assert not pool.fits({"gpu": 2})
    assert pool.fits({"gpu": 1})
    pool.release({"gpu": 1, "db": 1})
    assert (pool.free("db"), pool.free("gpu")) == (1, 2)


def test_a_capacity_is_never_exceeded_whatever_is_asked() -> None:
    pool = Resources({"db": 1, "gpu": 2})
    with pytest.raises(ValueError, match="does not fit"):
        pool.acquire({"gpu": 3})
    pool.acquire({"db": 1})
    with pytest.raises(ValueError, match="does not fit"):
        pool.acquire({"db": 1, "gpu": 1})
    assert pool.used == {"db": 1, "gpu": 0}  # a refused request takes nothing


def test_unknown_resources_never_fit_and_releasing_too_much_is_refused() -> None:
    pool = Resources({"db": 1})
    assert not pool.fits({"cache": 1})
    with pytest.raises(ValueError, match="releasing"):
        pool.release({"db": 1})


def test_an_empty_request_always_fits() -> None:
    pool = Resources({})
    assert pool.fits({})
    pool.acquire({})
    assert pool.round().lacking({}) is None


def test_a_task_that_does_not_fit_reserves_its_request_for_the_round() -> None:
    pool = Resources({"gpu": 2})
    pool.acquire({"gpu": 1})  # a small task runs
    picks = pool.round()
    assert picks.lacking({"gpu": 2}) == "gpu"  # the big one, asked about first, waits...
    assert picks.lacking({"gpu": 1}) == "gpu"  # ...and a small one may not take its unit
    assert pool.round().lacking({"gpu": 1}) is None  # without the big one it could


def test_a_reservation_covers_every_resource_of_the_request() -> None:
    pool = Resources({"db": 1, "gpu": 1})
    pool.acquire({"gpu": 1})
    picks = pool.round()
    assert picks.lacking({"db": 1, "gpu": 1}) == "gpu"
    assert picks.lacking({"db": 1}) == "db"  # else gpu could free while db is taken, forever


def _simulate(seed: int) -> tuple[int, list[int]]:
    """Small tasks keep arriving; a big one waits among them. Returns (step the big one
    started, max units in use at any step)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    pool = Resources({"gpu": 2})
    running: list[tuple[int, dict[str, int]]] = []  # (ends at step, request)
    ready = [{"gpu": 2}, *({"gpu": 1} for _ in range(3))]  # best first: the big one leads
    in_use: list[int] = []
    for step in range(200):
        for entry in [entry for entry in running if entry[0] <= step]:
            running.remove(entry)
            pool.release(entry[1])
        ready += [{"gpu": 1} for _ in range(rng.randint(0, 2))]
        while True:
            picks = pool.round()
            choice = next((r for r in ready if picks.lacking(r) is None), None)
            if choice is None:
                break
            ready.remove(choice)
            pool.acquire(choice)
            if choice == {"gpu": 2}:
                return step, in_use
            running.append((step + rng.randint(1, 3), choice))
        in_use.append(pool.used["gpu"])
    return -1, in_use


@pytest.mark.parametrize("seed", range(20))
def test_a_big_request_is_not_starved_by_small_ones(seed: int) -> None:
    started, in_use = _simulate(seed)
    assert 0 <= started <= 4  # small tasks last at most 3 steps and none may start meanwhile
    assert all(units <= 2 for units in in_use)
