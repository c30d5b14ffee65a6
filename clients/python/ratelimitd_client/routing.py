"""Routes: which endpoint of a key's provider an HTTP request is, from its method, host and path.

A tier table may give a provider a list of routes (``[[providers.NAME.routes]]``);
the daemon hands them to clients (the ``routes`` op) and the HTTP integrations
match every request against them, first match wins, so that callers need no
per-call endpoint. This module is the one definition of the pattern syntax: the
daemon's tier loader validates routes with it and the client matches with it.
It does no I/O.

Path patterns (matched against the request's path, without the query):

- a pattern starts with ``/``; segments are separated by ``/``;
- a literal segment matches itself exactly (case-sensitive, as sent on the wire);
- ``{name}`` matches exactly one non-empty segment (``/v3/wallets/{address}/trades``);
- ``*``, only as the last segment, matches the rest: zero or more segments
  (``/v3/*`` matches ``/v3``, ``/v3/markets`` and ``/v3/markets/slug/x``);
- a trailing ``/`` is ignored, on the pattern and on the request path alike.

Host patterns: ``api.example.com`` (compared without regard to case),
``*.example.com`` (any subdomain, not the bare domain), either with ``:PORT``
to match only that port (a URL without a port has its scheme's default).
Methods: a list of method names, compared in upper case; absent means any.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .amounts import Amount, to_amount
from .errors import ProtocolError

__all__ = ["RouteError", "UrlRoute", "RouteTable", "compile_path", "normalize_path", "parse_route"]

_NAME = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\}$")
_METHOD = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?(:[0-9]{1,5})?$")
_RESERVED = "{}*"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class RouteError(ValueError):
    """A route that cannot be used; ``field`` names the offending field (``"path"``, ``"methods[1]"``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def compile_path(pattern: str) -> re.Pattern[str]:
    """Return the regular expression of a path ``pattern``; raise ``RouteError`` (field ``path``) saying what is wrong."""
    if not isinstance(pattern, str) or not pattern:
        raise RouteError("path", f"a path pattern must be a non-empty string starting with \"/\", not {pattern!r}")
    if not pattern.startswith("/"):
        raise RouteError("path", f"path pattern {pattern!r} must start with \"/\" (e.g. \"/v3/trades\")")
    if "?" in pattern or "#" in pattern:
        raise RouteError("path", f"path pattern {pattern!r} must not hold a query or fragment: routes match the path only")
    segments = pattern.rstrip("/").split("/")[1:]
    parts = []
    for index, segment in enumerate(segments):
        if segment == "*":
            if index != len(segments) - 1:
                raise RouteError(
                    "path", f"in path pattern {pattern!r}, \"*\" may only be the last segment (it matches the rest)"
                )
            parts.append("(?:/.*)?")
        elif _NAME.match(segment):
            parts.append("/[^/]+")
        elif not segment:
            raise RouteError("path", f"path pattern {pattern!r} has an empty segment (\"//\")")
        elif any(char in segment for char in _RESERVED):
            raise RouteError(
                "path",
                f"in path pattern {pattern!r}, segment {segment!r} is neither literal nor a whole "
                f"\"{{name}}\" or \"*\" segment (\"{{\", \"}}\" and \"*\" cannot appear inside a segment)",
            )
        else:
            parts.append("/" + re.escape(segment))
    return re.compile("".join(parts) + r"\Z")


def normalize_path(path: str) -> str:
    """Return ``path`` as patterns see it: without query or fragment, without trailing ``/`` ("" for the root)."""
    end = len(path)
    for mark in ("?", "#"):
        at = path.find(mark)
        if at >= 0 and at < end:
            end = at
    return path[:end].rstrip("/")


def _host(value: Any) -> str:
    if not isinstance(value, str) or not _HOST.match(value):
        raise RouteError(
            "host",
            f"host {value!r} is not a host name: write e.g. \"api.polynode.dev\", \"*.example.com\" or "
            f"\"localhost:8080\" (no scheme, no path)",
        )
    if ":" in value and not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise RouteError("host", f"host {value!r} has a port out of range 1-65535")
    return value.lower()


def _methods(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise RouteError("methods", f"methods must be a list of method names such as [\"GET\", \"POST\"], not {value!r}")
    if not value:
        raise RouteError("methods", "methods must name at least one method; leave it out to match every method")
    methods = []
    for index, method in enumerate(value):
        if not isinstance(method, str) or not _METHOD.match(method):
            raise RouteError(f"methods[{index}]", f"{method!r} is not an HTTP method name (e.g. \"GET\")")
        methods.append(method.upper())
    return tuple(methods)


def parse_route(
    path: Any, endpoint: Any, host: Any = None, methods: Any = None, cost: Any = None
) -> UrlRoute:
    """Return the ``UrlRoute`` these fields describe; raise ``RouteError`` naming the first bad field.

    ``cost`` None leaves the endpoint's own cost; otherwise it must be a
    positive exact amount (``to_amount``).
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise RouteError("endpoint", f"endpoint must be a non-empty endpoint name, not {endpoint!r}")
    regex = compile_path(path)
    host_pattern = None if host is None else _host(host)
    method_names = None if methods is None else _methods(methods)
    amount = None
    if cost is not None:
        try:
            amount = to_amount(cost, "cost")
        except (TypeError, ValueError) as exc:
            raise RouteError("cost", f"cost {cost!r} is not an amount: {exc}") from None
        if amount <= 0:
            raise RouteError("cost", f"cost {cost!r} must be positive")
    return UrlRoute(path, endpoint, host_pattern, method_names, amount, regex)


@dataclass(frozen=True, slots=True)
class UrlRoute:
    """One route: requests matching ``host``, ``methods`` and ``path`` are calls of ``endpoint``.

    ``host`` and ``methods`` None match anything; ``cost`` None means the
    endpoint's own cost. Build one with ``parse_route`` (which validates).
    """

    path: str
    endpoint: str
    host: str | None = None
    methods: tuple[str, ...] | None = None
    cost: Amount | None = None
    regex: re.Pattern[str] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.regex is None:
            object.__setattr__(self, "regex", compile_path(self.path))

    def matches(self, method: str, host: str | None, port: int | None, path: str) -> bool:
        """Report whether a request matches; ``path`` must be normalized (``normalize_path``), ``host`` lower case."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.host is not None and not _host_matches(self.host, host, port):
            return False
        return self.regex.match(path) is not None

    def to_wire(self) -> dict[str, Any]:
        """Return the route as the ``routes`` reply carries it."""
        return {
            "host": self.host,
            "methods": None if self.methods is None else list(self.methods),
            "path": self.path,
            "endpoint": self.endpoint,
            "cost": self.cost,
        }

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> UrlRoute:
        """Return the route a ``routes`` reply item describes; raise ``RouteError`` when it is not one."""
        if not isinstance(item, Mapping):
            raise RouteError("route", f"a route must be a map, not {item!r:.100}")
        return parse_route(item.get("path"), item.get("endpoint"), item.get("host"), item.get("methods"), item.get("cost"))


def _host_matches(pattern: str, host: str | None, port: int | None) -> bool:
    if host is None:
        return False
    name, _, wanted_port = pattern.partition(":")
    if wanted_port and port != int(wanted_port):
        return False
    if name.startswith("*."):
        return host.endswith(name[1:]) and len(host) > len(name) - 1
    return host == name


@dataclass(frozen=True, slots=True)
class RouteTable:
    """A key's routes, in order; ``match`` returns the first that fits a request.

    ``provider`` names the key's provider (for its feedback formats); ``routes``
    may be empty, and then every request passes through unrouted.
    """

    provider: str | None
    routes: tuple[UrlRoute, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.routes)

    def match(self, method: str, url: str) -> UrlRoute | None:
        """Return the first route matching ``method`` on the absolute ``url``, or None."""
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())
        return self.match_parts(method, parts.hostname, port, parts.path)

    def match_parts(self, method: str, host: str | None, port: int | None, path: str) -> UrlRoute | None:
        """Return the first route matching the request's parts (``path`` as sent, query allowed), or None."""
        if not self.routes:
            return None
        path = normalize_path(path)
        host = host.lower() if host else None
        for route in self.routes:
            if route.matches(method, host, port, path):
                return route
        return None

    @classmethod
    def from_routes(cls, provider: str | None, routes: Iterable[UrlRoute | Mapping[str, Any]]) -> RouteTable:
        """Return a table of ``routes``: ``UrlRoute`` objects or wire/TOML-shaped maps (validated)."""
        return cls(provider, tuple(route if isinstance(route, UrlRoute) else UrlRoute.from_wire(route) for route in routes))

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any]) -> RouteTable:
        """Return the table a ``routes`` reply carries; raise ``ProtocolError`` when it is not one."""
        provider = reply.get("provider")
        items = reply.get("routes")
        if not isinstance(items, list) or not (provider is None or isinstance(provider, str)):
            raise ProtocolError(f"the daemon's routes reply is not a provider and a list of routes: {reply!r:.300}")
        try:
            return cls.from_routes(provider, items)
        except RouteError as exc:
            raise ProtocolError(f"the daemon sent a route this client cannot use ({exc}): {reply!r:.300}") from exc

    def extended(self, first: Sequence[UrlRoute | Mapping[str, Any]]) -> RouteTable:
        """Return this table with the routes ``first`` put before its own (local routes that win)."""
        if not first:
            return self
        return RouteTable(self.provider, RouteTable.from_routes(self.provider, first).routes + self.routes)
