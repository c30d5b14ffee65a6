"""Who may spend which key: real users on a real daemon get `forbidden` or their grant.

Run as root (CI is), the test creates two users and a group, starts the daemon,
and acts as each user from a forked child that drops to that uid (their shells
could not run this Python, which lives in root's home). As another user the
test is skipped, saying why.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import socket
import subprocess

import pytest
from ratelimitd_client.wire import FrameDecoder, encode

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating users and switching to them needs root (CI runs as root)")

ALICE, BOB, TRADERS, ADMINS = "rl-alice", "rl-bob", "rl-traders", "rl-admins"


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)


def _ensure_group(name: str, *members: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", name], check=True)
    for member in members:
        subprocess.run(["usermod", "-a", "-G", name, member], check=True)


@pytest.fixture(scope="module")
def users() -> None:
    if not all(os.path.exists(f"/usr/sbin/{tool}") for tool in ("useradd", "groupadd", "usermod")):
        pytest.skip("useradd/groupadd/usermod are not installed")
    _ensure_user(ALICE)
    _ensure_user(BOB)
    _ensure_group(TRADERS, BOB)
    _ensure_group(ADMINS, ALICE)


TABLE = f"""
[access]
admins = {{ groups = ["{ADMINS}"] }}
[providers.api.endpoints]
"rest" = ["rest"]
"ws" = ["ws"]
[providers.api.tiers.basic]
rest = {{ rate = "100/1m" }}
ws = {{ concurrent = 2 }}
[keys.prod]
provider = "api"
tier = "basic"
allow = {{ groups = ["{TRADERS}"] }}
[keys.shared]
provider = "api"
tier = "basic"
"""


def run_as(name: str, function) -> object:
    """Return what ``function()`` returns (JSON-able) when run in a child process as user ``name``."""
    account = pwd.getpwnam(name)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, act, report, exit without running pytest's cleanup
        try:
            os.close(read)
            os.initgroups(name, account.pw_gid)
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            os.write(write, json.dumps(function(), default=str).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b"null")


def as_user(name: str, socket_path: str, *requests: dict) -> list[dict]:
    """Send ``requests`` to the daemon as user ``name`` (with its groups) and return the replies."""

    def talk() -> list:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(socket_path)
        decoder, replies = FrameDecoder(1 << 24), []
        for request in requests:
            sock.sendall(encode(request))
            while not (got := decoder.receive(sock.recv(65536))):
                pass
            replies.extend(got)
        return replies

    return run_as(name, talk)


@pytest.fixture
def daemon(users, start_daemon, short_tmp):
    os.chmod(short_tmp, 0o755)
    return start_daemon(TABLE, "--socket-mode", "0666")


def test_a_user_outside_the_allow_list_is_forbidden_and_a_member_is_granted(daemon):
    [refused] = as_user(ALICE, daemon.socket, {"op": "acquire", "id": 1, "key": "prod", "endpoint": "rest"})
    assert refused["error"] == "forbidden"
    assert f"({ALICE})" in refused["message"] and "may not acquire on key 'prod'" in refused["message"]
    assert f"group {TRADERS}" in refused["message"]
    [granted] = as_user(BOB, daemon.socket, {"op": "acquire", "id": 1, "key": "prod", "endpoint": "rest"})
    assert granted["granted"] is True and granted["remaining"] == 99
    [open_key] = as_user(ALICE, daemon.socket, {"op": "acquire", "id": 1, "key": "shared", "endpoint": "rest"})
    assert open_key["granted"] is True


def test_a_report_on_a_key_needs_the_same_right(daemon):
    [refused] = as_user(ALICE, daemon.socket, {"op": "report", "id": 1, "key": "prod", "endpoint": "rest", "status": 429})
    assert refused["error"] == "forbidden" and "may not report on key 'prod'" in refused["message"]


def test_reload_and_reset_are_for_admins_only(daemon):
    replies = as_user(BOB, daemon.socket, {"op": "reload", "id": 1}, {"op": "reset", "id": 2, "key": "shared"})
    assert [reply["error"] for reply in replies] == ["forbidden", "forbidden"]
    assert "may not reload the tier table" in replies[0]["message"] and ADMINS in replies[0]["message"]
    admin = as_user(ALICE, daemon.socket, {"op": "reload", "id": 1}, {"op": "reset", "id": 2, "key": "shared"})
    assert admin[0]["reloaded"] is True and admin[1]["reset"] == ["rest", "ws"]


def test_only_the_holder_or_an_admin_may_release_a_lease(daemon):
    [lease] = as_user(BOB, daemon.socket, {"op": "acquire", "id": 1, "key": "shared", "endpoint": "ws"})
    # bob's child exited: its connection closed and the lease went with it; hold one from this process instead
    from ratelimitd_client import Client

    with Client(socket=daemon.socket) as root_client:
        held = root_client.acquire("shared", "ws")
        [refused] = as_user(BOB, daemon.socket, {"op": "release", "id": 1, "lease": held.lease})
        assert refused["error"] == "forbidden" and "held by uid 0" in refused["message"]
        [released] = as_user(ALICE, daemon.socket, {"op": "release", "id": 1, "lease": held.lease})
        assert released["released"] == [held.lease]
    assert lease["granted"] is True


def test_ratelimitctl_explains_forbidden_in_plain_words(daemon):
    from click.testing import CliRunner

    from ratelimitd.cli.ctl import main as ratelimitctl

    def reload_as_bob() -> dict:
        result = CliRunner().invoke(ratelimitctl, ["--socket", daemon.socket, "reload"])
        return {"exit": result.exit_code, "output": result.output}

    outcome = run_as(BOB, reload_as_bob)
    assert outcome["exit"] == 1
    assert "may not reload the tier table" in outcome["output"]
    assert "not allowed" in outcome["output"].lower() or "permission" in outcome["output"].lower()


def test_status_shows_each_client_with_its_peer_credentials(daemon):
    from ratelimitd_client import Client

    [bob_status] = as_user(BOB, daemon.socket, {"op": "status", "id": 1})
    bob = pwd.getpwnam(BOB).pw_uid
    assert any(client["uid"] == bob and client["pid"] > 0 for client in bob_status["clients"])
    with Client(socket=daemon.socket) as root_client:
        assert root_client.acquire("shared", "ws").granted
        mine = [c for c in root_client.status()["clients"] if c["pid"] == os.getpid()]
        assert mine == [{"pid": os.getpid(), "uid": 0, "waiters": 0, "leases": 1, "queued_bytes": 0}]
