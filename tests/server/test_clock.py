"""The daemon's clock: engine time follows the monotonic clock, so a wall-clock step during a run changes nothing.

The wall clock is read once, when the server starts; a later step of it (NTP,
a manual `date`) must neither shorten a window nor stretch one. Time here is a
MockClock, and the wall clock is stepped by replacing `time.time_ns`.
"""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

from ratelimitd.engine import Engine
from ratelimitd.server.clock import Clock
from ratelimitd.tiers import load_text

TABLE = """
[providers.api]
margin = "0ms"
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "2/10s" }
[keys.k]
provider = "api"
tier = "basic"
"""


@pytest.mark.parametrize("step", [-3600, 3600])
async def test_a_wall_clock_step_during_a_run_neither_shortens_nor_stretches_a_window(monkeypatch, step, autojump_clock):
    clock = Clock()
    engine = Engine(load_text(TABLE))
    assert engine.acquire("k", "rest", 2, clock.now()).granted
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + step * 1_000_000_000)
    monkeypatch.setattr(time, "time", lambda: real() / 1e9 + step)
    await trio.sleep(9.999)
    assert not engine.acquire("k", "rest", 1, clock.now()).granted  # a forward step freed nothing early
    await trio.sleep(0.001)
    assert engine.acquire("k", "rest", 1, clock.now()).granted  # a backward step held nothing longer


async def test_engine_time_is_unix_time_read_once(autojump_clock):
    before = time.time_ns()
    clock = Clock()
    start = clock.now()
    assert before <= start <= time.time_ns() + 1_000_000
    await trio.sleep(5)
    assert clock.now() - start == 5_000_000_000
