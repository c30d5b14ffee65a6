"""The daemon's side of an integration: routes of the key, permits before a request, reports after it.

``Gate`` (blocking) and ``AsyncGate`` (asyncio and Trio) wrap a ratelimitd
client for one ``Policy``. They fetch the key's routes once and again after
every reconnection (or ``routes_ttl``), acquire a permit for a routed request,
and report what the provider answered. When the daemon cannot be reached they
raise ``DaemonUnavailable`` (fail closed, the default) or, with
``fail_open=True``, log one warning and let requests through until it answers
again. A report never raises: the response is already there, and what the
daemon could not take is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from ..client import Client
from ..errors import DaemonUnavailable, RequestFailed, UnknownOp
from ..feedback import Feedback
from ..permit import Permit
from ..routing import RouteTable
from .policy import Policy, Target

__all__ = ["Gate", "AsyncGate", "log"]

log = logging.getLogger("ratelimitd_client.integrations")

_NO_ROUTES = RouteTable(None)
_HOLDING = ("hold", "restrict")


class _Notices:
    """Warnings said once: the daemon down (again after it came back), an op it lacks, a refused report."""

    def __init__(self) -> None:
        self.down = False
        self.said: set[str] = set()

    def unavailable(self, exc: DaemonUnavailable, policy: Policy) -> None:
        if not self.down:
            self.down = True
            log.warning(
                "ratelimitd is unreachable (%s); fail_open=True: requests with key %r go through unmetered "
                "until it answers again",
                exc,
                policy.key,
            )

    def reachable(self) -> None:
        if self.down:
            self.down = False
            log.warning("ratelimitd answers again; requests are metered again")

    def once(self, topic: str, message: str, *args: Any) -> None:
        if topic not in self.said:
            self.said.add(topic)
            log.warning(message, *args)

    def unreachable(self, exc: DaemonUnavailable, policy: Policy) -> None:
        """Raise ``exc`` when failing closed; else warn once (the caller goes on unmetered)."""
        if not policy.fail_open:
            raise exc
        self.unavailable(exc, policy)

    def report_failed(self, exc: RequestFailed | DaemonUnavailable, policy: Policy, status: int) -> bool:
        """Log why a report of ``status`` was not taken (once per reason); return False."""
        if isinstance(exc, DaemonUnavailable):
            if policy.fail_open:
                self.unavailable(exc, policy)
            else:
                log.warning("cannot report a %s of key %r to ratelimitd: %s", status, policy.key, exc)
        elif isinstance(exc, UnknownOp):
            self.once("report", "this ratelimitd has no 'report' op: the provider's answers are not shared")
        else:
            self.once(f"report:{exc}", "ratelimitd refused a report of key %r: %s", policy.key, exc)
        return False


class _Routes:
    """The cached route table and when to ask again: after ``ttl`` or a new connection of the client used."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.table: RouteTable | None = None
        self.expires = 0.0
        self.seen: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def current(self, client: Any) -> RouteTable | None:
        if self.table is None or time.monotonic() >= self.expires or self.seen.get(client) != client.connections:
            return None
        return self.table

    def keep(self, client: Any, table: RouteTable) -> RouteTable:
        self.table = table
        self.expires = time.monotonic() + self.ttl
        self.seen[client] = client.connections
        return table


def _applied_hold(applied: Any) -> bool:
    return isinstance(applied, list) and any(isinstance(item, dict) and item.get("action") in _HOLDING for item in applied)


class Gate:
    """Routes, permits and reports for one ``Policy`` through a blocking ``Client``.

    With ``client`` None each thread gets its own ``Client`` on ``socket`` (a
    waiting acquire holds its client, so threads must not share one); with a
    ``client`` given, every thread uses it and their calls take turns.
    """

    def __init__(self, policy: Policy, client: Client | None = None, socket: Any = None) -> None:
        self.policy = policy
        self._client = client
        self._socket = socket
        self._local = threading.local()
        self._made: list[Client] = []
        self._routes = _Routes(policy.routes_ttl)
        self._notices = _Notices()
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """Report the client the calling thread uses."""
        if self._client is not None:
            return self._client
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client(self._socket, timeout=None)
            with self._lock:
                self._made.append(client)
        return client

    def close(self) -> None:
        """Close the clients this gate opened (not one it was given)."""
        with self._lock:
            made, self._made = self._made, []
        for client in made:
            client.close()

    def provider(self) -> str | None:
        """Report the provider whose feedback formats apply: the policy's, else the one the daemon named."""
        table = self._routes.table
        return self.policy.provider or (table.provider if table is not None else None)

    def target(self, method: str, url: str) -> Target | None:
        """Return what the request is (endpoint and cost), or None: it passes untouched.

        Raises ``DaemonUnavailable`` when the routes are needed, cannot be
        fetched and the policy fails closed.
        """
        client = self.client
        table = self._routes.current(client)
        if table is None:
            try:
                table = self._routes.keep(client, client.routes(self.policy.key))
            except DaemonUnavailable as exc:
                self._notices.unreachable(exc, self.policy)
            except UnknownOp:
                self._notices.once("routes", "this ratelimitd has no 'routes' op: only local routes and endpoint= apply")
                table = self._routes.keep(client, _NO_ROUTES)
            else:
                self._notices.reachable()
        return self.policy.target(table, method, url)

    def acquire(self, target: Target) -> Permit | None:
        """Return the permit for ``target`` (granted or not, after waiting up to ``wait``), or None to pass unmetered.

        None only when the daemon is unreachable and the policy fails open;
        failing closed, ``DaemonUnavailable`` is raised.
        """
        policy = self.policy
        try:
            permit = self.client.acquire(policy.key, target.endpoint, target.cost, wait=policy.wait or None)
        except DaemonUnavailable as exc:
            self._notices.unreachable(exc, policy)
            return None
        self._notices.reachable()
        return permit

    def report(self, target: Target, feedback: Feedback, granted_at: float | None = None) -> bool:
        """Report ``feedback`` when it says anything; return whether the daemon now holds or restricts a bucket.

        ``granted_at`` is when the call's permit was granted (see ``report_fields``).
        """
        if not feedback.worth_reporting:
            return False
        try:
            applied = self.client.report(self.policy.key, target.endpoint, **_with_time(feedback, granted_at))
        except (DaemonUnavailable, RequestFailed) as exc:
            return self._notices.report_failed(exc, self.policy, feedback.status)
        return _applied_hold(applied)


def _with_time(feedback: Feedback, granted_at: float | None) -> dict[str, Any]:
    """Return ``feedback``'s report fields, with when the call's permit was granted when it reports a count."""
    fields = feedback.as_report_fields()
    if granted_at is not None and "remaining" in fields:
        fields["granted_at"] = granted_at
    return fields


class AsyncGate:
    """``Gate`` for asyncio and Trio: one ``AsyncClient`` whose connection every task shares."""

    def __init__(self, policy: Policy, client: Any = None, socket: Any = None) -> None:
        from ..aio import AsyncClient

        self.policy = policy
        self._owned = client is None
        self.client = AsyncClient(socket) if client is None else client
        self._routes = _Routes(policy.routes_ttl)
        self._notices = _Notices()

    async def close(self) -> None:
        """Close the client if this gate opened it."""
        if self._owned:
            await self.client.close()

    def provider(self) -> str | None:
        """Report the provider whose feedback formats apply: the policy's, else the one the daemon named."""
        table = self._routes.table
        return self.policy.provider or (table.provider if table is not None else None)

    async def target(self, method: str, url: str) -> Target | None:
        """Return what the request is, or None: it passes untouched. As ``Gate.target``."""
        client = self.client
        table = self._routes.current(client)
        if table is None:
            try:
                table = self._routes.keep(client, await client.routes(self.policy.key))
            except DaemonUnavailable as exc:
                self._notices.unreachable(exc, self.policy)
            except UnknownOp:
                self._notices.once("routes", "this ratelimitd has no 'routes' op: only local routes and endpoint= apply")
                table = self._routes.keep(client, _NO_ROUTES)
            else:
                self._notices.reachable()
        return self.policy.target(table, method, url)

    async def acquire(self, target: Target) -> Permit | None:
        """Return the permit for ``target``, or None to pass unmetered. As ``Gate.acquire``."""
        policy = self.policy
        try:
            permit = await self.client.acquire(policy.key, target.endpoint, target.cost, wait=policy.wait or None)
        except DaemonUnavailable as exc:
            self._notices.unreachable(exc, policy)
            return None
        self._notices.reachable()
        return permit

    async def report(self, target: Target, feedback: Feedback, granted_at: float | None = None) -> bool:
        """Report ``feedback`` when it says anything; return whether the daemon now holds. As ``Gate.report``."""
        if not feedback.worth_reporting:
            return False
        try:
            applied = await self.client.report(self.policy.key, target.endpoint, **_with_time(feedback, granted_at))
        except (DaemonUnavailable, RequestFailed) as exc:
            return self._notices.report_failed(exc, self.policy, feedback.status)
        return _applied_hold(applied)
