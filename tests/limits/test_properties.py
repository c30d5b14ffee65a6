"""Properties on random timelines: what each algorithm guarantees, checked against a model built from the grants.

Windows are a few thousand ns here so that random steps land on every edge.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from ratelimitd.limits import GCRA, FixedWindow, Rate, SlidingLog, SlidingWindow
from ratelimitd.limits.gcra import emission_interval

from .timeline import D

W = 1_000  # ns
START = 1_000_000 * W  # aligned to the window

COSTS = st.sampled_from([1, 1, 2, 3, D("0.1"), D("0.7"), D("1.5")])
FORWARD = st.one_of(st.sampled_from([0, 1, W - 1, W, W + 1, W + 50]), st.integers(0, 3 * W))
STEPS = st.lists(st.tuples(FORWARD, COSTS), max_size=60)
# with the clock stepping back now and then
JUMPY = st.lists(st.tuples(st.one_of(FORWARD, st.integers(-2 * W, -1)), COSTS), max_size=60)
LIMITS = st.sampled_from([1, 3, D("2.5"), 5])
MARGINS = st.sampled_from([0, 50, 300])

CHECKS = settings(max_examples=150, deadline=None)


def greedy(limiter, steps, limit):
    """Acquire each step's cost when ``wait`` says 0; yield (now, cost, wait)."""
    now = START
    for gap, cost in steps:
        now += gap
        if cost > limit:
            continue
        wait = limiter.wait(cost, now)
        if wait == 0:
            limiter.charge(cost, now)
        yield now, cost, wait


@CHECKS
@given(limit=LIMITS, margin=MARGINS, steps=STEPS)
def test_sliding_log_never_exceeds_the_limit_and_never_refuses_needlessly(limit, margin, steps):
    span = W + margin
    log = SlidingLog(Rate(limit, W, margin))
    grants: list[tuple[int, object]] = []

    def counted(t):
        return sum((cost for stamp, cost in grants if stamp > t - span), 0)

    for now, cost, wait in greedy(log, steps, limit):
        if wait == 0:
            assert counted(now) + cost <= limit
            grants.append((now, cost))
        else:  # refused only when it does not fit, and for exactly as long as it does not
            assert counted(now) + cost > limit
            assert counted(now + wait) + cost <= limit
            assert counted(now + wait - 1) + cost > limit
    for stamp, _ in grants:  # every window of the configured length (enough: those ending at a grant)
        assert sum((cost for other, cost in grants if stamp - W < other <= stamp), 0) <= limit


@CHECKS
@given(limit=LIMITS, burst=st.sampled_from([None, 1, 4, D("2.5")]), margin=MARGINS, steps=JUMPY)
def test_gcra_never_grants_more_than_burst_plus_interval_over_t(limit, burst, margin, steps):
    rate = Rate(limit, W, margin, burst)
    bucket = GCRA(rate)
    interval = emission_interval(rate)
    tolerance = rate.capacity * interval
    grants: list[tuple[int, object, int]] = []  # (time, cost, ns of tat it took), in grant order

    def increment(cost):
        return -(-Fraction(cost) * interval // 1)

    for now, cost, wait in greedy(bucket, steps, rate.capacity):
        # the closed form of the recurrence: tat = max over k of (g_k + M + sum of increments from k on)
        starts = [g + margin + sum(inc for _, _, inc in grants[k:]) for k, (g, _, _) in enumerate(grants)]
        tat = max(starts, default=now)
        assert wait == max(0, max(tat, now) + increment(cost) - now - tolerance)
        if wait == 0:
            grants.append((now, cost, increment(cost)))
    ordered = sorted(grants)
    for i, (first, _, _) in enumerate(ordered):
        total = Fraction(0)
        for last, cost, _ in ordered[i:]:
            total += Fraction(cost)
            assert total <= Fraction(rate.capacity) + Fraction(last - first, interval)


def window_counts(grants, margin):
    """Return {window index: sum of costs of grants whose [t, t + margin] touches it}."""
    counts: dict[int, Fraction] = {}
    for t, cost in grants:
        for k in range(t // W, (t + margin) // W + 1):
            counts[k] = counts.get(k, Fraction(0)) + Fraction(cost)
    return counts


@CHECKS
@given(limit=LIMITS, margin=MARGINS, steps=JUMPY)
def test_fixed_window_never_exceeds_the_limit_in_a_window(limit, margin, steps):
    window = FixedWindow(Rate(limit, W, margin))
    grants = []
    latest = current = None  # the latest time of a charge or a window turn; the current window
    for now, cost, wait in greedy(window, steps, limit):
        if current is None or now // W > current:  # the window turns
            current, latest = now // W, now if latest is None or now > latest else latest
        if wait == 0:  # time does not run backwards: a grant is at the latest time seen
            latest = now if now > latest else latest
            grants.append((latest, cost))
    for k, count in window_counts(grants, margin).items():
        assert count <= Fraction(limit), f"window {k}"


@CHECKS
@given(limit=LIMITS, margin=MARGINS, steps=STEPS)
def test_sliding_window_follows_its_estimate_exactly_and_stays_under_its_bound(limit, margin, steps):
    counter = SlidingWindow(Rate(limit, W, margin))
    grants: list[tuple[int, object]] = []

    def fits(t, cost):
        counts = window_counts(grants, margin)
        k = t // W
        previous = counts.get(k - 1, 0) * Fraction((k + 1) * W - t, W)
        return previous + counts.get(k, 0) + Fraction(cost) <= Fraction(limit)

    for now, cost, wait in greedy(counter, steps, limit):
        if wait == 0:
            assert fits(now, cost)
            grants.append((now, cost))
        else:
            assert not fits(now, cost)
            assert fits(now + wait, cost)
            assert not fits(now + wait - 1, cost)
    counts = window_counts(grants, margin)
    for t, _ in grants:  # the documented bound: limit + previous * f over any window ending at t
        k = t // W
        inside = sum((Fraction(cost) for other, cost in grants if t - W < other <= t), Fraction(0))
        assert inside <= Fraction(limit) + counts.get(k - 1, 0) * Fraction(t - k * W, W)
        assert inside < 2 * Fraction(limit)


def stepped_back(limiter, steps, capacity, jump, at):
    """Greedy acquires where the engine's clock falls ``jump`` ns behind real time from step ``at`` on.

    Returns the grants as (real time, cost).
    """
    real, grants = START, []
    for index, (gap, cost) in enumerate(steps):
        real += gap
        now = real if index < at else real - jump
        if cost <= capacity and limiter.wait(cost, now) == 0:
            limiter.charge(cost, now)
            grants.append((real, cost))
    return grants


@CHECKS
@given(limit=LIMITS, margin=MARGINS, steps=STEPS, jump=st.integers(1, 3 * W), at=st.integers(0, 9))
def test_sliding_log_a_clock_stepping_back_never_grants_more_in_real_time(limit, margin, steps, jump, at):
    grants = stepped_back(SlidingLog(Rate(limit, W, margin)), steps, limit, jump, at)
    for stamp, _ in grants:
        assert sum((cost for other, cost in grants if stamp - W < other <= stamp), 0) <= limit


@CHECKS
@given(limit=LIMITS, burst=st.sampled_from([None, 1, 4]), steps=STEPS, jump=st.integers(1, 3 * W), at=st.integers(0, 9))
def test_gcra_a_clock_stepping_back_never_grants_more_in_real_time(limit, burst, steps, jump, at):
    rate = Rate(limit, W, 0, burst)
    interval = emission_interval(rate)
    grants = sorted(stepped_back(GCRA(rate), steps, rate.capacity, jump, at))
    for i, (first, _) in enumerate(grants):
        total = Fraction(0)
        for last, cost in grants[i:]:
            total += Fraction(cost)
            assert total <= Fraction(rate.capacity) + Fraction(last - first, interval)
