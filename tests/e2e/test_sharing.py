"""Eight processes share one key through a real daemon: never over the limit, never far under it, nobody starved.

This is the product's promise measured the way the provider sees it: every
grant's wall-clock time is recorded by the client process the moment its
permit arrives, and no window of the configured length may hold more grants
than the limit.
"""

from __future__ import annotations

import pytest

from .grants import busiest_window, run_workers, utilisation

PROCESSES = 8
SECONDS = 6.5

TABLE = """
[providers.api]
margin = "100ms"
[providers.api.endpoints]
"rest" = ["rest"]
"quick" = ["burst"]
"heavy" = { buckets = ["standard", "heavy"] }
"light" = ["standard"]
[providers.api.tiers.basic]
rest = { rate = "20/2s" }
burst = { rate = ["4/1s", "10/3s"] }
standard = { rate = "20/2s" }
heavy = { rate = "8/2s" }
[keys.shared]
provider = "api"
tier = "basic"
"""


@pytest.fixture
def daemon(start_daemon):
    return start_daemon(TABLE)


def _assert_fair(per_process: list[list[tuple[float, str]]]) -> None:
    counts = [len(grants) for grants in per_process]
    fair_share = sum(counts) / len(counts)
    assert min(counts) >= fair_share / 2, f"a process was starved: grants per process {counts}"


def test_eight_processes_never_exceed_a_rolling_window_and_use_it_fully(daemon, short_tmp):
    per_process, until = run_workers(daemon.socket, "shared", [["rest"]] * PROCESSES, SECONDS, short_tmp)
    times = [stamp for grants in per_process for stamp, _ in grants]
    assert busiest_window(times, 2.0) <= 20
    assert utilisation(times, 20, 2.0, until) >= 0.90, f"{len(times)} grants"
    _assert_fair(per_process)


def test_per_second_and_per_window_both_hold(daemon, short_tmp):
    per_process, until = run_workers(daemon.socket, "shared", [["quick"]] * PROCESSES, SECONDS, short_tmp)
    times = [stamp for grants in per_process for stamp, _ in grants]
    assert busiest_window(times, 1.0) <= 4
    assert busiest_window(times, 3.0) <= 10
    assert utilisation(times, 10, 3.0, until) >= 0.90, f"{len(times)} grants"
    _assert_fair(per_process)


def test_heavy_endpoint_charges_both_buckets_and_light_calls_fill_the_rest(daemon, short_tmp):
    plans = [["heavy"]] * (PROCESSES // 2) + [["light"]] * (PROCESSES // 2)
    per_process, until = run_workers(daemon.socket, "shared", plans, SECONDS, short_tmp)
    grants = [grant for process in per_process for grant in process]
    standard = [stamp for stamp, _ in grants]
    heavy = [stamp for stamp, endpoint in grants if endpoint == "heavy"]
    assert busiest_window(standard, 2.0) <= 20
    assert busiest_window(heavy, 2.0) <= 8
    # heavy calls compete with light ones for the standard bucket in arrival order: not starved
    assert len(heavy) >= 2 * 8, f"only {len(heavy)} heavy grants in {SECONDS} s"
    assert utilisation(standard, 20, 2.0, until) >= 0.90, f"{len(standard)} grants"
