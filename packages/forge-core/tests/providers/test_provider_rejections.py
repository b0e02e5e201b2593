"""A request refused for one of its parameters is a `BadRequest` for that request: sent once
more in another form where forge knows one, and what the endpoint refused even so is
remembered, so the planner sends such requests elsewhere.

The servers are fault servers that describe nothing about themselves (so no dialect is
detected: what happens is learned from the refusal) and refuse exactly as the named servers do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from dialect_servers import (
    LLAMA_CPP_PYTHON_JSON_SCHEMA_ERROR,
    SelfDescribingServer,
    refuse,
    refuse_json_object_like_lm_studio,
    refuse_json_schema_like_llama_cpp_python,
    response_type,
)
from fake_clock import FakeClock
from fault_server import Fault, status
from forge_core import BadRequest, ChatRequest, Forge, Message, Provider, ProviderUnavailable
from forge_core.backends import OpenAICompatibleClient, build_backends
from forge_provider_support import weather_tool
from forge_test_support import attempt_timeouts, config_for

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
AS_JSON_OBJECT = {"type": "json_object", "schema": SCHEMA}
WEATHER = weather_tool("city")


def _client(server: SelfDescribingServer) -> OpenAICompatibleClient:
    spec = {"name": "openai", "base_url": server.base_url, "default_model": "m"}
    backend = build_backends(config_for(spec))[Provider.OPENAI]
    assert isinstance(backend, OpenAICompatibleClient)
    return backend


def _ask(**fields: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")], max_tokens=8, **fields)


def _formats(server: SelfDescribingServer) -> list[Any]:
    return [seen.body.get("response_format") for seen in server.requests]


def _call(client: OpenAICompatibleClient, request: ChatRequest, how: str) -> str:
    """The answer's text, by one of the four ways a backend is called."""
    timeouts = attempt_timeouts(10)
    if how == "chat":
        return client.chat(request, "m", timeouts).content or ""
    if how == "stream":
        return "".join(chunk.content for chunk in client.stream(request, "m", timeouts))

    async def call() -> str:
        if how == "achat":
            return (await client.achat(request, "m", timeouts)).content or ""
        return "".join([chunk.content async for chunk in client.astream(request, "m", timeouts)])

    return asyncio.run(call())


def _refuse_any_json_output(body: dict[str, Any]) -> Fault | None:
    if response_type(body) in ("json_schema", "json_object"):
        return refuse(500, LLAMA_CPP_PYTHON_JSON_SCHEMA_ERROR)
    return None


@pytest.mark.parametrize("how", ["chat", "stream", "achat", "astream"])
def test_json_schema_refused_like_llama_cpp_python_is_retried_as_json_object_then_sent_so(
    how: str,
) -> None:
    with SelfDescribingServer(refuses=refuse_json_schema_like_llama_cpp_python) as server:
        client = _client(server)
        assert _call(client, _ask(response_format=SCHEMA_FORMAT), how)
        assert _formats(server) == [SCHEMA_FORMAT, AS_JSON_OBJECT]
        assert _call(client, _ask(response_format=SCHEMA_FORMAT), how)
        assert _formats(server)[2:] == [AS_JSON_OBJECT]  # learned: no refusal the second time
    assert client.capabilities("m").structured_output


def test_json_mode_refused_like_lm_studio_is_retried_as_a_schema_allowing_any_object() -> None:
    with SelfDescribingServer(refuses=refuse_json_object_like_lm_studio) as server:
        client = _client(server)
        _call(client, _ask(response_format={"type": "json_object"}), "chat")
    assert [fmt["type"] for fmt in _formats(server)] == ["json_object", "json_schema"]
    assert _formats(server)[1]["json_schema"]["schema"] == {"type": "object"}


def test_a_422_naming_tool_choice_turns_required_with_one_tool_into_forcing_it() -> None:
    def refuse_required(body: dict[str, Any]) -> Fault | None:
        if body.get("tool_choice") != "required":
            return None
        detail = [{"loc": ["body", "tool_choice"], "msg": "unsupported", "type": "value_error"}]
        return refuse(422, {"detail": detail})

    with SelfDescribingServer(refuses=refuse_required) as server:
        client = _client(server)
        _call(client, _ask(tools=[WEATHER], tool_choice="required"), "chat")
    assert [seen.body["tool_choice"] for seen in server.requests] == [
        "required",
        {"type": "function", "function": {"name": "get_weather"}},
    ]


def test_openais_param_field_names_what_was_refused() -> None:
    def refuse_stream_options(body: dict[str, Any]) -> Fault | None:
        if "stream_options" not in body:
            return None
        error = {"message": "Unrecognized request argument", "param": "stream_options"}
        return refuse(400, {"error": {**error, "type": "invalid_request_error"}})

    with SelfDescribingServer(refuses=refuse_stream_options) as server:
        assert _call(_client(server), _ask(), "stream")
    assert ["stream_options" in seen.body for seen in server.requests] == [True, False]


def test_refused_in_every_form_is_a_bad_request_remembered_as_unsupported() -> None:
    with SelfDescribingServer(refuses=_refuse_any_json_output) as server:
        client = _client(server)
        with pytest.raises(BadRequest) as caught:
            client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
    assert caught.value.status_code == 500 and not caught.value.retryable
    assert caught.value.kind == "bad_request"
    assert "Input should be 'text' or 'json_object'" in str(caught.value)
    assert _formats(server) == [SCHEMA_FORMAT, AS_JSON_OBJECT]
    capabilities = client.capabilities("m")
    assert not capabilities.structured_output
    assert capabilities.tools and capabilities.json_mode  # only what was refused
    assert client.capabilities("other-model").structured_output  # per endpoint and model


def test_a_refused_feature_without_a_translation_is_remembered_at_once() -> None:
    def refuse_tools(body: dict[str, Any]) -> Fault | None:
        if not body.get("tools"):
            return None
        return refuse(400, {"error": {"message": "tools param requires --jinja flag"}})

    with SelfDescribingServer(refuses=refuse_tools) as server:
        client = _client(server)
        with pytest.raises(BadRequest):
            client.chat(_ask(tools=[WEATHER], tool_choice="auto"), "m", attempt_timeouts(10))
    assert len(server.requests) == 1
    assert not client.capabilities("m").tools


def test_a_refusal_that_names_no_parameter_is_not_retried_and_teaches_nothing() -> None:
    refusal = status(400, "This model's maximum context length is 2048 tokens.")
    with SelfDescribingServer(default=refusal) as server:
        client = _client(server)
        with pytest.raises(BadRequest):
            client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
    assert len(server.requests) == 1
    assert client.capabilities("m") == build_backends(config_for())[Provider.OPENAI].capabilities(
        "m"
    )


def test_a_500_that_is_not_a_validation_error_stays_a_server_fault() -> None:
    with SelfDescribingServer(default=status(500, "CUDA out of memory")) as server:
        client = _client(server)
        with pytest.raises(ProviderUnavailable) as caught:
            client.chat(_ask(response_format=SCHEMA_FORMAT), "m", attempt_timeouts(10))
    assert caught.value.retryable and caught.value.status_code == 500
    assert len(server.requests) == 1


def test_the_planner_sends_a_refused_feature_elsewhere_and_keeps_plain_requests_here() -> None:
    with (
        SelfDescribingServer(refuses=_refuse_any_json_output) as refusing,
        SelfDescribingServer() as other,
    ):
        config = config_for(
            {"name": "openai", "base_url": refusing.base_url, "default_model": "m"},
            {"name": "openrouter", "base_url": other.base_url, "default_model": "m"},
        )
        forge = Forge(config, clock=FakeClock())
        first = forge.chat("JSON please", response_format=SCHEMA_FORMAT)
        assert [(a.provider, a.error_kind) for a in first.route.attempts] == [
            (Provider.OPENAI, "bad_request"),
            (Provider.OPENROUTER, None),
        ]
        again = forge.chat("JSON please", response_format=SCHEMA_FORMAT)
        assert again.provider is Provider.OPENROUTER
        assert [a.provider for a in again.route.attempts] == [Provider.OPENROUTER]
        (drop,) = again.route.drops
        assert drop.provider is Provider.OPENAI and "JSON-schema output" in drop.reason
        assert forge.chat("Say hello.").provider is Provider.OPENAI
        assert len(refusing.requests) == 3  # the refusal, its one retry, the plain request
    circuit = forge.stats()["circuits"][refusing.base_url]
    assert circuit["state"] == "closed" and circuit["times_opened"] == 0


def test_error_bodies_of_vllm_and_fastapi_give_their_message() -> None:
    vllm = {"object": "error", "message": "max_tokens is too large", "type": "BadRequestError"}
    fastapi = {"detail": "Not allowed"}
    for body, text in ((vllm, "max_tokens is too large"), (fastapi, "Not allowed")):
        with (
            SelfDescribingServer(default=refuse(400, body)) as server,
            pytest.raises(BadRequest) as caught,
        ):
            _client(server).chat(_ask(), "m", attempt_timeouts(10))
        assert text in str(caught.value), json.dumps(body)
