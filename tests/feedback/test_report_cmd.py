"""``ratelimitctl report`` (``ratelimitd.cli.report_cmd``) against a real daemon, in-process with CliRunner.

The command is invoked on its own (``obj`` is the socket, as the ``ratelimitctl``
group passes it), so these tests do not depend on its registration in ``ctl``.
"""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from ratelimitd.cli.report_cmd import read_dump, report
from ratelimitd_client import Client

POLYNODE_429 = '{"error": "rate limit exceeded", "scope": "v3_heavy", "reset_at": %d}'


def run(socket: str, *args: str, input: str | None = None):
    return CliRunner().invoke(report, list(args), obj=socket, input=input)


def test_a_429_with_retry_after_holds_the_endpoint(api):
    daemon = api()
    result = run(daemon.socket, "k", "rest", "--status", "429", "--header", "Retry-After: 12", "--json")
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert reply["reported"] == {"status": 429, "retry_after": 12}
    [held] = reply["applied"]
    assert (held["bucket"], held["action"], held["remaining"]) == ("standard", "hold", 0)
    assert 11 < held["until"] - time.time() <= 12
    with Client(daemon.socket) as client:
        permit = client.acquire("k", "rest")
    assert not permit.granted and 11 < permit.retry_after <= 12


def test_text_output_names_what_was_reported_and_done(api):
    daemon = api()
    result = run(daemon.socket, "k", "rest", "--status", "200", "-H", "X-RateLimit-Remaining: 0", "-H", "X-RateLimit-Reset: 30")
    assert result.exit_code == 0, result.output
    first, header, row = result.output.splitlines()
    assert first.startswith("reported 200 for key k endpoint rest: reset_at ")
    assert first.endswith(", remaining 0")
    assert header.split() == ["bucket", "action", "until", "remaining"]
    assert row.split()[:2] == ["standard", "restrict"] and row.split()[-1] == "0"


def test_a_header_dump_gives_the_status_of_the_last_response(api, tmp_path):
    daemon = api()
    dump = tmp_path / "headers"
    dump.write_text(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: /v3/a\r\nRetry-After: 999\r\n\r\n"
        "HTTP/2 429\r\nretry-after: 5\r\ncontent-type: application/json\r\n\r\n"
    )
    result = run(daemon.socket, "k", "rest", "--dump-header", str(dump), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reported"] == {"status": 429, "retry_after": 5}


def test_a_body_on_stdin_names_the_bucket_through_the_providers_scope(api):
    daemon = api()
    body = POLYNODE_429 % (int(time.time()) + 20)
    result = run(daemon.socket, "k", "heavy", "--status", "429", "--provider", "polynode", "--body", "-", "--json", input=body)
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert reply["reported"]["bucket"] == "heavy"
    assert [item["bucket"] for item in reply["applied"]] == ["heavy"]
    with Client(daemon.socket) as client:
        assert client.acquire("k", "rest").granted  # the standard bucket is not held
        assert not client.acquire("k", "heavy").granted


def test_bucket_option_names_the_bucket(api):
    daemon = api()
    result = run(daemon.socket, "k", "heavy", "--status", "429", "--bucket", "heavy", "--json")
    assert [item["bucket"] for item in json.loads(result.output)["applied"]] == ["heavy"]


USAGE = {
    "a header without a colon": (["k", "rest", "--status", "429", "-H", "Retry-After 12"], "is not a header: write 'Name: value'"),
    "no status": (["k", "rest", "-H", "Retry-After: 12"], "give the provider's answer with --status N"),
    "a status out of range": (["k", "rest", "--status", "42"], "42 is not in the range 100<=x<=599"),
}


@pytest.mark.parametrize("args, message", USAGE.values(), ids=USAGE.keys())
def test_usage_errors(short_tmp, args, message):
    result = run(str(short_tmp / "none.sock"), *args)
    assert result.exit_code == 2 and message in result.output


def test_no_daemon_exits_69(short_tmp):
    result = run(str(short_tmp / "none.sock"), "k", "rest", "--status", "429")
    assert result.exit_code == 69 and "cannot reach ratelimitd" in result.output


def test_an_unknown_key_exits_1(api):
    result = run(api().socket, "nope", "rest", "--status", "429")
    assert result.exit_code == 1 and "unknown key 'nope'" in result.output


def test_read_dump_skips_lines_it_cannot_read():
    assert read_dump("HTTP/1.1 429 Too Many Requests\nnot a header\nRetry-After: 3\n") == (429, [("Retry-After", "3")])
    assert read_dump("") == (None, [])
