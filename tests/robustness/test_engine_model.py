"""The engine against a reference model, on synthetic integer time: random interleavings of every operation.

hypothesis drives one ``Engine`` through acquires (single-bucket, two-bucket,
multi-rate, GCRA, concurrency with reject and with evict-oldest, rate plus
concurrency; costs whole and decimal; some waiting until a deadline), service,
time steps (mostly forward, sometimes back a little), reloads (a limit up or
down), resets, provider reports, lease releases and cancelled waiters. A plain
model keeps every grant and lease and checks, at every step:

- no window holds more than its limit: for each sliding-log rate, every grant
  ``g`` has at most the limit *in force when g was granted* within the
  ``window + margin`` before it, older grants included (a reload that lowers a
  limit does not forget what was spent; one that raises it lets later grants
  use the room). For GCRA, grants in any interval ``I`` cost at most
  ``burst + I / T``. Only grants since the bucket's last ``reset`` count;
- leases held never exceed the concurrency limit in force at each grant, and
  evict-oldest takes the oldest lease;
- every waiter is answered at most once, never after it was cancelled, never
  denied before its deadline, and none outlives it; an acquire that is denied
  or waits charges nothing;
- where the model knows the answer exactly (no provider report on the buckets,
  no waiter ahead, the clock never stepped back), grants, waits and denials
  and their ``retry_after`` are exactly the sliding log's, and a service pass
  grants exactly the waiters whose buckets allow them in queue order. Half the
  runs (chosen at the start) have no steps back and no reports, so that these
  exact checks stay on for the whole run.

Time: a step back of ``s`` is the engine's clock falling ``s`` behind real
time, so *real* time is ``now`` plus every step back so far; the provider
counts grants in real time, and the window invariants are checked there.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ratelimitd.engine import Decision, Engine, Waiter
from ratelimitd.engine.core import DEADLINE_SLACK
from ratelimitd.engine.feedback import apply_report
from ratelimitd.errors import CostTooLarge, RequestError, UnknownLease
from ratelimitd.limits.exact import scale_down
from ratelimitd.limits.gcra import emission_interval
from ratelimitd.limits.holding import NEVER
from ratelimitd.tiers import load_text

S = 1_000_000_000
T0 = 1_700_000_000 * S

TABLE = """
[providers.p.endpoints]
one = ["a"]
two = ["a", "b"]
multi = ["m"]
gcra = ["g"]
conc = ["c"]
evict = ["e"]
both = ["a", "c"]

[providers.p.tiers.t]
a = {{ rate = "{a}/1s", margin = "50ms" }}
b = {{ rate = "4/2s" }}
m = {{ rate = ["2/1s", "3/2s"] }}
g = {{ rate = "4/1s", algorithm = "gcra", burst = 2 }}
c = {{ concurrent = {c} }}
e = {{ concurrent = 2, when_full = "evict-oldest" }}

[keys.k]
provider = "p"
tier = "t"
"""

A_LIMITS = ("3", "2", "5", "2.5")  # reloads move a's limit up and down (the first is the start)
C_LIMITS = (2, 1, 3)
TABLES = {(a, c): load_text(TABLE.format(a=a, c=c), "model") for a in A_LIMITS for c in C_LIMITS}

BUCKETS = {"one": ("a",), "two": ("a", "b"), "multi": ("m",), "gcra": ("g",), "conc": ("c",), "evict": ("e",), "both": ("a", "c")}
LOGS = ("a", "b", "m")  # sliding-log buckets, modelled exactly
HOLDINGS = ("c", "e")
LEASED = ("conc", "evict", "both")

RATE_COSTS = st.sampled_from([0, 1, 1, 1, 2, 3, 6, Decimal("0.5"), Decimal("0.1"), Decimal("1.5")])
WAITS = st.one_of(st.none(), st.sampled_from([1, S // 2, S, 3 * S]), st.integers(1, 3 * S))
FORWARD = st.one_of(
    st.sampled_from([0, 1, S - 1, S, S + 10_000_000, S + 50_000_000, 2 * S + 20_000_000]),  # window edges
    st.integers(0, S // 5),
    st.integers(0, 2 * S),
)


def exact(amount: Any) -> Fraction:
    return Fraction(amount)


class EngineModel(RuleBasedStateMachine):
    """One engine and the model of what it must have done (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.limits = (A_LIMITS[0], C_LIMITS[0])
        self.table = TABLES[self.limits]
        self.engine = Engine(self.table)
        self.now = T0
        self.behind = 0  # how far the engine's clock has fallen behind real time: every step back so far
        # per rate bucket, since its last reset: (real time, cost, the limit of each of its rates in force then)
        self.grants: dict[str, list[tuple[int, Fraction, tuple[Fraction, ...]]]] = {name: [] for name in ("a", "b", "m", "g")}
        self.leases: dict[str, dict[str, Fraction]] = {name: {} for name in HOLDINGS}  # slots held: lease -> amount, oldest first
        self.live: set[str] = set()  # every live lease id (a peek's lease holds no slot)
        self.gone: set[str] = set()  # lease ids released or ended
        self.waiters: dict[Waiter, str] = {}  # live waiters -> endpoint
        self.done: set[Waiter] = set()  # every waiter answered or cancelled
        self.reported: set[str] = set()  # buckets a provider report touched since their last reset
        self.stepped_back = False
        self.wake: int | None = None
        self.tokens = 0
        self.jumpy = True  # steps back and provider reports allowed (see ``choose``)

    @initialize(jumpy=st.booleans())
    def choose(self, jumpy: bool) -> None:
        """Choose the run's kind: with steps back and provider reports, or without (all answers then known exactly)."""
        self.jumpy = jumpy

    # -- the model's view -----------------------------------------------------------------

    @property
    def real(self) -> int:
        return self.now + self.behind

    def spec(self, name: str):
        return self.table.key("k").buckets[name]

    def capacity(self, endpoint: str) -> Fraction | None:
        bounds = [self.spec(name).capacity for name in BUCKETS[endpoint]]
        bounds = [exact(bound) for bound in bounds if bound is not None]
        return min(bounds) if bounds else None

    def counted(self, name: str, span: int, at: int) -> Fraction:
        """Return what bucket ``name`` granted in the ``span`` ns of real time up to ``at`` (exclusive start)."""
        return sum((cost for t, cost, _ in self.grants[name] if t > at - span), Fraction(0))

    def log_wait(self, name: str, cost: Fraction) -> int:
        """Return ns until the sliding log of ``name`` allows ``cost`` at real time now (exact regime only)."""
        longest = 0
        for rate in self.spec(name).rates:
            span = rate.window + rate.margin
            window = sorted((t, c) for t, c, _ in self.grants[name] if t > self.real - span)
            excess = sum((c for _, c in window), Fraction(0)) + cost - exact(rate.limit)
            if excess <= 0 or not cost:
                continue
            freed = Fraction(0)
            for t, c in window:
                freed += c
                if freed >= excess:
                    longest = max(longest, t + span - self.real)
                    break
        return longest

    def held(self, name: str) -> Fraction:
        return sum(self.leases[name].values(), Fraction(0))

    def holding_wait(self, name: str, cost: Fraction, extra: Fraction = Fraction(0)) -> int:
        """Return 0 when ``cost`` fits in concurrency bucket ``name`` (evict-oldest: whenever it is within the limit), else NEVER."""
        if name == "e":
            return 0 if cost <= self.spec(name).concurrent else NEVER
        return 0 if self.held(name) + extra + cost <= self.spec(name).concurrent else NEVER

    def exact_regime(self, names: tuple[str, ...]) -> bool:
        """Report whether the model knows the engine's answer on ``names`` exactly (see the module docstring)."""
        return not self.stepped_back and not (set(names) & self.reported) and "g" not in names

    def snapshot(self) -> dict[str, Any]:
        """Return what every bucket holds now (used per rate, held), to show that a denial charged nothing."""
        key = self.table.key("k")
        state = {}
        for name, spec in key.buckets.items():
            bucket = self.engine.bucket(key.owner(spec), spec)
            state[name] = ([limiter.used(self.now) for limiter in bucket.limiters], bucket.holding.held if bucket.holding else None)
        return state

    # -- recording what the engine did ----------------------------------------------------

    def take_notices(self) -> None:
        """Apply the engine's lease-ended notices: an evicted lease must be the oldest live one of its bucket."""
        notices, self.engine.leases.notices = self.engine.leases.notices, []
        for _token, message in notices:
            lease, reason = message["lease"], message["reason"]
            assert reason == "evicted", message
            bucket = message["bucket"]
            oldest = next(iter(self.leases[bucket]), None)
            assert oldest == lease, f"evicted {lease}, but the oldest lease of {bucket} is {oldest}"
            del self.leases[bucket][lease]
            self.live.discard(lease)
            self.gone.add(lease)

    def record_grant(self, endpoint: str, cost: Fraction, decision: Decision) -> None:
        lease = decision.extra.get("lease") if decision.extra else None
        for name in BUCKETS[endpoint]:
            if name in HOLDINGS:
                assert lease is not None, f"a grant on {endpoint} holds {name} but carries no lease"
                self.take_notices()
                if cost:
                    self.leases[name][lease] = cost
                limit = self.spec(name).concurrent
                assert self.held(name) <= limit, f"{self.held(name)} held on {name} by {self.leases[name]}, limit {limit}"
            elif cost:
                limits = tuple(exact(rate.limit) for rate in self.spec(name).rates)
                self.grants[name].append((self.real, cost, limits))
                self.check_window(name)
        if lease is None:
            assert not set(BUCKETS[endpoint]) & set(HOLDINGS)
        else:
            self.live.add(lease)

    def check_window(self, name: str) -> None:
        """Check the newest grant on ``name`` against the windows before it (sliding log) or the GCRA bound."""
        t, _, limits = self.grants[name][-1]
        spec = self.spec(name)
        if name == "g":
            rate = spec.rates[0]
            interval = emission_interval(rate)
            tolerance = scale_down(rate.capacity, interval)
            total = Fraction(0)
            for earlier, cost, _ in reversed(self.grants[name]):
                total += cost
                assert total * interval <= t - earlier + tolerance, (
                    f"GCRA {rate}: {total} granted in {t - earlier} ns, more than burst + interval / T allows: {self.grants[name]}"
                )
            return
        for rate, limit in zip(spec.rates, limits):
            span = rate.window + rate.margin
            total = self.counted(name, span, t)
            assert total <= limit, (
                f"bucket {name} rate {rate}: {total} granted within {span} ns up to {t - T0} (limit then {limit}); "
                f"grants since reset: {[(at - T0, str(c)) for at, c, _ in self.grants[name]]}"
            )

    # -- rules ------------------------------------------------------------------------------

    @rule(endpoint=st.sampled_from(sorted(BUCKETS)), cost=RATE_COSTS, wait=WAITS)
    def acquire(self, endpoint: str, cost: Any, wait: int | None) -> None:
        self.decide(endpoint, cost, wait)

    @rule(endpoint=st.sampled_from(sorted(BUCKETS)), costs=st.lists(RATE_COSTS, min_size=2, max_size=6))
    def burst(self, endpoint: str, costs: list[Any]) -> None:
        """Acquire several times at one instant, without waiting (fills windows, reaches their edges)."""
        for cost in costs:
            self.decide(endpoint, cost, None)

    @rule(
        endpoints=st.lists(st.sampled_from(sorted(BUCKETS)), min_size=2, max_size=4),
        costs=st.lists(RATE_COSTS, min_size=4, max_size=4),
        wait=st.integers(S, 3 * S),
    )
    def queue_up(self, endpoints: list[str], costs: list[Any], wait: int) -> None:
        """Acquire on several endpoints at one instant, each willing to wait: queues that compete for buckets."""
        for endpoint, cost in zip(endpoints, costs):
            self.decide(endpoint, cost, wait)

    @rule(endpoint=st.sampled_from(sorted(BUCKETS)), cost=RATE_COSTS, wait=WAITS, step=st.integers(0, S // 5))
    def acquire_a_little_later(self, endpoint: str, cost: Any, wait: int | None, step: int) -> None:
        self.now += step
        self.decide(endpoint, cost, wait)

    def decide(self, endpoint: str, cost: Any, wait: int | None) -> None:
        """Acquire ``cost`` on ``endpoint`` (waiting ``wait`` ns at most) and check the answer against the model."""
        if endpoint in LEASED:
            cost = min(cost, 3) if type(cost) is int else 1  # slots: whole numbers
        names = BUCKETS[endpoint]
        deadline = None if wait is None else self.now + wait
        want = exact(cost)
        capacity = self.capacity(endpoint)
        ahead = any(set(names) & set(BUCKETS[other]) for other in self.waiters.values())
        expected = None
        if self.exact_regime(names) and not ahead:
            waits = [self.log_wait(n, want) if n in LOGS else self.holding_wait(n, want) for n in names]
            longest = max(waits)
            if not longest:
                expected = ("grant", 0)
            elif deadline is not None and deadline > self.now and (longest >= NEVER or self.now + longest <= deadline):
                expected = ("wait", longest)
            else:
                expected = ("deny", longest)
        before = self.snapshot()
        self.tokens += 1
        try:
            result = self.engine.acquire("k", endpoint, cost, self.now, deadline, token=("conn", self.tokens))
        except CostTooLarge:
            assert capacity is not None and want > capacity, f"cost {cost} refused on {endpoint} (capacity {capacity})"
            assert self.snapshot() == before, "a refused acquire charged something"
            return
        assert capacity is None or want <= capacity, f"cost {cost} over the capacity {capacity} of {endpoint} was not refused"
        if isinstance(result, Waiter):
            assert self.snapshot() == before, "an acquire that waits charged something"
            assert expected is None or expected[0] == "wait", f"expected {expected}, the engine queued {result}"
            self.waiters[result] = endpoint
        elif result.granted:
            assert expected is None or expected[0] == "grant", f"expected {expected}, the engine granted {result}"
            self.record_grant(endpoint, want, result)
        else:
            assert self.snapshot() == before, f"a denial charged something: {result}"
            assert expected is None or expected == ("deny", result.retry_after), f"expected {expected}, got {result}"
            assert result.retry_after > 0, f"denied with nothing to wait for: {result}"

    @rule()
    def service(self) -> None:
        self.serve()

    @rule(step=FORWARD)
    def advance(self, step: int) -> None:
        self.now += step

    @precondition(lambda self: self.jumpy)
    @rule(back=st.integers(1, S // 4))
    def step_back(self, back: int) -> None:
        self.now -= back
        self.behind += back
        self.stepped_back = True

    @rule()
    def to_the_wake_time(self) -> None:
        """Go to the time ``service`` asked to be called again, exactly, and serve."""
        if self.wake is not None and self.wake > self.now:
            self.now = self.wake
        self.serve()

    @rule(a=st.sampled_from(A_LIMITS), c=st.sampled_from(C_LIMITS))
    def reload(self, a: str, c: int) -> None:
        self.limits = (a, c)
        self.table = TABLES[self.limits]
        answers = self.engine.reload(self.table, self.now)
        answered = set()
        for waiter, result in answers:
            assert waiter not in self.done, f"{waiter} answered twice"
            assert isinstance(result, RequestError), f"a reload answered {waiter} with {result}"
            self.done.add(waiter)
            answered.add(waiter)
            endpoint = self.waiters.pop(waiter)
            capacity = self.capacity(endpoint)
            assert isinstance(result, CostTooLarge) and capacity is not None and exact(waiter.cost) > capacity, result
        for waiter, endpoint in self.waiters.items():
            capacity = self.capacity(endpoint)
            assert capacity is None or exact(waiter.cost) <= capacity, f"{waiter} can no longer be granted but still waits"

    @rule(endpoint=st.one_of(st.none(), st.sampled_from(sorted(BUCKETS))))
    def reset(self, endpoint: str | None) -> None:
        names = self.engine.reset("k", endpoint, self.now)
        for _owner, name in names:
            if name in self.grants:
                self.grants[name] = []
            self.reported.discard(name)
        expected = set(BUCKETS[endpoint]) if endpoint else set(self.table.key("k").buckets)
        assert {name for _, name in names} == expected

    @precondition(lambda self: self.jumpy)
    @rule(
        endpoint=st.sampled_from(sorted(BUCKETS)),
        kind=st.sampled_from(["429", "remaining", "limit"]),
        seconds=st.sampled_from([0, 1, S // 10, S, 3 * S]),
        remaining=st.sampled_from([0, 1, Decimal("0.5")]),
    )
    def report(self, endpoint: str, kind: str, seconds: int, remaining: Any) -> None:
        before_leases = {name: dict(held) for name, held in self.leases.items()}
        if kind == "429":
            apply_report(self.engine, "k", endpoint, None, 429, self.now, retry_after=seconds or None)
        elif kind == "remaining":
            apply_report(self.engine, "k", endpoint, None, 200, self.now, remaining=remaining, reset_at=self.now + seconds)
        else:  # a provider's limit below the table's: caps the costs that can pass
            apply_report(self.engine, "k", endpoint, None, 200, self.now, remaining=remaining, limit=1)
        self.reported |= set(BUCKETS[endpoint])
        assert self.leases == before_leases and not self.engine.leases.notices, "a report ended a lease"

    @precondition(lambda self: self.live or self.gone)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        lease = data.draw(st.sampled_from(sorted(self.live | self.gone)), label="lease")
        if lease in self.gone:
            try:
                self.engine.release(lease, self.now)
            except UnknownLease:
                return
            raise AssertionError(f"released {lease}, which had ended")
        assert self.engine.release(lease, self.now) == [lease]
        for held in self.leases.values():
            held.pop(lease, None)
        self.live.discard(lease)
        self.gone.add(lease)

    @precondition(lambda self: self.waiters)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        waiter = data.draw(st.sampled_from(sorted(self.waiters, key=lambda w: w.seq)), label="waiter")
        self.engine.cancel(waiter)
        del self.waiters[waiter]
        self.done.add(waiter)

    # -- serving ----------------------------------------------------------------------------

    def expected_pass(self) -> set[Waiter] | None:
        """Return the waiters a service pass at now must grant, or None outside the exact regime.

        In queue order (all priorities are 0: arrival order), a waiter is
        granted when none of its buckets is held by an earlier waiter of this
        pass and each allows its cost; every bucket that refuses it is then held.
        Waiters whose deadline is more than ``DEADLINE_SLACK`` past are denied first.
        """
        names = {name for endpoint in self.waiters.values() for name in BUCKETS[endpoint]}
        if not self.exact_regime(tuple(names - {"g"})):
            return None
        saved = {name: list(grants) for name, grants in self.grants.items()}
        extra = {name: Fraction(0) for name in HOLDINGS}
        granted = set()
        held: set[str] = set()
        try:
            for waiter in sorted(self.waiters, key=lambda w: w.seq):
                endpoint = self.waiters[waiter]
                if endpoint == "gcra" or waiter.deadline <= self.now - DEADLINE_SLACK:
                    continue
                stuck = False
                cost = exact(waiter.cost)
                for name in BUCKETS[endpoint]:
                    if name in held:
                        stuck = True
                        continue
                    needed = self.log_wait(name, cost) if name in LOGS else self.holding_wait(name, cost, extra[name])
                    if needed:
                        stuck = True
                        held.add(name)
                if not stuck:
                    granted.add(waiter)
                    for name in BUCKETS[endpoint]:
                        if name in HOLDINGS:
                            extra[name] += cost
                        elif cost:
                            self.grants[name].append((self.real, cost, ()))
        finally:
            self.grants = saved
        return granted

    def serve(self) -> None:
        expected = self.expected_pass()
        answers, self.wake = self.engine.service(self.now)
        self.take_notices()
        granted: dict[Waiter, str] = {}
        for waiter, result in answers:
            assert waiter not in self.done, f"{waiter} answered twice (or after it was cancelled)"
            assert waiter in self.waiters, f"{waiter} answered but never queued"
            self.done.add(waiter)
            endpoint = self.waiters.pop(waiter)
            assert isinstance(result, Decision), f"service answered {waiter} with {result!r}"
            if result.granted:
                assert self.now <= waiter.deadline + DEADLINE_SLACK, f"{waiter} granted {self.now - waiter.deadline} ns past its deadline"
                granted[waiter] = endpoint
                self.record_grant(endpoint, exact(waiter.cost), result)
            else:
                assert result.reason == "timeout" and waiter.deadline <= self.now, f"{waiter} denied before its deadline: {result}"
        for waiter in self.waiters:
            assert waiter.deadline > self.now, f"{waiter} outlived its deadline {waiter.deadline - self.now} ns ago"
        if expected is not None:
            served = {waiter for waiter, endpoint in granted.items() if endpoint != "gcra"}
            assert served == expected, (
                f"service at {self.now - T0} granted {sorted(w.seq for w in served)}, the model {sorted(w.seq for w in expected)}"
            )

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def the_engine_holds_what_the_model_holds(self) -> None:
        assert self.engine.waiters == len(self.waiters)
        key = self.table.key("k")
        for name in HOLDINGS:
            spec = key.buckets[name]
            bucket = self.engine.bucket(key.owner(spec), spec)
            assert bucket.holding is not None and bucket.holding.held == self.held(name)
            assert list(bucket.holding.by_lease) == list(self.leases[name])
        assert set(self.engine.leases.by_id) == self.live


TestEngineModel = EngineModel.TestCase
TestEngineModel.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_a_cost_over_a_concurrency_limit_is_cost_too_large_not_queued():
    """Found by this model (fixed in fcd06f9): a cost over ``concurrent`` was queued, holding the line until its deadline.

    docs/protocol.md: cost-too-large is "the cost exceeds what the bucket can ever grant; never queued".
    """
    for endpoint in ("conc", "evict"):
        engine = Engine(TABLES[(A_LIMITS[0], 2)])
        try:
            result = engine.acquire("k", endpoint, 3, T0, deadline=T0 + 3600 * S, token="t")
        except CostTooLarge:
            result = None
        assert result is None, f"{endpoint}: cost 3 on concurrent = 2 gave {result!r}"
        assert engine.acquire("k", endpoint, 1, T0, token="u").granted


def test_a_provider_limit_below_a_waiting_cost_does_not_break_service():
    """Found by this model (fixed in fcd06f9): a report lowering a limit below a waiting cost made ``service`` raise.

    ``SlidingLog._earliest`` raised ValueError for the cost over the learned
    limit, out of ``service``: in the daemon, the scheduler task, which ended it.
    """
    engine = Engine(TABLES[("3", 2)])
    assert engine.acquire("k", "one", 3, T0).granted
    waiter = engine.acquire("k", "one", 2, T0 + 1, deadline=T0 + 5 * S)
    assert isinstance(waiter, Waiter)
    apply_report(engine, "k", "one", None, 200, T0 + 2, limit=1)
    answers, _ = engine.service(T0 + 3)
    assert [(w, type(r).__name__) for w, r in answers] in ([], [(waiter, "CostTooLarge")])
    late = engine.acquire("k", "one", 2, T0 + 4)
    assert isinstance(late, Waiter) or not late.granted


def test_a_cost_over_a_provider_learned_limit_does_not_hold_the_line():
    """KNOWN BUG (reported): a cost over a provider-learned limit waits out its whole ``wait`` and blocks the bucket.

    After a report says the limit is 1 (table: 3), ``Bucket.cap`` makes cost 2
    wait NEVER, so with ``wait`` it is queued; as the bucket's blocker it makes
    every later cost-1 acquire ``queue``-denied (retry_after None) although the
    bucket has room, for up to the whole wait (a day). It can never be granted
    before a reload or reset lifts the cap: it should be refused at once
    (cost-too-large, or denied), or at least not keep others out.
    """
    engine = Engine(TABLES[("3", 2)])
    apply_report(engine, "k", "one", None, 200, T0, limit=1)
    engine.acquire("k", "one", 2, T0 + 1, deadline=T0 + 3600 * S)  # refused or queued, either way…
    later = engine.acquire("k", "one", 1, T0 + 2 * S)
    assert later.granted, f"a cost of 1 within the provider's limit of 1 is kept out: {later}"
