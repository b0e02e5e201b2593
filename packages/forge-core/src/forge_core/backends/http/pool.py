"""Pooled httpx clients: one sync client per base URL, one async client per base URL per loop.

An ``httpx.AsyncClient`` is bound to the event loop that first used its connections; reusing
one across ``asyncio.run`` calls fails in peers. Keying async clients by the running loop keeps
each loop's connections to itself while still pooling within a loop.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
import weakref
from typing import Any

import httpx

__all__ = ["ClientPool", "default_pool"]

# As wide as the openai SDK: a router on the hot path must not queue requests its peers send.
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client, as httpx makes it by default (certifi's CA bundle,
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured, as read at the first client). Loading the
    bundle costs ~40 ms a client (more under load), paid once instead of once per host: a
    router with many hosts builds their clients in parallel threads that would otherwise
    wait on each other (a first plan over 50 Ollama hosts: ~1.2 s -> ~0.12 s)."""
    return httpx.create_ssl_context()


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, which reads a response's cookies only when it sets some.

    httpx hands every response to the jar, which first wraps the request in a
    ``urllib.request.Request`` (~15 µs) to find, almost always, no ``Set-Cookie`` header: the
    jar would store nothing then (`http.cookiejar.CookieJar.make_cookies` returns at once).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class _CookieJarOnSetCookie:
    """Gives an httpx client a `_Cookies` jar (for `_Client` and `_AsyncClient` alike)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._forge_cookies = _Cookies(options.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        return self._forge_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._forge_cookies = _Cookies(cookies)


class _Client(_CookieJarOnSetCookie, httpx.Client):
    """An `httpx.Client` whose cookie jar is a `_Cookies`; otherwise httpx's own."""


class _AsyncClient(_CookieJarOnSetCookie, httpx.AsyncClient):
    """An `httpx.AsyncClient` whose cookie jar is a `_Cookies`; otherwise httpx's own."""


class ClientPool:
    """Hands out shared httpx clients keyed by base URL (and event loop for async)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: dict[str, httpx.Client] = {}
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]
        ] = weakref.WeakKeyDictionary()

    def sync_client(self, base_url: str) -> httpx.Client:
        """The shared sync client for ``base_url``."""
        with self._lock:
            client = self._sync.get(base_url)
            if client is None or client.is_closed:
                client = _Client(base_url=base_url, limits=_LIMITS, verify=_ssl_context())
                self._sync[base_url] = client
            return client

    def async_client(self, base_url: str) -> httpx.AsyncClient:
        """The shared async client for ``base_url`` on the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            per_loop = self._async.setdefault(loop, {})
            client = per_loop.get(base_url)
            if client is None or client.is_closed:
                client = _AsyncClient(base_url=base_url, limits=_LIMITS, verify=_ssl_context())
                per_loop[base_url] = client
            return client

    def close(self) -> None:
        """Close the sync clients (async clients close with their loop)."""
        with self._lock:
            for client in self._sync.values():
                client.close()
            self._sync.clear()


default_pool = ClientPool()
