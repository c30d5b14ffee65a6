"""The daemon works under the confinement the unit asks for, as far as it can be reproduced without systemd.

``ratelimitd.service`` sets ``NoNewPrivileges=``, ``MemoryDenyWriteExecute=``
and ``PrivateNetwork=``. systemd-analyze only reads the unit; this runs the
real daemon under the same kernel mechanisms (``PR_SET_NO_NEW_PRIVS``,
``PR_SET_MDWE``, a new network namespace) and checks that it serves, reloads
and stops cleanly, so a setting the daemon cannot bear is found here rather
than on a user's machine. Skipped where the kernel or privileges lack them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from ratelimitd_client import Client

from ..daemon import Daemon
from .conftest import clean_environ
from .notifications import NotifySocket

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "10/1m" }
[keys.k]
provider = "api"
tier = "basic"
"""

UNSUPPORTED = 77
# Sets the two process flags (both survive execve and are inherited), then runs the command.
CONFINE = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS, PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 38, 65, 1
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit({UNSUPPORTED})
os.execvp(sys.argv[1], sys.argv[1:])
"""


def can_unshare_the_network() -> bool:
    """Report whether this process may create a network namespace (root, and not denied by a container)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, timeout=30).returncode == 0


def test_the_daemon_serves_with_no_new_privileges_no_wx_memory_and_no_network(short_tmp):
    if not can_unshare_the_network():
        pytest.skip("no permission to create a network namespace here (needs root outside a restricted container)")
    daemon = Daemon(short_tmp, TABLE)
    notify = NotifySocket(str(short_tmp / "notify.sock"))
    command = [sys.executable, "-c", CONFINE, "unshare", "--net", "--", *daemon.args]
    env = clean_environ({"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "200000"})
    try:
        with open(daemon.log, "ab") as log:
            daemon.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 15
        while not notify.pending() and daemon.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if daemon.process.poll() == UNSUPPORTED:
            pytest.skip("this kernel has no PR_SET_MDWE")
        notify.next("READY")
        with Client(socket=daemon.socket, timeout=10) as client:
            assert client.acquire("k", "rest").granted
            assert client.reload()["reloaded"] is True  # the tier table read in a worker thread
            pid = client.status()["pid"]
        assert "NoNewPrivs:\t1" in open(f"/proc/{pid}/status").read()
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        notify.next("WATCHDOG")
        daemon.signal(signal.SIGTERM)
        notify.next("STOPPING")
        assert daemon.process.wait(15) == 0, daemon.output()
    finally:
        daemon.kill()
        notify.close()
