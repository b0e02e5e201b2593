"""The streaming contract against a fault-injecting endpoint, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fake_clock import FakeClock
from fault_server import (
    FaultServer,
    close_mid_stream,
    forge_on,
    ok,
    stall_before_first_token,
    stall_mid_stream,
    status,
    truncated_sse,
)
from forge_core import (
    ChatChunk,
    FallbackFailed,
    Provider,
    ProviderUnavailable,
    StreamInterrupted,
)
from forge_core.routing.streaming import CONTINUE_PROMPT

PROMPT = "hi"


async def collect(stream: Any) -> list[ChatChunk]:
    return [chunk async for chunk in stream]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(forge: Any, mode: str, **params: Any) -> list[ChatChunk]:
    if mode == "sync":
        return list(forge.stream(PROMPT, **params))
    return asyncio.run(collect(forge.astream(PROMPT, **params)))


def text(chunks: list[ChatChunk]) -> str:
    return "".join(chunk.content for chunk in chunks)


def trail(route: Any) -> list[tuple[str, str | None]]:
    return [(a.provider.value, None if a.ok else a.error_kind) for a in route.attempts]


def test_stall_before_first_token_fails_over_at_the_first_token_limit(mode: str) -> None:
    with FaultServer([stall_before_first_token()]) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=FakeClock(), first_token_timeout_seconds=0.3)
        chunks = run(forge, mode)
        assert primary.requests[0].client_closed.wait(5)
    route = chunks[-1].route
    assert route is not None
    assert trail(route) == [("openai", "timeout"), ("openrouter", None)]
    assert "first-token timeout" in (route.attempts[0].message or "")
    assert text(chunks) == "hello from the fault server"
    assert all(chunk.provider is Provider.OPENROUTER for chunk in chunks)


def test_5xx_before_the_stream_is_retried_on_the_same_candidate(mode: str) -> None:
    clock = FakeClock()
    with FaultServer([status(503)]) as server:
        chunks = run(forge_on(server, clock=clock), mode)
    assert chunks[-1].route is not None
    assert trail(chunks[-1].route) == [("openai", "unavailable"), ("openai", None)]
    assert len(clock.sleeps) == 1
    assert text(chunks) == "hello from the fault server"


def test_stall_mid_stream_raises_interrupted_with_the_partial_text(mode: str) -> None:
    with FaultServer([stall_mid_stream("Hello, ", "wor")]) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=FakeClock(), idle_timeout_seconds=0.3)
        received: list[str] = []
        with pytest.raises(StreamInterrupted) as caught:
            if mode == "sync":
                for chunk in forge.stream(PROMPT):
                    received.append(chunk.content)
            else:

                async def consume() -> None:
                    async for chunk in forge.astream(PROMPT):
                        received.append(chunk.content)

                asyncio.run(consume())
        assert primary.requests[0].client_closed.wait(5)
    error = caught.value
    assert error.partial == "Hello, wor" == "".join(received)
    assert error.provider == "openai"
    assert error.route is not None
    assert trail(error.route) == [("openai", "timeout")]
    assert "idle timeout" in (error.route.attempts[0].message or "")
    assert backup.requests == []  # never a second, duplicated answer


def test_connection_closed_mid_stream_raises_interrupted(mode: str) -> None:
    with (
        FaultServer([close_mid_stream("The sky ", "is ")]) as primary,
        FaultServer() as backup,
        pytest.raises(StreamInterrupted) as caught,
    ):
        run(forge_on(primary, backup, clock=FakeClock()), mode)
    assert caught.value.partial == "The sky is "
    assert isinstance(caught.value.cause, ProviderUnavailable)
    assert trail(caught.value.route) == [("openai", "unavailable")]
    assert backup.requests == []


def test_truncated_event_stream_is_never_a_silent_success(mode: str) -> None:
    with (
        FaultServer([truncated_sse("The sky ")]) as server,
        pytest.raises(StreamInterrupted) as caught,
    ):
        run(forge_on(server, clock=FakeClock()), mode)
    assert caught.value.partial == "The sky "
    assert "truncated" in str(caught.value)
    assert trail(caught.value.route) == [("openai", "malformed_response")]


def test_midstream_continue_asks_the_next_candidate_to_carry_on(mode: str) -> None:
    with (
        FaultServer([close_mid_stream("The sky ", "is ")]) as primary,
        FaultServer([ok("blue.")]) as backup,
    ):
        chunks = run(forge_on(primary, backup, clock=FakeClock(), midstream="continue"), mode)
    assert text(chunks) == "The sky is blue."
    route = chunks[-1].route
    assert route is not None and route.provider is Provider.OPENROUTER
    assert trail(route) == [("openai", "unavailable"), ("openrouter", None)]
    messages = backup.requests[0].body["messages"]
    assert messages[-2] == {"role": "assistant", "content": "The sky is "}
    assert messages[-1] == {"role": "user", "content": CONTINUE_PROMPT}


def test_midstream_continue_cuts_a_continuation_that_starts_over(mode: str) -> None:
    with (
        FaultServer([close_mid_stream("The sky ", "is ")]) as primary,
        FaultServer([ok("", "The sky", " is blue.")]) as backup,
    ):
        chunks = run(forge_on(primary, backup, clock=FakeClock(), midstream="continue"), mode)
    assert text(chunks) == "The sky is blue."


def test_midstream_continue_with_nobody_left_raises_interrupted(mode: str) -> None:
    with (
        FaultServer([close_mid_stream("The sky ")]) as primary,
        FaultServer([status(401)]) as backup,
        pytest.raises(StreamInterrupted) as caught,
    ):
        run(forge_on(primary, backup, clock=FakeClock(), midstream="continue"), mode)
    assert caught.value.partial == "The sky "
    assert trail(caught.value.route) == [("openai", "unavailable"), ("openrouter", "auth")]


def test_an_empty_stream_is_a_success(mode: str) -> None:
    with FaultServer([ok("", "")]) as server:
        chunks = run(forge_on(server, clock=FakeClock()), mode)
    [last] = chunks
    assert last.content == "" and last.finish_reason == "stop"
    assert last.route is not None and trail(last.route) == [("openai", None)]


def test_all_candidates_failing_before_a_token_is_fallback_failed(mode: str) -> None:
    with (
        FaultServer([status(401)]) as primary,
        FaultServer([status(404)]) as backup,
        pytest.raises(FallbackFailed) as caught,
    ):
        run(forge_on(primary, backup, clock=FakeClock()), mode)
    assert trail(caught.value.route) == [("openai", "auth"), ("openrouter", "model_not_found")]


def test_closing_a_sync_stream_midway_closes_the_upstream_connection() -> None:
    with FaultServer([stall_mid_stream("first ", "second ")]) as server:
        forge = forge_on(server, clock=FakeClock())
        stream: Iterator[ChatChunk] = forge.stream(PROMPT)
        assert next(stream).content == "first "
        stream.close()  # type: ignore[attr-defined]
        assert server.requests[0].client_closed.wait(5)
    circuit = forge.stats()["circuits"][server.base_url]
    assert circuit["consecutive_failures"] == 0  # a cancelled call says nothing about the endpoint


async def test_cancelling_an_async_stream_midway_closes_the_upstream_connection() -> None:
    with FaultServer([stall_mid_stream("first ")]) as server:
        forge = forge_on(server, clock=FakeClock())
        stream = forge.astream(PROMPT)
        assert (await anext(stream)).content == "first "
        task = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stream.aclose()
        assert await asyncio.to_thread(server.requests[0].client_closed.wait, 5)
    assert forge.stats()["circuits"][server.base_url]["consecutive_failures"] == 0
