"""llama-cpp-python's real server, configured without a ``dialect:`` key: forge identifies it,
speaks its dialect, learns from what it refuses, and no kind of request takes the endpoint from
the others.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from forge_core import ChatRequest, FallbackFailed, Forge, Message, Provider
from forge_core.backends import OpenAICompatibleClient, build_backends
from forge_provider_support import weather_tool
from forge_test_support import LocalServer, attempt_timeouts, config_for, openai_compatible_on

pytestmark = pytest.mark.local_server

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
    "required": ["colour"],
}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
CITIES = ["Paris", "Tokyo"]
WEATHER = weather_tool("city", enum=CITIES)
OTHER = {**WEATHER, "function": {**WEATHER["function"], "name": "get_time"}}


def _client(server: LocalServer, **extra: Any) -> OpenAICompatibleClient:
    backend = build_backends(config_for(openai_compatible_on(server, **extra)))[Provider.OPENAI]
    assert isinstance(backend, OpenAICompatibleClient)
    return backend


def _valid(text: str | None) -> bool:
    data = json.loads(text or "")
    return isinstance(data, dict) and data.get("colour") in ("red", "green", "blue")


@pytest.mark.parametrize("fixture", ["local_server", "tool_server"])
def test_both_chat_formats_are_identified_as_llama_cpp_pythons_server(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    server: LocalServer = request.getfixturevalue(fixture)
    assert _client(server).server_dialect().name == "llama-cpp"


def test_json_schema_output_works_without_a_dialect_key(local_server: LocalServer) -> None:
    forge = Forge(config_for(openai_compatible_on(local_server)))
    answer = forge.chat("Sky colour as JSON.", response_format=SCHEMA_FORMAT, max_tokens=24)
    assert _valid(answer.content)
    assert [attempt.ok for attempt in answer.route.attempts] == [True]


def test_required_with_one_tool_is_a_forced_call_without_a_dialect_key(
    tool_server: LocalServer,
) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Weather in Paris?")],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=24,
    )
    (call,) = _client(tool_server).chat(request, tool_server.model, attempt_timeouts()).tool_calls
    assert call.name == "get_weather" and call.arguments["city"] in CITIES


def test_a_refused_json_schema_is_learned_from_on_the_real_server(
    local_server: LocalServer,
) -> None:
    # Said as plain OpenAI, so the server refuses the schema (HTTP 500, a validation error).
    forge = Forge(config_for(openai_compatible_on(local_server, dialect="openai-compatible")))
    for _ in range(10):
        answer = forge.chat("Sky colour as JSON.", response_format=SCHEMA_FORMAT, max_tokens=24)
        assert _valid(answer.content)
        assert [attempt.ok for attempt in answer.route.attempts] == [True]
        plain = forge.chat("Say hello.", max_tokens=8)
        assert plain.provider is Provider.OPENAI
    (circuit,) = forge.stats()["circuits"].values()
    assert circuit["state"] == "closed" and circuit["times_opened"] == 0


def test_a_poisoned_request_kind_among_plain_ones_never_takes_the_endpoint(
    tool_server: LocalServer,
) -> None:
    # chatml-function-calling cannot require one of several tools: said as plain OpenAI, the
    # server fails every such request.
    forge = Forge(config_for(openai_compatible_on(tool_server, dialect="openai-compatible")))
    for _ in range(10):
        with pytest.raises(FallbackFailed):
            forge.chat("Weather?", tools=[WEATHER, OTHER], tool_choice="required", max_tokens=8)
        plain = forge.chat("Say hello.", max_tokens=8)
        assert plain.provider is Provider.OPENAI
        assert [attempt.ok for attempt in plain.route.attempts] == [True]
    (circuit,) = forge.stats()["circuits"].values()
    assert circuit["state"] == "closed" and circuit["times_opened"] == 0
