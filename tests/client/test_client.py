"""The blocking Client against a scripted fake daemon that answers with the golden frames."""

from __future__ import annotations

import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest

from ratelimitd_client import (
    ERRORS,
    Client,
    DaemonUnavailable,
    FrameTooLarge,
    Permit,
    ProtocolError,
    RateLimited,
    RequestFailed,
    UnknownKey,
)
from ratelimitd_client.protocol import ERROR_CODES

from .fake_daemon import FakeConnection, FakeDaemon, frame, granted, vector, with_id


@pytest.fixture
def sock_path(short_tmp: Path) -> str:
    return str(short_tmp / "rl.sock")


def golden(conn: FakeConnection, request: Any) -> None:
    """Answer each op with its golden reply, under the request's id."""
    op = request["op"]
    name = {"acquire": "acquire-granted"}.get(op, op)
    if op == "release":
        conn.send({"id": request["id"], "released": [request["lease"]]})
        return
    conn.send(frame("reply", name, request["id"]))


@pytest.fixture
def daemon(sock_path: str) -> Iterator[FakeDaemon]:
    with FakeDaemon(sock_path, golden) as fake:
        yield fake


def test_golden_session_sends_and_reads_the_golden_frames(daemon: FakeDaemon) -> None:
    """Ids 1..9 in the order of the golden vectors: every request is byte-exact, every reply read right."""
    with Client(daemon.path) as client:
        hello = client.hello()
        plain = client.acquire("research", "rest")
        waited = client.acquire("research", "rest", cost=5, wait=30, priority=1)
        fractional = client.acquire("struct-main", "webhook-event", cost=0.1)
        status = client.status()
        keys = client.keys()
        shown = client.show("research")
        reloaded = client.reload()
        reset = client.reset("research")
    names = ["hello", "acquire", "acquire-wait", "acquire-decimal-cost", "status", "keys", "show", "reload", "reset"]
    for received, name in zip(daemon.received, names, strict=True):
        assert received.frame == vector("request", name)["frame"], name
    assert hello == {k: v for k, v in vector("reply", "hello")["meaning"].items() if k != "id"}
    assert plain == Permit(True, 0.0, 59, "rest", 60.0, {"rest": (59, 60.0)}, None)
    assert waited.granted and fractional.granted
    assert status["reload_error"] is None and status["grants"] == 1200
    assert [k["key"] for k in keys] == ["research", "struct-main"]
    assert shown["buckets"][0]["rates"][0]["remaining"] == 57
    assert reloaded == {"reloaded": True, "config": "/etc/ratelimitd/tiers.toml", "keys": 3}
    assert reset == ["rest"]


def test_optional_fields_match_their_vectors(daemon: FakeDaemon) -> None:
    with Client(daemon.path) as client:
        client.reload("/etc/ratelimitd/tiers.toml")
        client.reset("research", "rest")
    for received, name in zip(daemon.received, ["reload-path", "reset-endpoint"], strict=True):
        assert received.message == with_id(vector("request", name)["meaning"], received.message["id"])


@pytest.mark.parametrize(
    "cost, tail",
    [
        (0.1, "c4822001"),  # 4([-1, 1]): a float goes through its shortest repr
        ("0.1", "c4822001"),
        (Decimal("0.1"), "c4822001"),
        (Decimal("0.10"), "c482210a"),  # 4([-2, 10]): the same amount, as written
    ],
)
def test_fractional_costs_are_sent_exactly(daemon: FakeDaemon, cost: object, tail: str) -> None:
    with Client(daemon.path) as client:
        client.acquire("struct-main", "webhook-event", cost=cost)
    (received,) = daemon.received
    sent = received.message["cost"]
    assert type(sent) is Decimal and sent == Decimal("0.1")
    assert received.frame.endswith(bytes.fromhex("64636f7374" + tail))


@pytest.mark.parametrize("cost, sent", [(None, None), (1, 1), (Decimal("2.0"), 2), ("3", 3), (0, 0)])
def test_integral_costs_are_sent_as_integers(daemon: FakeDaemon, cost: object, sent: object) -> None:
    with Client(daemon.path) as client:
        client.acquire("research", "rest", cost=cost)
    (message,) = daemon.messages
    assert message.get("cost") == sent and type(message.get("cost")) is type(sent)


@pytest.mark.parametrize("cost", [-1, float("nan"), "lots", True])
def test_bad_costs_are_refused_before_sending(daemon: FakeDaemon, cost: object) -> None:
    with Client(daemon.path) as client, pytest.raises(ValueError, match="cost"):
        client.acquire("research", "rest", cost=cost)
    assert daemon.messages == []


def test_denied_is_a_value(sock_path: str) -> None:
    def deny(conn: FakeConnection, request: Any) -> None:
        conn.send(frame("reply", "acquire-denied-multi", request["id"]))

    with FakeDaemon(sock_path, deny), Client(sock_path) as client:
        permit = client.acquire("houdini", "quote")
    assert not permit and permit.granted is False
    assert permit.retry_after == 41.5 and permit.scope == "quote-hour" and permit.remaining == 0
    assert permit.buckets == {"quote-minute": (2, 20.0), "quote-hour": (0, 41.5), "quote-day": (31, 3600.0)}


def test_permit_raises_rate_limited_with_the_denial(sock_path: str) -> None:
    def deny(conn: FakeConnection, request: Any) -> None:
        conn.send(frame("reply", "acquire-denied", request["id"]))

    with FakeDaemon(sock_path, deny), Client(sock_path) as client:
        with pytest.raises(RateLimited) as caught:
            with client.permit("research", "rest", wait=2):
                pytest.fail("the block must not run without a permit")
    error = caught.value
    assert error.retry_after == 12.5 and error.scope == "rest" and error.permit.granted is False
    assert str(error) == "rate limited: key 'research' endpoint 'rest' denied by bucket 'rest' after waiting 2 s; retry after 12.500 s"


def test_permit_yields_the_granted_permit(daemon: FakeDaemon) -> None:
    with Client(daemon.path) as client, client.permit("research", "rest") as permit:
        assert permit.granted and permit.remaining == 59
    assert [m["op"] for m in daemon.messages] == ["acquire"]  # no lease: nothing to release


def test_permit_releases_its_lease_on_exit_even_after_an_error(sock_path: str) -> None:
    def leases(conn: FakeConnection, request: Any) -> None:
        if request["op"] == "acquire":
            conn.send(granted(request["id"], lease="L-17"))
        else:
            conn.send({"id": request["id"], "released": [request["lease"]]})

    with FakeDaemon(sock_path, leases) as fake, Client(sock_path) as client:
        with pytest.raises(KeyError), client.permit("research", "ws") as permit:
            assert permit.lease == "L-17"
            raise KeyError("the body failed")
    assert [(m["op"], m.get("lease")) for m in fake.messages] == [("acquire", None), ("release", "L-17")]


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_error_replies_raise_the_class_of_their_code(sock_path: str, code: str) -> None:
    def refuse(conn: FakeConnection, request: Any) -> None:
        conn.send({"id": request["id"], "error": code, "message": f"refused with {code}"})

    with FakeDaemon(sock_path, refuse), Client(sock_path) as client:
        with pytest.raises(ERRORS[code]) as caught:
            client.acquire("research", "rest")
    assert caught.value.code == code and caught.value.message == f"refused with {code}"
    assert type(caught.value) is ERRORS[code] and isinstance(caught.value, RequestFailed)


def test_golden_error_reply_and_unknown_codes(sock_path: str) -> None:
    replies = iter([frame("reply", "error-unknown-key", 1), None])

    def refuse(conn: FakeConnection, request: Any) -> None:
        data = next(replies)
        conn.send(data if data is not None else {"id": request["id"], "error": "brand-new", "message": "new code"})

    with FakeDaemon(sock_path, refuse), Client(sock_path) as client:
        with pytest.raises(UnknownKey, match="unknown key 'reserch'"):
            client.show("reserch")
        with pytest.raises(RequestFailed) as caught:
            client.show("x")
    assert type(caught.value) is RequestFailed and caught.value.code == "brand-new"


def test_pushes_go_to_hooks_and_never_pass_for_replies(sock_path: str) -> None:
    push = vector("push", "push")

    def pushy(conn: FakeConnection, request: Any) -> None:
        conn.send(push["frame"], frame("reply", "acquire-granted", request["id"]), push["frame"])

    seen: list[dict[str, Any]] = []
    with FakeDaemon(sock_path, pushy), Client(sock_path) as client:
        client.on_push(seen.append)
        assert client.acquire("research", "rest").granted
        assert client.acquire("research", "rest").granted
    assert seen == [push["meaning"]] * 4


def test_a_failing_push_hook_loses_no_reply(sock_path: str, caplog: pytest.LogCaptureFixture) -> None:
    def pushy(conn: FakeConnection, request: Any) -> None:
        conn.send(vector("push", "push")["frame"], frame("reply", "acquire-granted", request["id"]))

    with FakeDaemon(sock_path, pushy), Client(sock_path) as client:
        client.on_push(lambda message: 1 / 0)
        assert client.acquire("research", "rest").granted
    assert "push hook" in caplog.text


def test_reconnects_after_the_daemon_closed_an_idle_connection(sock_path: str) -> None:
    def once_per_connection(conn: FakeConnection, request: Any) -> None:
        conn.send(granted(request["id"]))
        conn.close()  # a restart between two calls

    with FakeDaemon(sock_path, once_per_connection) as fake, Client(sock_path) as client:
        assert client.acquire("research", "rest").granted
        assert client.acquire("research", "rest").granted
    assert [r.connection for r in fake.received] == [1, 2]


def test_a_reply_lost_with_its_connection_is_asked_again_once(sock_path: str) -> None:
    def drop_first(conn: FakeConnection, request: Any) -> None:
        if conn.number == 1:
            conn.close()  # the daemon died holding the request
        else:
            conn.send(granted(request["id"]))

    with FakeDaemon(sock_path, drop_first) as fake, Client(sock_path) as client:
        assert client.acquire("research", "rest").granted
    first, second = fake.received
    assert (first.connection, second.connection) == (1, 2) and first.frame == second.frame


def test_a_connection_that_breaks_twice_is_reported(sock_path: str) -> None:
    def always_drop(conn: FakeConnection, request: Any) -> None:
        conn.close()

    with FakeDaemon(sock_path, always_drop) as fake, Client(sock_path) as client:
        with pytest.raises(DaemonUnavailable, match="twice"):
            client.acquire("research", "rest")
    assert len(fake.received) == 2


def test_no_socket_is_reported_at_once_with_the_path(sock_path: str) -> None:
    client = Client(sock_path)
    with pytest.raises(DaemonUnavailable) as caught:
        client.acquire("research", "rest")
    message = str(caught.value)
    assert sock_path in message and "RATELIMITD_SOCKET" in message and "no socket" in message
    assert caught.value.path == sock_path


def test_a_stale_socket_file_is_reported_as_refused(sock_path: str) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)  # bound, never listening: what a killed daemon leaves behind
    try:
        with pytest.raises(DaemonUnavailable, match="connection refused"):
            Client(sock_path).status()
    finally:
        stale.close()


def test_the_origin_of_the_path_is_named(sock_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATELIMITD_SOCKET", sock_path)
    with pytest.raises(DaemonUnavailable, match=r"\(from \$RATELIMITD_SOCKET\)"):
        Client().status()


def test_a_daemon_that_does_not_answer_times_out(sock_path: str) -> None:
    with FakeDaemon(sock_path, lambda conn, request: None), Client(sock_path, timeout=0.05) as client:
        with pytest.raises(DaemonUnavailable, match="no answer within 0.05 s"):
            client.status()


def test_the_read_timeout_covers_the_wait(sock_path: str) -> None:
    client = Client(sock_path, timeout=2)
    timeouts: list[float | None] = []

    def record(conn: FakeConnection, request: Any) -> None:
        timeouts.append(client._sock.gettimeout() if client._sock else None)  # the client blocks in recv meanwhile
        conn.send(granted(request["id"]))

    with FakeDaemon(sock_path, record), client:
        client.acquire("research", "rest", wait=30)
        client.acquire("research", "rest")
    assert timeouts == [32.0, 2.0]


def test_an_error_without_id_ends_the_connection(sock_path: str) -> None:
    def too_large(conn: FakeConnection, request: Any) -> None:
        if conn.number == 1:
            conn.send(frame("reply", "error-frame-too-large"))
            conn.close()
        else:
            conn.send(granted(request["id"]))

    with FakeDaemon(sock_path, too_large) as fake, Client(sock_path) as client:
        with pytest.raises(FrameTooLarge, match="65536"):
            client.acquire("research", "rest")
        assert client.acquire("research", "rest").granted  # a new connection
    assert [r.connection for r in fake.received] == [1, 2]


@pytest.mark.parametrize(
    "reply, match",
    [
        (b"\x00\x00\x00\x02\xff\xff", "cannot decode"),
        (b"\x00\x00\x00\x01\x01", "where a map was expected"),
        (b"\x00\x00\x00\x01\xa0", "neither 'id' nor 'push'"),
        (b"\x7f\xff\xff\xff", "over this client's maximum"),
    ],
)
def test_unreadable_replies_are_protocol_errors(sock_path: str, reply: bytes, match: str) -> None:
    with FakeDaemon(sock_path, lambda conn, request: conn.send(reply)), Client(sock_path) as client:
        with pytest.raises(ProtocolError, match=match):
            client.status()


def test_an_acquire_reply_that_is_no_permit_is_a_protocol_error(sock_path: str) -> None:
    with FakeDaemon(sock_path, lambda conn, request: conn.send({"id": request["id"], "granted": "yes"})):
        with Client(sock_path) as client, pytest.raises(ProtocolError, match="not a permit"):
            client.acquire("research", "rest")


def test_a_named_client_says_hello_on_each_connection(sock_path: str) -> None:
    def answer(conn: FakeConnection, request: Any) -> None:
        golden(conn, request)
        if request["op"] == "acquire":
            conn.close()

    with FakeDaemon(sock_path, answer) as fake, Client(sock_path, name="nightly-sync/1.2") as client:
        assert client.acquire("research", "rest").granted
        assert client.acquire("research", "rest").granted
    assert [(m["op"], m.get("client")) for m in fake.messages] == [
        ("hello", "nightly-sync/1.2"),
        ("acquire", None),
        ("hello", "nightly-sync/1.2"),
        ("acquire", None),
    ]


def test_request_sends_any_op_without_none_fields(daemon: FakeDaemon) -> None:
    with Client(daemon.path) as client:
        assert client.request("reset", key="research", endpoint=None) == {"reset": ["rest"]}
        with pytest.raises(TypeError, match="'id' is set by the client"):
            client.request("reset", id=4)
    assert daemon.messages == [{"op": "reset", "id": 1, "key": "research"}]


def test_wait_is_checked_and_sent_as_float_seconds(daemon: FakeDaemon) -> None:
    with Client(daemon.path) as client:
        client.acquire("research", "rest", wait=0)
        client.acquire("research", "rest", wait=Decimal("1.5"))
        with pytest.raises(ValueError, match="wait"):
            client.acquire("research", "rest", wait=-1)
    assert [m.get("wait") for m in daemon.messages] == [None, 1.5]


def test_sync_acquire_is_thin(daemon: FakeDaemon) -> None:
    """Not a benchmark: a guard that a call stays a few syscalls (catches a sleep or a poll loop)."""
    with Client(daemon.path) as client:
        client.acquire("research", "rest")
        started = time.thread_time()
        for _ in range(200):
            client.acquire("research", "rest")
        per_call = (time.thread_time() - started) / 200
    assert per_call < 0.001, f"{per_call * 1e6:.0f} µs of client CPU per acquire"
