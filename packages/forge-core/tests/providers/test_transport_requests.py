"""What the `Transport` puts on the wire: the URL httpx itself would build from the client's base
URL and the call's path, and the attempt's timeouts in httpx's own form; and when it runs the
attempt's ``while_waiting`` work (once the request is sent, before the answer is read)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fault_server import FaultServer, held
from forge_core import Provider, ProviderError
from forge_core.backends.base import AttemptTimeouts
from forge_core.backends.http.pool import ClientPool, _AsyncClient, _Client
from forge_core.backends.http.transport import Call, Transport, join_url

BASES = [
    "http://127.0.0.1:8080/v1",
    "http://h",
    "http://h/",
    "https://api.openai.com/v1/",
    "https://openrouter.ai/api/v1",
    "http://user:pw@h/x%20y/v1",
    "http://h/v1?x=1",
    "http://[::1]:80/v1",
]
PATHS = [
    "/chat/completions",
    "chat/completions",
    "/models",
    "",
    "/a b",
    "/x?y=1",
    "https://o/props",
]


@pytest.mark.parametrize("base", BASES)
def test_a_path_joins_its_base_url_as_httpx_joins_them(base: str) -> None:
    client = httpx.Client(base_url=base)
    for path in PATHS:
        expected = client.build_request("GET", path).url
        joined = join_url(client.base_url, path)
        assert joined == expected and joined.raw_path == expected.raw_path, path


def _no_error_expected(response: httpx.Response, model: str) -> ProviderError:
    raise AssertionError(f"unexpected HTTP {response.status_code}")


class _Capturing(ClientPool):
    """Every client answers ``{}`` from memory and keeps the requests it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, json={})

    def _new_sync_client(self, base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url, transport=httpx.MockTransport(self._answer))


def test_a_call_is_sent_to_the_joined_url_with_the_attempts_timeouts() -> None:
    pool = _Capturing()
    transport = Transport(
        Provider.OPENAI,
        "http://h:1/v1",
        headers=lambda: {"Accept": "application/json"},
        status_error=_no_error_expected,
        timeout_seconds=7.0,
        pool=pool,
    )
    timeouts = AttemptTimeouts(connect=2.0, read=9.0, total_deadline=time.monotonic() + 600)
    transport.send(Call("POST", "/chat/completions", "m", {"a": 1}), timeouts)
    transport.send(Call("GET", "/models"))
    transport.send(Call("GET", "/models"), 3.0)
    first, second, third = pool.sent
    assert str(first.url) == "http://h:1/v1/chat/completions" and first.content == b'{"a":1}'
    assert first.extensions["timeout"] == {"connect": 2.0, "read": 9.0, "write": 9.0, "pool": 9.0}
    assert first.headers["accept"] == "application/json"
    assert str(second.url) == "http://h:1/v1/models"
    assert second.extensions["timeout"] == httpx.Timeout(7.0).as_dict()
    assert third.extensions["timeout"] == httpx.Timeout(3.0).as_dict()


def test_a_replaced_client_gets_its_urls_joined_again() -> None:
    pool = _Capturing()
    transport = Transport(
        Provider.OPENAI,
        "http://h:1/v1",
        headers=dict,
        status_error=_no_error_expected,
        pool=pool,
    )
    transport.send(Call("GET", "/models"))
    pool.close()
    transport.send(Call("GET", "/models"))
    assert [str(request.url) for request in pool.sent] == ["http://h:1/v1/models"] * 2
    assert transport._urls["/models"][0] is pool.sync_client("http://h:1/v1").base_url


def _cookie_server(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/login":
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"}, json={})
    return httpx.Response(200, json={"cookie": request.headers.get("cookie")})


def test_the_pooled_clients_keep_the_cookies_a_server_sets() -> None:
    client = _Client(base_url="http://h", transport=httpx.MockTransport(_cookie_server))
    assert client.get("/a").json() == {"cookie": None}
    client.get("/login")
    assert client.get("/a").json() == {"cookie": "session=abc"}
    assert client.cookies["session"] == "abc"
    client.cookies = {"other": "1"}
    assert client.get("/a").json() == {"cookie": "other=1"}


async def test_the_pooled_async_clients_keep_the_cookies_a_server_sets() -> None:
    transport = httpx.MockTransport(_cookie_server)
    async with _AsyncClient(base_url="http://h", transport=transport) as client:
        assert (await client.get("/a")).json() == {"cookie": None}
        await client.get("/login")
        assert (await client.get("/a")).json() == {"cookie": "session=abc"}


@pytest.mark.parametrize("mode", ["send", "asend", "items", "aitems"])
def test_while_waiting_runs_once_a_call_is_sent_and_before_its_answer_is_read(mode: str) -> None:
    # Each answer is held until the call's waiting work ran: run after the answer was read, it
    # would never come (the attempt's 5 s read timeout would fail the call).
    releases = [threading.Event(), threading.Event()]
    ran: list[bool] = []
    with FaultServer([held(releases[0], "one"), held(releases[1], "two")]) as server:
        pool = ClientPool()
        transport = Transport(
            Provider.OPENAI,
            server.base_url,
            headers=dict,
            status_error=_no_error_expected,
            pool=pool,
        )

        def waiting() -> None:
            # The server has the whole request by now (a bounded wait).
            ran.append(server.wait_for_requests(len(ran) + 1, timeout=5.0))
            releases[len(ran) - 1].set()

        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):
            timeouts = AttemptTimeouts(
                connect=2.0, read=5.0, total_deadline=time.monotonic() + 60, while_waiting=waiting
            )
            call = Call("POST", "/chat/completions", "m", body | {"stream": "items" in mode})
            if mode == "send":
                response = transport.send(call, timeouts)
                assert response.json()["choices"]
                # Once it ran httpcore is not asked to call it again for this request.
                assert "trace" not in response.request.extensions
            elif mode == "asend":
                response = asyncio.run(transport.asend(call, timeouts))
                assert response.json()["choices"]
                assert "trace" not in response.request.extensions
            elif mode == "items":
                assert list(transport.items(call, timeouts))
            else:
                assert asyncio.run(_collected(transport.aitems(call, timeouts)))
        pool.close()
    assert ran == [True, True]


async def _collected(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


def test_calls_without_an_attempts_waiting_work_send_no_trace_extension() -> None:
    pool = _Capturing()
    transport = Transport(
        Provider.OPENAI, "http://h:1/v1", headers=dict, status_error=_no_error_expected, pool=pool
    )
    transport.send(
        Call("GET", "/models"),
        AttemptTimeouts(connect=2.0, read=9.0, total_deadline=time.monotonic() + 600),
    )
    transport.send(Call("GET", "/models"))
    assert all("trace" not in request.extensions for request in pool.sent)
