"""Bad input from one client costs only that client: a real daemon keeps answering everyone else."""

from __future__ import annotations

import socket
import struct

import cbor2
import pytest
from ratelimitd_client import Client
from ratelimitd_client.wire import FrameDecoder, encode

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "1000/1m" }
[keys.good]
provider = "api"
tier = "basic"
"""


@pytest.fixture
def daemon(start_daemon):
    return start_daemon(TABLE)


class Raw:
    """A raw socket speaking the framing by hand, to send what no real client would."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.decoder = FrameDecoder(1 << 24)
        self.pending: list = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> dict:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the daemon")
            self.pending.extend(self.decoder.receive(data))
        return self.pending.pop(0)

    def closed_by_peer(self) -> bool:
        return self.sock.recv(1) == b""


def _body(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


@pytest.mark.parametrize(
    "frame, code, fragment",
    [
        (_body(b"\xff\xfe"), "bad-request", "malformed CBOR"),
        (_body(cbor2.dumps([1, 2, 3])), "bad-request", "must be a CBOR map, not list"),
        (encode({"op": "launch", "id": 1}), "unknown-op", "unknown op 'launch'"),
        (encode({"op": "acquire", "id": 2, "key": 7, "endpoint": "rest"}), "bad-request", "field 'key' must be a string, not int"),
        (encode({"op": "acquire", "id": 3, "key": "good", "endpoint": "rest", "cost": -1}), "bad-request", "is negative"),
        (encode({"op": "acquire", "id": 4, "key": "good", "endpoint": "rest", "cost": float("nan")}), "bad-request", "not a finite number"),
        (encode({"op": "acquire", "id": 5, "key": "good", "endpoint": "rest", "wait": 1e12}), "bad-request", "field 'wait' must be between 0 and 86400"),
        (encode({"op": "acquire", "id": 6, "key": "nobody", "endpoint": "rest"}), "unknown-key", "unknown key 'nobody'"),
        (encode({"op": "acquire", "id": 7, "key": "good", "endpoint": "ws"}), "unknown-endpoint", "no endpoint 'ws'"),
        (encode({"op": "acquire", "id": 8, "key": "good", "endpoint": "rest", "cost": 1001}), "cost-too-large", "cost 1001 exceeds"),
        (encode({"op": "acquire", "id": [1], "key": "good", "endpoint": "rest"}), "bad-request", "field 'id' must be an integer or a string"),
        (encode({"op": "show", "id": 9}), "bad-request", "field 'key' is required"),
    ],
)
def test_each_bad_request_gets_a_precise_error_and_the_connection_stays_usable(daemon, frame, code, fragment):
    raw = Raw(daemon.socket)
    raw.send(frame)
    reply = raw.receive()
    assert reply["error"] == code
    assert fragment in reply["message"]
    raw.send(encode({"op": "acquire", "id": "after", "key": "good", "endpoint": "rest"}))
    reply = raw.receive()
    assert reply["id"] == "after" and reply["granted"] is True and reply["remaining"] == 999


def test_oversized_frame_closes_only_that_connection(daemon):
    bystander = Client(socket=daemon.socket)
    assert bystander.acquire("good", "rest").granted
    attacker = Raw(daemon.socket)
    attacker.send(struct.pack(">I", 2 * 1024**3) + b"x" * 100)
    reply = attacker.receive()
    assert reply["error"] == "frame-too-large"
    assert "2147483648 bytes exceeds the maximum of 65536" in reply["message"]
    assert attacker.closed_by_peer()
    permit = bystander.acquire("good", "rest")
    assert permit.granted and permit.remaining == 998
    bystander.close()


def test_garbage_interleaved_with_good_requests_from_two_clients(daemon):
    good = Client(socket=daemon.socket)
    noisy = Raw(daemon.socket)
    for index in range(50):
        noisy.send(_body(bytes([index % 256]) * 7))
        assert noisy.receive()["error"] == "bad-request"
        assert good.acquire("good", "rest").remaining == 999 - index
    status = good.status()
    assert status["errors"] >= 50 and status["grants"] == 50
    good.close()
