"""A client process for end-to-end tests: acquire permits as fast as they come until a deadline.

Run as ``python worker.py SOCKET KEY ENDPOINT[,ENDPOINT…] START UNTIL OUTFILE``. It uses the
real ``ratelimitd_client.Client`` and, for every grant, records the wall-clock
time right after the reply arrived — when the API call would leave — and the
endpoint, one ``time endpoint`` line per grant. It reconnects across daemon
restarts (the client does that by itself) and retries while the daemon is down.
All workers begin at START, so that process start-up order does not decide who
gets the first window.
"""

from __future__ import annotations

import sys
import time

from ratelimitd_client import Client, DaemonUnavailable


def main() -> None:
    socket_path, key, endpoints = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    start, until, out = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
    lines = []
    turn = 0
    client = Client(socket=socket_path)
    client.hello()  # connect before the common start
    time.sleep(max(0.0, start - time.time()))
    while time.time() < until:
        endpoint = endpoints[turn % len(endpoints)]
        try:
            permit = client.acquire(key, endpoint, wait=max(0.0, min(5.0, until - time.time())))
        except DaemonUnavailable:
            time.sleep(0.02)  # the daemon is restarting: the crash tests restart it on purpose
            continue
        if permit.granted:
            lines.append(f"{time.time():.6f} {endpoint}\n")
            turn += 1
    client.close()
    with open(out, "w") as handle:
        handle.writelines(lines)


if __name__ == "__main__":
    main()
