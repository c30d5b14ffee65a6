"""Socket discovery, the Permit value and the error tree: no socket involved."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import ratelimitd_client
from ratelimitd_client import (
    ERRORS,
    DaemonUnavailable,
    Permit,
    ProtocolError,
    RateLimited,
    RatelimitdError,
    RequestFailed,
    default_socket_path,
    resolve_socket,
)
from ratelimitd_client.errors import error_from_reply
from ratelimitd_client.protocol import ERROR_CODES

from .fake_daemon import vector

# --- discovery: docs/protocol.md "Transport", in order ---------------------------------------

DISCOVERY = [
    # (explicit, environment, expected path, origin)
    ("/tmp/x.sock", {"RATELIMITD_SOCKET": "/env.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}, "/tmp/x.sock", "explicit"),
    (None, {"RATELIMITD_SOCKET": "/env.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}, "/env.sock", "$RATELIMITD_SOCKET"),
    (None, {"XDG_RUNTIME_DIR": "/run/user/1000"}, "/run/user/1000/ratelimitd/ratelimitd.sock", "$XDG_RUNTIME_DIR"),
    (None, {}, "/run/ratelimitd/ratelimitd.sock", "default"),
    (None, {"RATELIMITD_SOCKET": "", "XDG_RUNTIME_DIR": ""}, "/run/ratelimitd/ratelimitd.sock", "default"),
    (None, {"XDG_RUNTIME_DIR": "relative/dir"}, "/run/ratelimitd/ratelimitd.sock", "default"),
    (Path("/tmp/p.sock"), {}, "/tmp/p.sock", "explicit"),
]


@pytest.mark.parametrize("explicit, environ, path, origin", DISCOVERY)
def test_discovery_order(explicit: object, environ: dict[str, str], path: str, origin: str) -> None:
    assert resolve_socket(explicit, environ) == (path, origin)  # type: ignore[arg-type]


def test_discovery_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATELIMITD_SOCKET", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/4242")
    assert default_socket_path() == "/run/user/4242/ratelimitd/ratelimitd.sock"
    monkeypatch.setenv("RATELIMITD_SOCKET", "/srv/rl.sock")
    assert default_socket_path() == "/srv/rl.sock"
    assert ratelimitd_client.Client().path == "/srv/rl.sock"
    assert ratelimitd_client.Client("/elsewhere.sock").path == "/elsewhere.sock"
    monkeypatch.delenv("RATELIMITD_SOCKET")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert ratelimitd_client.AsyncClient().path == "/run/ratelimitd/ratelimitd.sock"


def test_an_empty_explicit_path_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        resolve_socket("")


# --- Permit ----------------------------------------------------------------------------------


def test_permit_from_the_golden_replies() -> None:
    permit = Permit.from_reply(dict(vector("reply", "acquire-granted-decimal")["meaning"]))
    assert permit == Permit(True, 0.0, Decimal("99.9"), "credits", 60.0, {"credits": (Decimal("99.9"), 60.0)}, None)
    assert type(permit.retry_after) is float and bool(permit) is True
    denied = Permit.from_reply(dict(vector("reply", "acquire-denied")["meaning"]))
    assert bool(denied) is False and denied.retry_after == 12.5


def test_permit_is_frozen_and_hashable() -> None:
    permit = Permit(True, buckets={"rest": (1, 2.0)})
    with pytest.raises(AttributeError):
        permit.granted = False  # type: ignore[misc]
    assert hash(permit) == hash(Permit(True, buckets={"other": (0, 0.0)}))  # buckets do not take part in the hash


def test_permit_tolerates_a_reply_with_only_granted_and_extra_fields() -> None:
    assert Permit.from_reply({"id": 1, "granted": True, "reason": "peek", "lease": "L1"}) == Permit(True, lease="L1")


@pytest.mark.parametrize(
    "reply",
    [{"id": 1}, {"granted": 1}, {"granted": True, "retry_after": "soon"}, {"granted": True, "buckets": {"rest": 5}}],
)
def test_a_reply_that_is_no_permit_is_a_protocol_error(reply: dict[str, object]) -> None:
    with pytest.raises(ProtocolError, match="not a permit"):
        Permit.from_reply(reply)


# --- errors ----------------------------------------------------------------------------------


def test_one_class_per_error_code_under_one_base() -> None:
    assert ERRORS.keys() == ERROR_CODES.keys()
    assert len(set(ERRORS.values())) == len(ERRORS)
    for code, cls in ERRORS.items():
        assert cls.code == code and issubclass(cls, RequestFailed) and issubclass(cls, RatelimitdError)
        assert getattr(ratelimitd_client, cls.__name__) is cls
    for cls in (DaemonUnavailable, ProtocolError, RateLimited):
        assert issubclass(cls, RatelimitdError)


def test_error_from_reply_keeps_code_and_message() -> None:
    error = error_from_reply(vector("reply", "error-invalid-table")["meaning"])
    assert type(error) is ERRORS["invalid-table"]
    assert error.message.startswith("/etc/ratelimitd/tiers.toml: providers.surchi")
    assert str(error).endswith("[invalid-table]")
    odd = error_from_reply({"error": 42})
    assert type(odd) is RequestFailed and odd.code == "42" and "42" in odd.message


def test_daemon_unavailable_says_where_and_what_to_do() -> None:
    error = DaemonUnavailable.from_os_error("/run/user/1000/ratelimitd/ratelimitd.sock", "$XDG_RUNTIME_DIR", FileNotFoundError(2, "No such file"))
    assert str(error) == (
        "cannot reach ratelimitd at /run/user/1000/ratelimitd/ratelimitd.sock (from $XDG_RUNTIME_DIR): "
        "no socket there (the daemon is not running, or listens elsewhere); start the daemon "
        "(`ratelimitd`, or `systemctl start ratelimitd`) or set RATELIMITD_SOCKET to the socket it listens on"
    )
    denied = DaemonUnavailable.from_os_error("/s", "explicit", PermissionError(13, "Permission denied"))
    assert "permission denied" in str(denied) and "RATELIMITD_SOCKET" not in str(denied)


def test_rate_limited_without_a_key_or_scope() -> None:
    error = RateLimited(Permit(False, retry_after=1.25))
    assert str(error) == "rate limited: request denied; retry after 1.250 s" and error.scope is None


def test_importing_the_package_does_not_import_asyncio_or_trio() -> None:
    import subprocess
    import sys

    code = "import sys, ratelimitd_client; print('asyncio' in sys.modules, 'trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
