"""A client process for the shared-key end-to-end test: GET through the httpx integration until a deadline.

Run as ``python http_worker.py SOCKET KEY BASE_URL START UNTIL OUTFILE MODE``,
MODE being ``sync`` (``RateLimitedTransport``), ``asyncio`` or ``trio``
(``AsyncRateLimitedTransport``). From START on, it sends ``GET /v3/data`` as
fast as its permits come (an acquire may wait for the whole run: the daemon
answers at once when no permit can come before that) and
writes one JSON line per attempt: ``[time, outcome]``, the outcome being the
HTTP status or ``"denied"`` (no permit in time). Retries are off: every 429
the upstream answers is one the test counts.
"""

from __future__ import annotations

import json
import sys
import time

import httpx

from ratelimitd_client import RateLimited
from ratelimitd_client.integrations import AsyncRateLimitedTransport, RateLimitedTransport

HEADERS = {"X-Api-Key": "shared"}


def run_sync(socket: str, key: str, url: str, start: float, until: float) -> list:
    lines = []
    transport = RateLimitedTransport(key=key, socket=socket, wait=until - start)
    with httpx.Client(base_url=url, transport=transport, headers=HEADERS) as http:
        http.get("/unrouted", headers={"X-Api-Key": "warm-up"})  # routes and connections, before the start
        time.sleep(max(0.0, start - time.time()))
        while time.time() < until:
            try:
                status = http.get("/v3/data").status_code
            except RateLimited:
                status = "denied"
            lines.append([time.time(), status])
    return lines


async def run_async(socket: str, key: str, url: str, start: float, until: float, sleep) -> list:
    lines = []
    transport = AsyncRateLimitedTransport(key=key, socket=socket, wait=until - start)
    async with httpx.AsyncClient(base_url=url, transport=transport, headers=HEADERS) as http:
        await http.get("/unrouted", headers={"X-Api-Key": "warm-up"})
        await sleep(max(0.0, start - time.time()))
        while time.time() < until:
            try:
                status = (await http.get("/v3/data")).status_code
            except RateLimited:
                status = "denied"
            lines.append([time.time(), status])
    return lines


def main() -> None:
    socket, key, url = sys.argv[1], sys.argv[2], sys.argv[3]
    start, until, out, mode = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]
    if mode == "sync":
        lines = run_sync(socket, key, url, start, until)
    elif mode == "asyncio":
        import asyncio

        lines = asyncio.run(run_async(socket, key, url, start, until, asyncio.sleep))
    else:
        import trio

        lines = trio.run(run_async, socket, key, url, start, until, trio.sleep)
    with open(out, "w") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)


if __name__ == "__main__":
    main()
