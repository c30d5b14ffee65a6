#!/usr/bin/env bash
# Install what bench/run.py needs for its anchors, if missing: redis-server (Debian's
# package) and the Python libraries users would pick instead of ratelimitd.
# Idempotent: does nothing when everything is there. Needs root for apt-get.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench/setup.sh: redis-server is missing and installing it needs root (apt-get install redis-server)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q redis-server >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q redis-server >/dev/null
    }
    # the Debian package may start a system instance on port 6379; the bench starts its own
    # private one on a Unix socket, so a system instance is neither needed nor touched.
fi

PY="${PYTHON:-python}"
if ! "$PY" -c 'import limits, redis, hiredis, pyrate_limiter, filelock' >/dev/null 2>&1; then
    "$PY" -m pip install -q limits 'redis[hiredis]' 'pyrate-limiter[filelock]'
fi

echo "bench/setup.sh: $(redis-server --version | cut -d' ' -f1-3); $("$PY" -c '
from importlib.metadata import version as v
print(", ".join(f"{d} {v(d)}" for d in ("limits", "redis", "hiredis", "pyrate-limiter", "filelock")))')"
