"""Dialects against llama-cpp-python's real server running the embedded Gemma 3 270M.

The server rejects ``response_format: json_schema`` with a 500; with ``dialect: llama-cpp``
forge sends ``{"type": "json_object", "schema": ...}`` instead, and the server's grammar makes
even the 270M base model answer with JSON that matches the schema.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from forge_core import (
    ChatRequest,
    Forge,
    Message,
    Provider,
)
from forge_core.backends import build_backends
from forge_core.backends.http.openai.wire import build_body
from forge_provider_support import FORCE_WEATHER, weather_tool
from forge_test_support import (
    LocalServer,
    attempt_timeouts,
    config_for,
    ollama_on,
    openai_compatible_on,
)

pytestmark = pytest.mark.local_server

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
    },
    "required": ["ok", "colour"],
}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
CITIES = ["Paris", "Tokyo"]
WEATHER_TOOL = weather_tool("city", enum=CITIES)


def _matches_schema(text: str | None) -> bool:
    data = json.loads(text or "")
    return (
        isinstance(data, dict)
        and set(SCHEMA["required"]) <= set(data)
        and isinstance(data["ok"], bool)
        and data["colour"] in SCHEMA["properties"]["colour"]["enum"]
    )


@pytest.mark.parametrize("spec", [openai_compatible_on, ollama_on], ids=["openai", "ollama"])
def test_json_schema_output_through_the_llama_cpp_dialect_is_valid(
    local_server: LocalServer, spec: Any
) -> None:
    forge = Forge(config_for(spec(local_server, dialect="llama-cpp")))
    answer = forge.chat(
        "Is the sky blue? Answer in JSON.", response_format=SCHEMA_FORMAT, max_tokens=24
    )
    assert answer.finish_reason == "stop"
    assert _matches_schema(answer.content)


def test_forced_tool_call_from_the_real_server_is_schema_valid(tool_server: LocalServer) -> None:
    forge = Forge(config_for(openai_compatible_on(tool_server)))
    answer = forge.chat(
        "Weather in Paris?", tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER, max_tokens=24
    )
    assert answer.finish_reason == "tool_calls"
    (call,) = answer.tool_calls
    assert call.name == "get_weather"
    assert call.arguments["city"] in CITIES
    assert call.id and call.id != "get_weather"


def test_streamed_tool_call_from_the_real_server_arrives_complete_with_one_id(
    tool_server: LocalServer,
) -> None:
    backend = build_backends(config_for(openai_compatible_on(tool_server)))[Provider.OPENAI]
    request = ChatRequest(
        messages=[Message(role="user", content="Weather in Paris?")],
        tools=[WEATHER_TOOL],
        tool_choice=FORCE_WEATHER,
        max_tokens=24,
    )
    chunks = list(backend.stream(request, tool_server.model, attempt_timeouts()))
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    assert len(deltas) > 1
    assert len({delta.id for delta in deltas}) == 1
    (final,) = [chunk for chunk in chunks if chunk.finish_reason]
    (call,) = final.tool_calls
    assert call.id == deltas[0].id
    assert call.name == "get_weather" and call.arguments["city"] in CITIES
    assert json.loads("".join(delta.arguments for delta in deltas)) == call.arguments


def test_llama_cpp_dialect_turns_required_with_one_tool_into_forcing_it(
    tool_server: LocalServer,
) -> None:
    backend = build_backends(config_for(openai_compatible_on(tool_server, dialect="llama-cpp")))[
        Provider.OPENAI
    ]
    request = ChatRequest(
        messages=[Message(role="user", content="Weather in Paris?")],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        max_tokens=24,
    )
    answer = backend.chat(request, tool_server.model, attempt_timeouts())
    (call,) = answer.tool_calls
    assert call.name == "get_weather" and call.arguments["city"] in CITIES


def test_llama_cpp_dialect_requires_one_of_several_tools_through_emulation(
    tool_server: LocalServer,
) -> None:
    # The server fails `required` with a 500; forge emulates it with an anyOf of the calls.
    other = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "name": "get_time"}}
    backend = build_backends(config_for(openai_compatible_on(tool_server, dialect="llama-cpp")))[
        Provider.OPENAI
    ]
    request = ChatRequest(
        messages=[Message(role="user", content="Weather in Paris?")],
        tools=[WEATHER_TOOL, other],
        tool_choice="required",
        max_tokens=48,
    )
    answer = backend.chat(request, tool_server.model, attempt_timeouts())
    (call,) = answer.tool_calls
    assert call.name in ("get_weather", "get_time") and isinstance(call.arguments["city"], str)
    assert answer.finish_reason == "tool_calls"


def test_llama_cpp_dialect_offers_tools_without_a_tool_choice_as_auto() -> None:
    request = ChatRequest(messages=[Message(role="user", content="hi")], tools=[WEATHER_TOOL])
    # The server offers no tools at all when tool_choice is missing; OpenAI's default is auto.
    assert build_body(request, "m", stream=False, dialect="llama-cpp")["tool_choice"] == "auto"
    assert "tool_choice" not in build_body(request, "m", stream=False)
