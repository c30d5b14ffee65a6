"""A requests adapter (and a session using it) that takes a permit from ratelimitd before each routed request.

Mount it where the provider's requests go::

    session = requests.Session()
    session.mount("https://api.polynode.dev/", RateLimitedAdapter(key="markets"))
    session.get("https://api.polynode.dev/v3/trades")   # the "heavy" endpoint, by the key's routes

or use ``RateLimitedSession(key=...)``, a ``requests.Session`` with the adapter
mounted for ``http://`` and ``https://``. The options are ``make_policy``'s
(``wait``, ``fail_open``, ``retries``…). Every redirect hop passes through the
adapter and is metered.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ..feedback import MAX_BODY
from .flow import send_sync
from .gate import Gate
from .policy import make_policy

__all__ = ["RateLimitedAdapter", "RateLimitedSession"]

_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout)


class _Exchange:
    __slots__ = ("send", "method", "replayable")
    network_errors = _NETWORK_ERRORS

    def __init__(self, send: Callable[[], requests.Response], request: requests.PreparedRequest) -> None:
        self.send = send
        self.method = request.method or "GET"
        # bytes and text bodies are sent again as they are; a file or a generator is not
        self.replayable = request.body is None or isinstance(request.body, (bytes, str))

    def status(self, response: requests.Response) -> int:
        return response.status_code

    def headers(self, response: requests.Response) -> Mapping[str, Any]:
        return response.headers

    def body(self, response: requests.Response) -> bytes | None:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            return None
        return response.content

    def discard(self, response: requests.Response) -> None:
        response.close()


class RateLimitedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose routed requests wait for a permit of ``key`` and report what came back.

    ``client``, ``socket``, ``sleep``, ``rng`` and the policy options are as
    for ``RateLimitedTransport``; ``adapter_options`` go to ``HTTPAdapter``
    (pool sizes). Requests matching no route (and no ``endpoint=``) are sent
    untouched.
    """

    def __init__(
        self,
        key: str,
        *,
        client: Any = None,
        socket: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        adapter_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**(adapter_options or {}))
        self.gate = Gate(make_policy(key, **options), client, socket)
        self._sleep = sleep
        self._rng = rng

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send ``request``: through the permit, report and retry steps when it is routed, else as it is."""
        send = super().send
        target = self.gate.target(request.method or "GET", request.url or "")
        if target is None:
            return send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)

        def once() -> requests.Response:
            return send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)

        return send_sync(self.gate, target, _Exchange(once, request), self._sleep, self._rng)

    def close(self) -> None:
        """Close the pools and the ratelimitd clients this adapter opened."""
        self.gate.close()
        super().close()


class RateLimitedSession(requests.Session):
    """A ``requests.Session`` with a ``RateLimitedAdapter`` for ``key`` mounted on ``http://`` and ``https://``.

    Takes the adapter's arguments; ``adapter`` is the mounted adapter.
    """

    def __init__(self, key: str, **options: Any) -> None:
        super().__init__()
        self.adapter = RateLimitedAdapter(key, **options)
        self.mount("https://", self.adapter)
        self.mount("http://", self.adapter)
