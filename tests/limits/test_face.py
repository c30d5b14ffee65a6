"""What every window limit promises through the common face, checked on each algorithm alike."""

from __future__ import annotations

import random

import pytest

from ratelimitd.limits import ALGORITHMS, FixedWindow, SlidingWindow
from ratelimitd.tiers.model import ALGORITHMS as TABLE_ALGORITHMS

from .timeline import D, MS, S, T0, rate

NAMES = sorted(ALGORITHMS)
MINUTE = 60 * S


def test_the_registry_names_every_algorithm_a_tier_table_may_choose():
    assert set(ALGORITHMS) == set(TABLE_ALGORITHMS)
    for name, cls in ALGORITHMS.items():
        assert cls.algorithm == name


@pytest.mark.parametrize("name", NAMES)
def test_state_lives_in_slots(name):
    limiter = ALGORITHMS[name](rate(60, MINUTE))
    assert not hasattr(limiter, "__dict__")


@pytest.mark.parametrize("name", NAMES)
def test_decimal_costs_add_up_exactly(name):
    limiter = ALGORITHMS[name](rate(10_000, 3600 * S))
    for _ in range(1000):
        assert limiter.wait(D("0.1"), T0) == 0
        limiter.charge(D("0.1"), T0)
    assert limiter.used(T0) == 100
    assert limiter.remaining(T0) == 9_900


@pytest.mark.parametrize("name", NAMES)
def test_a_peek_never_waits_and_a_zero_charge_changes_nothing(name):
    limiter = ALGORITHMS[name](rate(5, 10 * S, margin=100 * MS))
    limiter.charge(5, T0)
    limiter.restrict(0, 30 * S, T0)
    before = limiter.dump(T0 + S)
    assert limiter.wait(0, T0 + S) == 0
    limiter.charge(0, T0 + S)
    assert limiter.dump(T0 + S) == before


@pytest.mark.parametrize("name", NAMES)
def test_retune_keeps_what_was_spent(name):
    limiter = ALGORITHMS[name](rate(60, MINUTE))
    limiter.charge(40, T0)
    limiter.retune(rate(30, MINUTE), T0)
    assert limiter.remaining(T0) == 0
    assert limiter.wait(1, T0) > 0


@pytest.mark.parametrize("name", NAMES)
def test_charge_at_now_on_a_fresh_limiter_carries_use_over(name):
    # the engine's reload to another algorithm: a fresh limiter charged with the old use
    limiter = ALGORITHMS[name](rate(60, MINUTE))
    limiter.charge_at(45, T0 + 5 * S)
    assert limiter.remaining(T0 + 5 * S) == 15
    assert limiter.wait(16, T0 + 5 * S) > 0


@pytest.mark.parametrize("name", NAMES)
def test_restrict_never_loosens(name):
    limiter = ALGORITHMS[name](rate(10, 10 * S))
    limiter.charge(8, T0)
    limiter.restrict(5, 20 * S, T0)  # the provider says more than we have: ignored as a bound now
    assert limiter.remaining(T0) == 2
    limiter.restrict(1, 20 * S, T0)
    assert limiter.remaining(T0) == 1
    granted = 0
    for step in range(0, 20 * S, S // 2):  # at most one more until the hold ends, whatever refills
        if limiter.wait(1, T0 + step) == 0:
            limiter.charge(1, T0 + step)
            granted += 1
    assert granted == 1
    assert limiter.wait(1, T0 + 20 * S) == 0


def random_ops(rng: random.Random, name: str, steps: int, start: int, window: int):
    """Yield (time, op, amount) for a random run: mostly acquires, some refunds, restricts and peeks."""
    now = start
    for _ in range(steps):
        now += rng.choice([0, 1, MS, 37 * MS, window // 7, window // 2, window, window + 1])
        roll = rng.random()
        if roll < 0.75:
            yield now, "acquire", rng.choice([1, 1, 2, D("0.1"), D("0.25")])
        elif roll < 0.85:
            yield now, "refund", rng.choice([1, D("0.1")])
        elif roll < 0.9:
            yield now, "restrict", rng.choice([0, 1, 3])
        else:
            yield now, "acquire", 0


def observe(limiter, now: int, cost) -> tuple:
    """Return everything the face reports at ``now`` for ``cost``."""
    return (limiter.wait(cost, now), limiter.remaining(now), limiter.used(now), limiter.reset_after(now))


def apply(limiter, now: int, op: str, amount) -> tuple:
    seen = observe(limiter, now, amount)
    if op == "acquire" and seen[0] == 0:
        limiter.charge(amount, now)
    elif op == "refund":
        limiter.refund(amount, now)
    elif op == "restrict":
        limiter.restrict(amount, 3 * S, now)
    return seen


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", NAMES)
def test_a_dump_loaded_at_the_same_time_behaves_identically(name, seed):
    rng = random.Random(seed)
    window = 10 * S
    limit = rate(5, window, margin=rng.choice([0, 100 * MS, 3 * S]), burst=3 if name == "gcra" and seed % 2 else None)
    original = ALGORITHMS[name](limit)
    ops = list(random_ops(rng, name, 80, T0 + rng.randrange(window), window))
    for now, op, amount in ops[:40]:
        apply(original, now, op, amount)
    at = ops[39][0]
    restored = ALGORITHMS[name].load(limit, original.dump(at), at)
    assert restored.dump(at) == original.dump(at)
    for index, (now, op, amount) in enumerate(ops[40:], 40):
        expected = apply(original, now, op, amount)
        assert apply(restored, now, op, amount) == expected, f"step {index}: {op} {amount} at {now - at} ns"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", NAMES)
def test_a_dump_loaded_as_of_an_earlier_time_has_seen_that_time_pass(name, seed):
    rng = random.Random(seed)
    window = 10 * S
    limit = rate(5, window, margin=rng.choice([0, 100 * MS]))
    original = ALGORITHMS[name](limit)
    ops = list(random_ops(rng, name, 60, T0, window))
    for now, op, amount in ops[:30]:
        apply(original, now, op, amount)
    at = ops[29][0]
    # dumped at ``at``, restored as of ``at - passed``: the restored one at t is the original at t + passed
    passed = rng.choice([1, 37 * MS, window // 3, 2 * window + 5]) if name in ("sliding-log", "gcra") else 2 * window
    restored = ALGORITHMS[name].load(limit, original.dump(at), at - passed)
    for index, (now, op, amount) in enumerate(ops[30:], 30):
        expected = apply(original, now, op, amount)
        assert apply(restored, now - passed, op, amount) == expected, f"step {index}: {op} {amount}"


@pytest.mark.parametrize("cls", [FixedWindow, SlidingWindow], ids=["fixed-window", "sliding-window"])
def test_a_restart_off_the_window_grid_stays_exact_while_anything_counts(cls):
    window = 10 * S
    original = cls(rate(4, window, margin=S))
    for step, cost in ((1, 1), (4, 2), (9, 1)):
        original.charge(cost, T0 + step * S)
    at = T0 + 9 * S
    shift = 3 * S + 250 * MS  # the store moved stored times by other than a multiple of the window
    restored = cls.load(original.rate, original.dump(at), at + shift)
    for later in range(0, 25 * S, S // 4):
        assert observe(restored, at + shift + later, 1) == observe(original, at + later, 1), later


@pytest.mark.parametrize("name", NAMES)
def test_reset_after_is_when_remaining_grows(name):
    rng = random.Random(7)
    window = 10 * S
    limiter = ALGORITHMS[name](rate(5, window, margin=100 * MS))
    for now, op, amount in random_ops(rng, name, 200, T0, window):
        apply(limiter, now, op, amount)
        left, reset = limiter.remaining(now), limiter.reset_after(now)
        if reset:
            assert limiter.remaining(now + reset) > left, f"{limiter!r} at {now}: reset_after {reset}"
        else:
            assert left == limiter.rate.capacity, f"{limiter!r} at {now}: reset_after 0 but remaining {left}"
