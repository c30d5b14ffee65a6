"""A restart, clean or kill -9, never leads to more grants than the limits allow; a clean one loses nothing.

Every test runs the real daemon with its real state file and restarts it for real.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from decimal import Decimal

import pytest
from ratelimitd_client import Client

from ..e2e.grants import busiest_window, run_workers

TABLE = """
[providers.api]
margin = "100ms"
[providers.api.endpoints]
"rest" = ["rest"]
"credits" = ["monthly"]
[providers.api.tiers.basic]
rest = { rate = "20/2s" }
monthly = { rate = "10000/30d" }
[keys.k]
provider = "api"
tier = "basic"
"""


def test_clean_restart_keeps_exact_counters(start_daemon):
    daemon = start_daemon(TABLE)
    with Client(socket=daemon.socket) as client:
        assert client.acquire("k", "credits", cost=9000).granted
        assert client.acquire("k", "credits", cost=Decimal("0.3")).granted
        assert client.acquire("k", "rest", cost=5).granted
    assert daemon.stop() == 0
    daemon.start()
    with Client(socket=daemon.socket) as client:
        monthly = client.show("k")["buckets"]
        used = {bucket["name"]: bucket["rates"][0]["used"] for bucket in monthly}
        assert used == {"monthly": Decimal("9000.3"), "rest": 5}
        status = client.status()["persistence"]
        assert status["recovery"]["clean"] is True and status["recovery"]["restored"] == 2
        assert client.acquire("k", "credits", cost=Decimal("999.7")).granted
        assert not client.acquire("k", "credits", cost=Decimal("0.1")).granted


@pytest.mark.parametrize("durability", ["batched", "strict"])
def test_kill_9_at_random_moments_never_over_grants(start_daemon, short_tmp, durability):
    daemon = start_daemon(TABLE, "--durability", durability)
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    kills = []

    def killer() -> None:
        time.sleep(2.0 + chance.uniform(0.5, 1.5))  # the workers start 2 s after launch
        for _ in range(3):
            time.sleep(chance.uniform(0.3, 1.5))
            daemon.kill()
            kills.append(time.time())
            daemon.start()

    thread = threading.Thread(target=killer)
    thread.start()
    per_process, _until = run_workers(daemon.socket, "k", [["rest"]] * 8, 8.0, short_tmp)
    thread.join()
    times = [stamp for grants in per_process for stamp, _ in grants]
    assert len(kills) == 3
    assert busiest_window(times, 2.0) <= 20, f"over-granted across kill -9 (seed {seed}, kills at {kills})"
    assert len(times) >= 40, f"the daemon barely served across the restarts: {len(times)} grants"
    with Client(socket=daemon.socket) as client:
        recovery = client.status()["persistence"]["recovery"]
    assert recovery["clean"] is False and recovery["previous_outcome"] == "crashed"
    if durability == "batched":
        assert recovery["buckets_held"] >= 1
    else:
        assert recovery["buckets_held"] == 0  # nothing granted was ever unrecorded: nothing to hold back


def test_crash_holds_batched_buckets_for_one_window_and_status_says_so(start_daemon):
    daemon = start_daemon(TABLE)
    with Client(socket=daemon.socket) as client:
        assert client.acquire("k", "rest").granted
    daemon.kill()
    daemon.start()
    with Client(socket=daemon.socket) as client:
        permit = client.acquire("k", "rest")
        assert not permit.granted and 1.5 < permit.retry_after <= 2.1
        recovery = client.status()["persistence"]["recovery"]
        assert recovery["clean"] is False and recovery["buckets_held"] == 2
        assert 0 < recovery["longest_hold_s"] <= 30 * 86400 + 1


def test_a_corrupt_state_file_stops_the_daemon_from_starting(start_daemon, short_tmp):
    directory = short_tmp / "corrupt"
    directory.mkdir()
    state = directory / "state.db"
    state.write_bytes(b"this is not a database" * 100)
    from ..daemon import Daemon

    daemon = Daemon(directory, TABLE)
    result = subprocess.run(daemon.args, capture_output=True, text=True, timeout=30)
    assert result.returncode == 73
    assert str(state) in result.stderr and "mv" in result.stderr
    assert state.read_bytes().startswith(b"this is not a database")  # nothing overwritten


def test_a_second_daemon_on_the_same_state_file_refuses_to_start(start_daemon):
    first = start_daemon(TABLE)
    from ..daemon import Daemon

    second = Daemon(first.directory, TABLE)
    second.socket = str(first.directory / "other.sock")
    result = subprocess.run(second.args, capture_output=True, text=True, timeout=30)
    assert result.returncode == 73
    assert f"pid {first.process.pid}" in result.stderr and first.state in result.stderr


def test_ratelimitctl_reads_the_state_file_of_a_dead_daemon(start_daemon):
    import json

    from click.testing import CliRunner

    from ratelimitd.cli.ctl import main as ratelimitctl

    daemon = start_daemon(TABLE)
    with Client(socket=daemon.socket) as client:
        assert client.acquire("k", "rest").granted
        flushed = client.status()["persistence"]["flushes"]
        while client.status()["persistence"]["flushes"] < flushed + 2:  # the grant is surely on disk
            time.sleep(0.01)
    daemon.kill()
    result = CliRunner().invoke(ratelimitctl, ["status", "--state", daemon.state])
    assert result.exit_code == 0, result.output
    assert "not running" in result.output and "NOT cleanly" in result.output and "  k  " in result.output
    report = json.loads(CliRunner().invoke(ratelimitctl, ["status", "--state", daemon.state, "--json"]).output)
    assert report["clean"] is False and report["daemon_pid"] is None
    assert report["buckets"]["owners"]["k"]["buckets"] == ["rest"]
    missing = CliRunner().invoke(ratelimitctl, ["status", "--state", daemon.state + ".nope"])
    assert missing.exit_code == 1 and "no state file at" in missing.output
