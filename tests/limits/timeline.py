"""Table-driven runs of a limiter on a synthetic timeline ``t0 + k * unit``; failures name the step."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable

from ratelimitd.limits import Rate

S = 10**9  # ns per second
MS = 10**6
# an engine time aligned to every window the tables use (1 s, 10 s, 1 min): 2023-11-14T22:14:00Z
T0 = 1_700_000_040 * S

D = Decimal


def s(seconds: float | int | str) -> int:
    """Return ``seconds`` (int, or a decimal string for fractions) as exact ns."""
    return int(Decimal(str(seconds)) * S)


def rate(limit: Any, window: int, margin: int = 0, burst: Any = None) -> Rate:
    return Rate(limit, window, margin, burst)


# A step: (name, seconds after T0 as str/int, op, argument, expected).
#   ops: "acquire" (wait, and charge when it said 0; expected: the wait in seconds),
#        "wait" (expected seconds), "charge", "charge_at" (argument: (cost, seconds)),
#        "refund", "remaining", "used", "reset_after" (expected seconds),
#        "restrict" (argument: (remaining, reset seconds)), "retune" (argument: a Rate),
#        "roundtrip" (dump now and go on with a limiter loaded from it at the same time)
Step = tuple[str, Any, str, Any, Any]


def run(limiter: Any, steps: Iterable[Step], t0: int = T0) -> Any:
    """Play ``steps`` on ``limiter``; assert each expected value with the step's name. Returns the limiter."""
    for name, at, op, argument, expected in steps:
        now = t0 + s(at)
        where = f"step {name!r} at t0+{at}s: {op}({argument!r})"
        if op == "acquire":
            got: Any = limiter.wait(argument, now)
            if got == 0:
                limiter.charge(argument, now)
            assert got == s(expected), f"{where} waited {got / S}s, expected {expected}s ({limiter!r})"
        elif op == "wait":
            got = limiter.wait(argument, now)
            assert got == s(expected), f"{where} = {got / S}s, expected {expected}s ({limiter!r})"
        elif op == "reset_after":
            got = limiter.reset_after(now)
            assert got == s(expected), f"{where} = {got / S}s, expected {expected}s ({limiter!r})"
        elif op in ("remaining", "used"):
            got = getattr(limiter, op)(now)
            assert got == expected, f"{where} = {got!r}, expected {expected!r} ({limiter!r})"
        elif op in ("charge", "refund"):
            getattr(limiter, op)(argument, now)
        elif op == "charge_at":
            cost, stamp = argument
            limiter.charge_at(cost, t0 + s(stamp))
        elif op == "restrict":
            remaining, reset = argument
            limiter.restrict(remaining, s(reset), now)
        elif op == "retune":
            limiter.retune(argument, now)
        elif op == "roundtrip":
            limiter = type(limiter).load(limiter.rate, limiter.dump(now), now)
        else:
            raise AssertionError(f"{where}: unknown op")
    return limiter
