"""What the real daemon cannot yet be made to say: a lease held by ``run``, ``forbidden``, an unreadable answer.

A scripted fake daemon (tests/client/fake_daemon.py) answers on a real socket.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..client.fake_daemon import FakeConnection, FakeDaemon, granted
from .helpers import ctl


def test_run_holds_the_lease_while_the_command_runs_and_releases_it_after(short_tmp: Path) -> None:
    path = str(short_tmp / "fake.sock")
    marker = short_tmp / "ran"
    released_after_the_command: list[bool] = []

    def handler(conn: FakeConnection, request: Any) -> None:
        if request["op"] == "acquire":
            conn.send(granted(request["id"], remaining=None, scope="ws", lease=17))
        elif request["op"] == "release":
            released_after_the_command.append(marker.exists())
            conn.send({"id": request["id"], "released": [request["lease"]]})

    with FakeDaemon(path, handler) as fake:
        result = ctl("--socket", path, "run", "research", "ws", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
        fake.wait_for(3)
    assert result.exit_code == 0, result.output
    ops = [(m["op"], m.get("lease")) for m in fake.messages]
    assert ops == [("hello", None), ("acquire", None), ("release", 17)]
    assert released_after_the_command == [True]
    assert len({r.connection for r in fake.received}) == 1  # the lease's connection stayed open throughout


def test_forbidden_is_explained(short_tmp: Path) -> None:
    path = str(short_tmp / "fake.sock")

    def handler(conn: FakeConnection, request: Any) -> None:
        if request["op"] == "reload":
            conn.send({"id": request["id"], "error": "forbidden", "message": "uid 1001 may not reload"})

    with FakeDaemon(path, handler):
        result = ctl("--socket", path, "reload")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: not allowed: uid 1001 may not reload. The daemon decides who may do what from the user and group "
        "of the process at the other end of its socket, and this user may not do this. Run ratelimitctl as a user "
        "the daemon allows (its own user, or root), or ask whoever runs the daemon to allow yours.\n"
    )


def test_an_unreadable_answer_exits_1(short_tmp: Path) -> None:
    path = str(short_tmp / "fake.sock")

    def handler(conn: FakeConnection, request: Any) -> None:
        if request["op"] == "acquire":
            conn.send({"id": request["id"], "granted": "yes"})

    with FakeDaemon(path, handler):
        result = ctl("--socket", path, "acquire", "k", "rest")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot read the daemon's answer: the daemon's acquire reply is not a permit")
