"""Requests, tools and contract checks shared by the provider client tests (forge-core).

The cassettes match requests on their JSON body, so `weather_tool` builds exactly the tool
definitions they were written for.
"""

from __future__ import annotations

import json
from typing import Any

from forge_cassettes import CANARY_KEYS, RecordingPool
from forge_core import ChatChunk, ChatRequest, ChatResponse, Message, Provider, ProviderError
from forge_core.backends import ChatBackend, build_backends
from forge_test_support import config_for

#: ``tool_choice`` that forces a call of `weather_tool`.
FORCE_WEATHER: dict[str, Any] = {"type": "function", "function": {"name": "get_weather"}}


def chat_request(*texts: str, system: str | None = None, **params: Any) -> ChatRequest:
    """A request of one user message per text, after an optional system message."""
    messages = [Message(role="system", content=system)] if system else []
    messages += [Message(role="user", content=text) for text in texts]
    return ChatRequest(messages=messages, **params)


def weather_tool(parameter: str, *, strict: bool = False, **extra: Any) -> dict[str, Any]:
    """The ``get_weather`` function tool with one required string ``parameter``.

    ``extra`` goes into that parameter's schema (``enum=[...]``); ``strict`` adds OpenAI's
    ``"strict": true``.
    """
    return {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {parameter: {"type": "string", **extra}},
                "required": [parameter],
            },
            **({"strict": True} if strict else {}),
        },
    }


#: A forced ``get_weather`` call with the city limited to Paris or Tokyo: what llama-cpp-python's
#: tool server is asked in the contract, and what the OpenRouter tool cassette was written for.
FORCED_WEATHER_REQUEST = chat_request(
    "Weather in Paris?",
    tools=[weather_tool("city", enum=["Paris", "Tokyo"])],
    tool_choice=FORCE_WEATHER,
    max_tokens=24,
)


def backend_for(spec: dict[str, Any], provider: Provider) -> tuple[ChatBackend, RecordingPool]:
    """The backend `build_backends` makes for one provider ``spec`` (`CANARY_KEYS` as keys),
    and the recording pool it sends through; the caller closes the pool."""
    pool = RecordingPool()
    return build_backends(config_for(spec), pool=pool, env=CANARY_KEYS)[provider], pool


def assert_text_answer(answer: ChatResponse, provider: Provider) -> None:
    """The contract of a plain chat answer: text, the provider, a normal finish, usage."""
    assert answer.content
    assert answer.provider is provider
    assert answer.finish_reason in {"stop", "length"}
    assert answer.usage is not None and answer.usage.output_tokens > 0
    assert answer.tool_calls == []


def assert_text_stream(chunks: list[ChatChunk], provider: Provider) -> None:
    """The contract of a plain stream: text, every chunk from the provider, one normal finish."""
    assert "".join(chunk.content for chunk in chunks)
    assert all(chunk.provider is provider for chunk in chunks)
    finishes = [chunk.finish_reason for chunk in chunks if chunk.finish_reason]
    assert len(finishes) == 1 and finishes[0] in {"stop", "length"}


def assert_provider_error(
    error: ProviderError, expected: type[ProviderError], provider: Provider, *, retryable: bool
) -> None:
    """``error`` is exactly ``expected``, names ``provider``, is retryable or not as given, and
    shows none of the `CANARY_KEYS`."""
    assert type(error) is expected
    assert error.provider == provider.value
    assert error.retryable is retryable
    assert all(key not in str(error) for key in CANARY_KEYS.values())


def assert_streamed_tool_calls_complete(chunks: list[ChatChunk]) -> None:
    """Streamed ``get_weather`` calls end whole on the one finishing chunk, with real, distinct
    ids that every fragment of a call carries, and arguments the fragments add up to."""
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    (final,) = [chunk for chunk in chunks if chunk.finish_reason]
    assert final.finish_reason == "tool_calls"
    calls = final.tool_calls
    assert calls and all(call.name == "get_weather" for call in calls)
    assert all(call.id and call.id != call.name for call in calls)
    assert len({call.id for call in calls}) == len(calls)
    # Every fragment carries the id of the call it belongs to, the same id the call ends with.
    assert [calls[delta.index].id for delta in deltas] == [delta.id for delta in deltas]
    for index, call in enumerate(calls):
        fragments = "".join(delta.arguments for delta in deltas if delta.index == index)
        assert json.loads(fragments) == call.arguments
        assert set(call.arguments) <= {"city", "location"} and call.arguments
