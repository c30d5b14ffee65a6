"""LaserSell (seeds/000_8779cf3d9896ed31.txt) end to end: every limit of the seed through a real daemon and client.

The bundled ``lasersell`` preset is loaded as users load it (``include = ["lasersell"]``).
A stream session is a lease on ``stream`` (or ``session``); wallets and positions are
taken inside it (``scopes={"lease": session}``), positions also per wallet
(``scopes={"wallet": …}``). Two tiers are added to the preset's provider with its
bucket kinds: ``shape``, whose per-wallet and per-session position limits differ so
that each can be the one refusing, and ``idle``, with a two-second inactivity
timeout for the 45 minutes; the real tiers' numbers are asserted through ``hello``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ratelimitd_client import Client, NotAvailable

from ..daemon import Daemon
from .support import bucket, ended_by_daemon, keys_table, module_daemon, rate_numbers, wait_for

TIERS = ("personal", "professional", "advanced")
# "Exit Intelligence Stream Limits by Tier" and "LimitsMsg Schema": the hello_ok `limits` object per tier
LIMITS = {
    "personal": {
        "hi_capacity": 256,
        "pnl_flush_ms": 100,
        "max_positions_per_session": 2,
        "max_wallets_per_session": 1,
        "max_positions_per_wallet": 2,
        "max_sessions_per_api_key": 1,
    },
    "professional": {
        "hi_capacity": 256,
        "pnl_flush_ms": 100,
        "max_positions_per_session": 500,
        "max_wallets_per_session": 5,
        "max_positions_per_wallet": 100,
        "max_sessions_per_api_key": 1,
    },
    "advanced": {
        "hi_capacity": 256,
        "pnl_flush_ms": 100,
        "max_positions_per_session": 20000,
        "max_wallets_per_session": 200,
        "max_positions_per_wallet": 100,
        "max_sessions_per_api_key": 1,
    },
}
# "Exit Intelligence Stream Limits by Tier": Inactivity timeout (seconds; None: "None"),
# Liquidity snapshots and Partner fees (offered or not)
INACTIVITY = {"personal": 45 * 60, "professional": None, "advanced": None}
OFFERED = {
    "personal": {"liquidity_snapshots": False, "partner_fees": False},
    "professional": {"liquidity_snapshots": True, "partner_fees": False},
    "advanced": {"liquidity_snapshots": True, "partner_fees": True},
}
# "REST API Rate Limits": 60 requests per minute on every published tier
REST_PER_MINUTE = 60

EXTRA_TIERS = """
[providers.lasersell.tiers.shape]
rest   = { rate = "60/1m" }
stream = { concurrent = 1 }
max_wallets_per_session   = { capacity = 3, per = "lease" }
max_positions_per_wallet  = { capacity = 2, per = "wallet" }
max_positions_per_session = { capacity = 3, per = "lease" }

[providers.lasersell.tiers.idle]
rest   = { rate = "60/1m" }
stream = { concurrent = 1, idle = "2s" }
max_wallets_per_session   = { capacity = 1, per = "lease" }
max_positions_per_wallet  = { capacity = 2, per = "wallet" }
max_positions_per_session = { capacity = 2, per = "lease" }
"""


def lasersell(tier: str) -> dict[str, str]:
    """Return the fields of a key of the lasersell preset on ``tier``."""
    return {"provider": "lasersell", "tier": tier}


KEYS = {
    **{tier: lasersell(tier) for tier in TIERS},
    **{f"rest_{tier}": lasersell(tier) for tier in TIERS},
    **{f"sessions_{tier}": lasersell(tier) for tier in TIERS},
    **{f"wallets_{tier}": lasersell(tier) for tier in TIERS},
    **{f"positions_{tier}": lasersell(tier) for tier in TIERS},
    "together": lasersell("shape"),
    "closing": lasersell("personal"),
    "inactive": lasersell("idle"),
}


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with module_daemon(keys_table("lasersell", KEYS, EXTRA_TIERS)) as running:
        yield running


@pytest.mark.parametrize("tier", TIERS)
def test_hello_returns_the_limits_object_of_the_keys_tier(daemon, tier: str) -> None:
    with Client(daemon.socket) as client:
        limits = client.hello(tier)["limits"]
        assert (limits["provider"], limits["tier"]) == ("lasersell", tier)
        assert {name: limits["info"][name] for name in LIMITS[tier]} == LIMITS[tier]
        reply = {"limits": limits}
        # the enforced buckets carry the same numbers as the object
        assert bucket(reply, "stream")["concurrent"] == LIMITS[tier]["max_sessions_per_api_key"]
        for name in ("max_wallets_per_session", "max_positions_per_wallet", "max_positions_per_session"):
            assert bucket(reply, name)["count_limit"] == LIMITS[tier][name], name
        assert bucket(reply, "stream").get("idle") == INACTIVITY[tier]
        assert {name: limits["info"][name] for name in OFFERED[tier]} == OFFERED[tier]


@pytest.mark.parametrize("tier", TIERS)
def test_rest_api_60_requests_per_minute_per_key_sliding_window(daemon, tier: str) -> None:
    key = f"rest_{tier}"
    with Client(daemon.socket) as client:
        assert rate_numbers(client.hello(key), "rest") == [(REST_PER_MINUTE, "1m")]
        assert all(client.acquire(key, "rest").granted for _ in range(REST_PER_MINUTE))
        over = client.acquire(key, "rest")
        assert (over.granted, over.scope) == (False, "rest")
        assert 59 < over.retry_after <= 60.1


@pytest.mark.parametrize("tier", TIERS)
def test_sessions_per_api_key(daemon, tier: str) -> None:
    key = f"sessions_{tier}"
    with Client(daemon.socket) as first, Client(daemon.socket) as second:
        session = first.acquire(key, "stream")
        assert session.granted
        for endpoint in ("stream", "session"):
            refused = second.acquire(key, endpoint)
            assert (refused.granted, refused.scope, refused.retry_after) == (False, "stream", None)
        assert session.lease_state.end_reason is None  # refused, not evicted
        first.release(session)
        assert second.acquire(key, "session").granted


@pytest.mark.parametrize("tier", TIERS)
def test_wallets_per_session(daemon, tier: str) -> None:
    cap = LIMITS[tier]["max_wallets_per_session"]
    key = f"wallets_{tier}"
    with Client(daemon.socket) as client:
        session = client.acquire(key, "stream")
        inside = {"lease": session.lease}
        wallets = [client.acquire(key, "wallet", scopes=inside) for _ in range(cap)]
        assert all(wallet.granted for wallet in wallets)
        over = client.acquire(key, "wallet", scopes=inside)
        assert (over.granted, over.scope, over.retry_after) == (False, "max_wallets_per_session", None)
        client.release(wallets[0])  # update_wallets: one fewer
        assert client.acquire(key, "wallet", scopes=inside).granted


def test_positions_per_wallet_and_per_session_together(daemon) -> None:
    """Tier ``shape``: 2 positions per wallet, 3 per session; a position takes from both, all or nothing."""
    with Client(daemon.socket) as client:
        session = client.acquire("together", "stream")

        def position(wallet: str):
            return client.acquire("together", "position", scopes={"lease": session.lease, "wallet": wallet})

        first, second = position("W1"), position("W1")
        assert first.granted and second.granted
        by_wallet = position("W1")
        assert (by_wallet.granted, by_wallet.scope, by_wallet.retry_after) == (False, "max_positions_per_wallet", None)
        assert by_wallet.buckets["max_positions_per_session"][0] == 1  # the session had room
        assert position("W2").granted
        by_session = position("W2")
        assert (by_session.granted, by_session.scope) == (False, "max_positions_per_session")
        assert by_session.buckets["max_positions_per_wallet"][0] == 1  # the wallet had room
        counts = bucket(client.show("together"), "max_positions_per_wallet")["scopes"]
        assert {value: count["held"] for value, count in counts.items()} == {"wallet=W1": 2, "wallet=W2": 1}
        client.release(first)  # close_position frees its place in its wallet and its session
        assert position("W2").granted
        assert client.connections == 1  # "The stream connection remains open"


@pytest.mark.parametrize("tier", TIERS)
def test_positions_per_wallet_and_per_session_numbers(daemon, tier: str) -> None:
    """Fill the session with full wallets (a request's cost is its number of positions), then one more."""
    per_wallet = LIMITS[tier]["max_positions_per_wallet"]
    per_session = LIMITS[tier]["max_positions_per_session"]
    key = f"positions_{tier}"
    with Client(daemon.socket) as client:
        session = client.acquire(key, "stream")

        def positions(wallet: str, count: int):
            return client.acquire(key, "position", count, scopes={"lease": session.lease, "wallet": wallet})

        assert positions("W0", per_wallet).granted
        over_wallet = positions("W0", 1)
        assert not over_wallet.granted and over_wallet.buckets["max_positions_per_wallet"][0] == 0
        if per_session > per_wallet:
            assert over_wallet.scope == "max_positions_per_wallet"
        wallets = per_session // per_wallet
        assert all(positions(f"W{index}", per_wallet).granted for index in range(1, wallets))
        over_session = positions(f"W{wallets}", 1)
        assert (over_session.granted, over_session.scope) == (False, "max_positions_per_session")


def test_positions_and_wallets_end_with_their_session(daemon) -> None:
    with Client(daemon.socket) as client:
        session = client.acquire("closing", "stream")
        wallet = client.acquire("closing", "wallet", scopes={"lease": session.lease})
        position = client.acquire("closing", "position", scopes={"lease": session.lease, "wallet": "W1"})
        assert wallet.granted and position.granted
        released = client.release(session)
        assert set(released) == {session.lease, wallet.lease, position.lease} and released[-1] == session.lease
        assert bucket(client.show("closing"), "max_positions_per_wallet")["scopes"] == {}
        again = client.acquire("closing", "stream")
        assert client.acquire("closing", "position", 2, scopes={"lease": again.lease, "wallet": "W1"}).granted


@pytest.mark.parametrize("tier", TIERS)
def test_liquidity_snapshots_and_partner_fees_are_offered_per_tier(daemon, tier: str) -> None:
    with Client(daemon.socket) as client:
        for endpoint, offered in OFFERED[tier].items():
            if offered:
                assert client.acquire(tier, endpoint).granted, endpoint
            else:
                with pytest.raises(NotAvailable):
                    client.acquire(tier, endpoint)


def test_inactivity_timeout_ends_a_personal_session_and_its_holder_is_told(daemon) -> None:
    """Tier ``idle``: 2 s for the 45 minutes. A renewed session stays; an inactive one ends, and a new one is granted.

    The new session's acquire waits in the daemon (``wait=5``) and is granted when the inactive one ends.
    """
    with Client(daemon.socket) as holder, Client(daemon.socket) as other:
        session = holder.acquire("inactive", "session")
        assert session.granted
        assert holder.poll(timeout=1.0) == 0  # active: renewed within the timeout
        assert holder.renew(session)["renewed"] is True
        assert holder.poll(timeout=1.2) == 0  # past the timeout since the start, alive because it was renewed
        assert not other.acquire("inactive", "session").granted

        answers = []
        waiter = threading.Thread(target=lambda: answers.append(other.acquire("inactive", "session", wait=5)))
        waiter.start()
        assert ended_by_daemon(holder, session.lease_state) == "idle"
        waiter.join(10)
        assert len(answers) == 1 and answers[0].granted


def test_inactivity_timeout_ends_a_session_on_its_own(start_daemon) -> None:
    """Nothing but the timeout happens on this daemon: the session's deadline alone must end it."""
    daemon = start_daemon(keys_table("lasersell", {"k": lasersell("idle")}, EXTRA_TIERS))
    with Client(daemon.socket) as holder:
        # start_daemon's probe has gone: nothing else wakes the daemon
        wait_for(lambda: holder.status()["connections"] == 1)
        session = holder.acquire("k", "session")
        assert session.granted
        assert ended_by_daemon(holder, session.lease_state) == "idle"
