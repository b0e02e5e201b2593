"""An OpenAI-compatible endpoint configured without a ``dialect:`` key is identified once, from
what its server documents about itself, and spoken to in that dialect.

Each server here is a `SelfDescribingServer` answering exactly the documented self-description
of one kind of server (``dialect_servers.SELF_DESCRIPTIONS``, the shapes docs/providers.md
relies on); the chat calls are the fault server's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dialect_servers import SELF_DESCRIPTIONS, SelfDescribingServer
from forge_core import ChatRequest, Message, Provider, ProviderUnavailable
from forge_core.backends import OpenAICompatibleClient, build_backends
from forge_core.backends.http.openai.dialects import PROBES
from forge_provider_support import weather_tool
from forge_test_support import attempt_timeouts, closed_port_url, config_for

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
WEATHER = weather_tool("city")
TIME = {**WEATHER, "function": {**WEATHER["function"], "name": "get_time"}}
FORCE_TIME = {"type": "function", "function": {"name": "get_time"}}
PROBED = [probe.path for probe in PROBES]


def _client(base_url: str, **extra: Any) -> OpenAICompatibleClient:
    spec = {"name": "openai", "base_url": base_url, "default_model": "m", **extra}
    backend = build_backends(config_for(spec))[Provider.OPENAI]
    assert isinstance(backend, OpenAICompatibleClient)
    return backend


def _ask(**fields: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")], max_tokens=8, **fields)


def _sent(server: SelfDescribingServer) -> dict[str, Any]:
    return server.requests[-1].body


@pytest.mark.parametrize(
    ("server_kind", "probes"),
    [
        ("llama-server", ["/props"]),
        ("llama-cpp", ["/props", "/openapi.json"]),
        ("vllm", ["/props", "/openapi.json", "/version"]),
        ("ollama", ["/props", "/openapi.json", "/version", "/api/version"]),
        ("lmstudio", PROBED),
    ],
)
def test_each_server_is_identified_from_its_documented_self_description(
    server_kind: str, probes: list[str]
) -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS[server_kind]) as server:
        client = _client(server.base_url)
        assert client.dialect is None
        client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
        assert client.dialect == server_kind
        assert server.probes == probes


def test_a_server_that_describes_nothing_is_openai_compatible_after_the_documented_probes() -> None:
    with SelfDescribingServer() as server:
        client = _client(server.base_url)
        client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
    assert client.dialect == "openai-compatible"
    assert server.probes == PROBED
    assert _sent(server)["response_format"] == SCHEMA_FORMAT


def test_the_server_is_identified_once_and_only_when_the_request_depends_on_it() -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS["llama-cpp"]) as server:
        client = _client(server.base_url)
        client.chat(_ask(), "m", attempt_timeouts(10))
        assert server.probes == []  # a plain request reads the same in every dialect
        for _ in range(3):
            client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
        assert server.probes == ["/props", "/openapi.json"]
        assert len(server.requests) == 4


def test_async_calls_identify_the_server_too() -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS["llama-cpp"]) as server:
        client = _client(server.base_url)

        async def ask() -> None:
            await client.achat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
            chunks = client.astream(_ask(tools=[WEATHER]), "m", attempt_timeouts(10))
            async for _ in chunks:
                pass

        asyncio.run(ask())
    assert client.dialect == "llama-cpp"
    assert server.probes == ["/props", "/openapi.json"]
    assert server.requests[0].body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    # Tools with no tool_choice mean auto, which llama-cpp-python's server gets emulated.
    assert "tools" not in server.requests[1].body
    assert server.requests[1].body["response_format"]["type"] == "json_object"


def test_an_explicit_dialect_wins_and_nothing_is_probed() -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS["llama-server"]) as server:
        client = _client(server.base_url, dialect="llama-cpp")
        assert client.dialect == "llama-cpp"
        client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
    assert server.probes == []
    assert _sent(server)["response_format"] == {"type": "json_object", "schema": SCHEMA}


def test_openai_itself_is_known_by_its_host_without_a_call() -> None:
    client = _client("https://api.openai.com/v1")
    assert client.dialect == "openai"
    body = client._body(_ask(), "gpt-4o-mini", stream=True)
    assert body["max_completion_tokens"] == 8 and "max_tokens" not in body
    assert body["stream_options"] == {"include_usage": True}


def test_an_unreachable_server_is_not_taken_for_any_dialect() -> None:
    client = _client(closed_port_url() + "/v1")
    with pytest.raises(ProviderUnavailable):
        client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(5))
    assert client.dialect is None


# -- each dialect's differences, on the wire -------------------------------------------------


def _wire(server_kind: str, request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    with SelfDescribingServer(SELF_DESCRIPTIONS[server_kind]) as server:
        client = _client(server.base_url)
        if stream:
            list(client.stream(request, "m", attempt_timeouts(10)))
        else:
            client.chat(request, "m", attempt_timeouts(10))
        return _sent(server)


def test_llama_cpp_python_gets_a_schema_as_json_object_and_no_stream_usage_request() -> None:
    body = _wire("llama-cpp", _ask(response_format=SCHEMA_FORMAT), stream=True)
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert "stream_options" not in body  # it reports no usage on streams either way
    assert body["max_tokens"] == 8


def test_llama_cpp_python_gets_auto_emulated_and_required_one_tool_as_forced() -> None:
    auto = _wire("llama-cpp", _ask(tools=[WEATHER]))
    assert "tools" not in auto and "anyOf" in auto["response_format"]["schema"]
    forced = _wire("llama-cpp", _ask(tools=[WEATHER], tool_choice="required"))
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_llama_server_forces_a_named_tool_by_offering_only_it_as_required() -> None:
    body = _wire("llama-server", _ask(tools=[WEATHER, TIME], tool_choice=FORCE_TIME))
    assert body["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in body["tools"]] == ["get_time"]


def test_ollama_v1_is_offered_only_the_named_tool() -> None:
    body = _wire("ollama", _ask(tools=[WEATHER, TIME], tool_choice=FORCE_TIME))
    assert [tool["function"]["name"] for tool in body["tools"]] == ["get_time"]
    assert body["tool_choice"] == FORCE_TIME


def test_lm_studio_gets_json_mode_as_a_schema_allowing_any_object() -> None:
    body = _wire("lmstudio", _ask(response_format={"type": "json_object"}))
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "json_object", "schema": {"type": "object"}},
    }


@pytest.mark.parametrize("server_kind", ["vllm", "ollama", "lmstudio", "llama-server"])
def test_other_servers_keep_openai_structured_output_and_max_tokens(server_kind: str) -> None:
    body = _wire(server_kind, _ask(response_format=SCHEMA_FORMAT), stream=True)
    assert body["response_format"] == SCHEMA_FORMAT
    assert body["max_tokens"] == 8 and "max_completion_tokens" not in body
    assert body["stream_options"] == {"include_usage": True}
