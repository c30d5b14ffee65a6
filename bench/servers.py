"""Start and stop the servers the benchmark measures: floors, redis-server, ratelimitd.

Each ``start_*`` returns a ``Server`` (the process, its socket, a stderr log)
once it answers on its Unix socket, or raises ``Unavailable`` with a note the
table prints when the backend cannot be had here (a command not installed, a
daemon that refuses to start). Everything listens on a Unix socket in the run's
temporary directory; nothing touches the network. ``tier_table`` writes the
bench tier tables ratelimitd is started with.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from procs import HarnessError, spawn, stop, unix_connectable, wait_until

__all__ = [
    "Unavailable",
    "Server",
    "start_floor",
    "start_redis",
    "start_ratelimitd",
    "stop_server",
    "ratelimitd_command",
    "ratelimitd_help",
    "client_available",
    "probe",
    "tier_table",
    "many_keys_table",
    "HUGE_RATE",
    "WAIT_RATE",
]

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

# A limit that never denies in a run: 4 clients x 20,000 checks x at most a few
# seconds. The sliding log keeps one entry per grant in the window, so a run holds
# at most ~80,000 entries of this bucket; the number is only big enough for that.
HUGE_RATE = "1000000/1m"
# the waiting test's window: one slot, freed 1 ms after each grant -> 1,000 grants/s
WAIT_RATE = "1/1ms"


class Unavailable(Exception):
    """Raised when a backend cannot be run on this machine; the message says why and what to do."""


@dataclass
class Server:
    """A started server: its process (None for embedded backends), socket path and stderr log."""

    name: str
    socket: str
    proc: subprocess.Popen | None = None
    log: str | None = None
    started_s: float = 0.0  # seconds from exec to first answer
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        """Report the server's pid, or None for an embedded backend."""
        return self.proc.pid if self.proc is not None else None


def _tail(path: str | None, lines: int = 3) -> str:
    """Return the last ``lines`` non-empty lines of the log at ``path`` joined by ' | '."""
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        text = [line.strip() for line in f.read().splitlines() if line.strip()]
    return " | ".join(text[-lines:])


def _spawn_logged(name: str, args: list[str], tmp: str) -> tuple[subprocess.Popen, str]:
    """Start ``args`` with stdout/stderr going to a log file in ``tmp``; return the process and log path."""
    log = os.path.join(tmp, f"{name}.log")
    with open(log, "wb") as out:
        proc = spawn(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def stop_server(server: Server | None) -> None:
    """Stop ``server``'s process (if any) and remove its socket file."""
    if server is None:
        return
    if server.proc is not None:
        stop(server.proc)
    try:
        os.unlink(server.socket)
    except OSError:
        pass


def start_floor(kind: str, tmp: str) -> Server:
    """Start the transport floor ``kind`` (see floors.py) and return it once it accepts connections."""
    path = os.path.join(tmp, f"floor-{kind}.sock")
    t0 = time.monotonic()
    proc, log = _spawn_logged(f"floor-{kind}", [sys.executable, os.path.join(BENCH_DIR, "floors.py"), kind, path], tmp)
    if not wait_until(lambda: unix_connectable(path), 15.0, proc):
        stop(proc)
        raise HarnessError(f"floor {kind} did not start: {_tail(log)}")
    return Server(f"floor-{kind}", path, proc, log, time.monotonic() - t0)


def _redis_ping(path: str) -> bool:
    """Report whether a redis-server on ``path`` answers PING."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        s.close()


def start_redis(tmp: str) -> Server:
    """Start a private redis-server on a Unix socket (no TCP port, no persistence) and return it."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise Unavailable("redis-server is not installed: run `bash bench/setup.sh`")
    path = os.path.join(tmp, "redis.sock")
    args = [
        exe, "--port", "0", "--unixsocket", path, "--unixsocketperm", "700",
        "--save", "", "--appendonly", "no", "--dir", tmp, "--daemonize", "no", "--loglevel", "warning",
    ]  # fmt: skip
    t0 = time.monotonic()
    proc, log = _spawn_logged("redis", args, tmp)
    if not wait_until(lambda: _redis_ping(path), 15.0, proc):
        stop(proc)
        raise HarnessError(f"redis-server did not start: {_tail(log)}")
    return Server("redis", path, proc, log, time.monotonic() - t0)


def ratelimitd_command() -> str | None:
    """Return the path of the ``ratelimitd`` console script (the one beside this Python first), or None."""
    beside = os.path.join(os.path.dirname(sys.executable), "ratelimitd")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("ratelimitd")


_help_cache: dict[str, str] = {}


def ratelimitd_help() -> str:
    """Return ``ratelimitd --help``'s text, or raise ``Unavailable`` saying why the daemon cannot run yet."""
    exe = ratelimitd_command()
    if exe is None:
        raise Unavailable("no `ratelimitd` command on PATH (pip install -e . installs it)")
    if exe not in _help_cache:
        try:
            done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise Unavailable("`ratelimitd --help` did not answer within 30 s") from None
        if done.returncode != 0:
            last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            raise Unavailable(f"`ratelimitd --help` fails (exit {done.returncode}): {last[-1] if last else 'no output'}")
        _help_cache[exe] = done.stdout
    return _help_cache[exe]


def client_available() -> str | None:
    """Return None when ``ratelimitd_client.Client`` can be imported, else why not."""
    try:
        from ratelimitd_client import Client  # noqa: F401
    except ImportError as exc:
        return f"ratelimitd_client.Client is not there yet ({exc})"
    return None


def _hello(path: str) -> bool:
    """Report whether the daemon on ``path`` answers a ``hello`` request (any reply counts)."""
    from worker import RawClient

    try:
        client = RawClient(path)
        client.sock.settimeout(5.0)
        client.request({"op": "hello", "client": "bench"})
        client.sock.close()
        return True
    except OSError:
        return False


def probe(server: Server, key: str, endpoint: str = "rest") -> None:
    """Send one ``acquire`` of ``key``; stop ``server`` and raise ``Unavailable`` if it answers an error.

    A daemon that refuses what the bench table asks (an algorithm not written yet)
    is a row to skip with the daemon's own message, not a harness failure.
    """
    from worker import RawClient

    client = RawClient(server.socket)
    try:
        reply = client.request({"op": "acquire", "key": key, "endpoint": endpoint})
    finally:
        client.sock.close()
    if not isinstance(reply, dict) or "granted" not in reply:
        time.sleep(0.1)  # let the daemon's log reach its file
        logged = _tail(server.log, 1)
        stop_server(server)
        what = reply.get("message", reply) if isinstance(reply, dict) else reply
        raise Unavailable(f"ratelimitd answers {key!r} with an error: {what}" + (f" (its log: {logged})" if logged else ""))


def start_ratelimitd(
    tmp: str, table: str, name: str = "ratelimitd", durability: str | None = None, timeout: float = 60.0, state: str | None = None
) -> Server:
    """Write ``table`` as the tier table, start the daemon on a socket in ``tmp``, return it once it answers.

    Raises ``Unavailable`` when the command is missing, does not know
    ``--durability``, or exits before answering (its last log lines say why).
    """
    help_text = ratelimitd_help()
    if durability is not None and "--durability" not in help_text:
        raise Unavailable("ratelimitd has no --durability option yet")
    config = os.path.join(tmp, f"{name}.toml")
    if not os.path.exists(config):
        with open(config, "w") as f:
            f.write(table)
    path = os.path.join(tmp, f"{name}.sock")
    state = state or os.path.join(tmp, f"{name}-state.db")
    args = [ratelimitd_command(), "--config", config, "--socket", path, "--state", state]
    if durability is not None:
        args += ["--durability", durability]
    t0 = time.monotonic()
    proc, log = _spawn_logged(name, args, tmp)
    if not wait_until(lambda: unix_connectable(path) and _hello(path), timeout, proc):
        code = proc.poll()
        stop(proc)
        raise Unavailable(f"ratelimitd did not start (exit {code}): {_tail(log)}")
    return Server(name, path, proc, log, time.monotonic() - t0, {"state": state, "config": config})


def tier_table() -> str:
    """Return the bench tier table: one provider, one endpoint, a key per measured variant.

    - ``bench-log``: exact sliding log, ``HUGE_RATE`` (never denies in a run);
    - ``bench-gcra``: GCRA at the same rate;
    - ``bench-wait``: sliding log of one slot per millisecond, margin 0, for the waiting test.
    """
    return f"""# written by bench/run.py
[providers.bench.endpoints]
rest = ["rest"]

[providers.bench.tiers.log]
rest = {{ rate = "{HUGE_RATE}" }}

[providers.bench.tiers.gcra]
rest = {{ rate = "{HUGE_RATE}", algorithm = "gcra" }}

[providers.bench.tiers.wait]
rest = {{ rate = "{WAIT_RATE}", margin = "0ms" }}

[keys.bench-log]
provider = "bench"
tier = "log"

[keys.bench-gcra]
provider = "bench"
tier = "gcra"

[keys.bench-wait]
provider = "bench"
tier = "wait"
"""


def many_keys_table(count: int, rate: str, algorithm: str) -> str:
    """Return a tier table of ``count`` keys ``k0`` … named on one tier of ``rate`` with ``algorithm``."""
    lines = [
        "# written by bench/run.py: the many-keys test",
        "[providers.bench.endpoints]",
        'rest = ["rest"]',
        "",
        "[providers.bench.tiers.few]",
        f'rest = {{ rate = "{rate}", algorithm = "{algorithm}" }}',
        "",
        "[keys]",
    ]
    lines.extend(f'k{i} = {{ provider = "bench", tier = "few" }}' for i in range(count))
    return "\n".join(lines) + "\n"
