"""Routing against llama-cpp-python's real OpenAI-compatible server on 127.0.0.1.

Routing that also runs the embedded model is in test_routing_local_server_and_model.py.
"""

from __future__ import annotations

import pytest
from forge_core import (
    ChatRequest,
    FallbackFailed,
    Forge,
    ForgeConfig,
    ImagePart,
    Message,
    OllamaUnavailable,
    Provider,
    StreamInterrupted,
    TextPart,
)
from forge_test_support import (
    LocalServer,
    closed_port_url,
    config_for,
    embedded_in_process,
    ollama_on,
    openai_compatible_on,
)

pytestmark = pytest.mark.local_server
PROMPT = "Say hello."


def test_ollama_route_through_the_v1_surface(local_server: LocalServer) -> None:
    forge = Forge(config_for(ollama_on(local_server)))
    answer = forge.chat(PROMPT, max_tokens=12)
    assert answer.content
    assert answer.provider is Provider.OLLAMA
    assert answer.model == local_server.model
    assert answer.usage is not None and answer.usage.output_tokens > 0
    assert [(a.provider, a.ok) for a in answer.route.attempts] == [(Provider.OLLAMA, True)]
    assert answer.route.provider is Provider.OLLAMA
    assert answer.route.total_ms is not None and answer.route.total_ms > 0


def test_openai_compatible_base_url_route(local_server: LocalServer) -> None:
    forge = Forge(config_for(openai_compatible_on(local_server)))
    answer = forge.chat(PROMPT, max_tokens=12)
    assert answer.content
    assert answer.provider is Provider.OPENAI
    assert answer.finish_reason in {"stop", "length"}


def test_stream_yields_content_then_one_final_chunk_with_route(local_server: LocalServer) -> None:
    forge = Forge(config_for(ollama_on(local_server)))
    chunks = list(forge.stream(PROMPT, max_tokens=12))
    assert len(chunks) >= 2
    *body, last = chunks
    assert all(chunk.content for chunk in body)
    assert all(chunk.route is None and chunk.finish_reason is None for chunk in body)
    assert last.content == ""
    assert last.finish_reason in {"stop", "length"}
    assert last.route is not None and last.route.provider is Provider.OLLAMA
    assert last.route.ttft_ms is not None and last.route.ttft_ms <= last.route.total_ms


async def test_async_chat_and_stream(local_server: LocalServer) -> None:
    forge = Forge(config_for(openai_compatible_on(local_server)))
    answer = await forge.achat(PROMPT, max_tokens=8)
    assert answer.content and answer.provider is Provider.OPENAI
    chunks = [chunk async for chunk in forge.astream(PROMPT, max_tokens=8)]
    assert "".join(c.content for c in chunks)
    assert chunks[-1].route is not None and chunks[-1].route.provider is Provider.OPENAI


def test_async_client_survives_separate_event_loops(local_server: LocalServer) -> None:
    import asyncio

    forge = Forge(config_for(ollama_on(local_server)))
    first = asyncio.run(forge.achat(PROMPT, max_tokens=4))
    second = asyncio.run(forge.achat(PROMPT, max_tokens=4))
    assert first.provider is second.provider is Provider.OLLAMA


def test_refused_first_candidate_falls_back_to_the_server(local_server: LocalServer) -> None:
    dead = closed_port_url()
    forge = Forge(
        config_for({"name": "ollama", "base_url": dead}, openai_compatible_on(local_server))
    )
    answer = forge.chat(PROMPT, max_tokens=8)
    assert answer.provider is Provider.OPENAI
    first, second = answer.route.attempts
    assert (first.provider, first.ok, first.error_kind) == (Provider.OLLAMA, False, "unavailable")
    assert "connection refused" in (first.message or "")
    assert dead in (first.message or "")
    assert (second.provider, second.ok) == (Provider.OPENAI, True)


def test_stream_fails_over_before_the_first_token(local_server: LocalServer) -> None:
    forge = Forge(
        config_for(
            {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(local_server)
        )
    )
    chunks = list(forge.stream(PROMPT, max_tokens=8))
    route = chunks[-1].route
    assert route is not None
    assert [a.provider for a in route.attempts] == [Provider.OLLAMA, Provider.OPENAI]
    assert all(chunk.provider is Provider.OPENAI for chunk in chunks)


def test_all_candidates_dead_lists_each_provider_and_cause() -> None:
    first, second = closed_port_url(), closed_port_url()
    forge = Forge(
        config_for(
            {"name": "ollama", "base_url": first},
            {"name": "openai", "base_url": second + "/v1"},
        )
    )
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(PROMPT)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("every provider failed")
    assert any(
        "ollama" in line and first in line and "connection refused" in line for line in lines
    )
    assert any(
        "openai" in line and second in line and "connection refused" in line for line in lines
    )
    assert [a.error_kind for a in caught.value.route.attempts] == ["unavailable", "unavailable"]


def test_all_dead_stream_raises_fallback_failed_not_interrupted() -> None:
    forge = Forge(config_for({"name": "ollama", "base_url": closed_port_url()}))
    with pytest.raises(FallbackFailed):
        list(forge.stream(PROMPT))


def test_fallback_disabled_tries_only_the_first(local_server: LocalServer) -> None:
    config = config_for(
        {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(local_server)
    )
    config.providers.fallback.enabled = False
    with pytest.raises(FallbackFailed) as caught:
        Forge(config).chat(PROMPT)
    assert [a.provider for a in caught.value.route.attempts] == [Provider.OLLAMA]


def test_local_only_drops_cloud_without_calling_it(local_server: LocalServer) -> None:
    forge = Forge(
        config_for(
            {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(local_server)
        )
    )
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(PROMPT, local_only=True)
    route = caught.value.route
    assert [a.provider for a in route.attempts] == [Provider.OLLAMA]
    assert [(d.provider, "local_only" in d.reason) for d in route.drops] == [
        (Provider.OPENAI, True)
    ]


def test_missing_api_key_is_a_drop_naming_the_env_var(
    local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORGE_TEST_KEY", raising=False)
    forge = Forge(
        config_for(
            openai_compatible_on(local_server, api_key_env="FORGE_TEST_KEY"),
            ollama_on(local_server),
        )
    )
    answer = forge.chat(PROMPT, max_tokens=4)
    assert answer.provider is Provider.OLLAMA
    [drop] = answer.route.drops
    assert drop.provider is Provider.OPENAI and "FORGE_TEST_KEY" in drop.reason


def test_api_key_never_appears_in_errors_or_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-forge-test-0123456789abcdef"
    monkeypatch.setenv("FORGE_TEST_KEY", secret)
    forge = Forge(
        config_for(
            {
                "name": "openai",
                "base_url": closed_port_url() + "/v1",
                "api_key_env": "FORGE_TEST_KEY",
            }
        )
    )
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(PROMPT)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert secret not in caught.value.route.model_dump_json()
    assert secret not in repr(forge.router._backends)


def test_ollama_refusal_is_ollama_unavailable() -> None:
    import time

    from forge_core.backends import build_backends
    from forge_core.backends.base import AttemptTimeouts

    config = config_for({"name": "ollama", "base_url": closed_port_url()})
    backend = build_backends(config)[Provider.OLLAMA]
    from forge_core import ChatRequest, Message

    request = ChatRequest(messages=[Message(role="user", content="hi")])
    with pytest.raises(OllamaUnavailable):
        backend.chat(
            request, "m", AttemptTimeouts(connect=1, read=1, total_deadline=time.monotonic() + 5)
        )


def test_shipped_defaults_build_without_network() -> None:
    forge = Forge(ForgeConfig())
    candidates, _ = forge.router.plan(__import__("forge_core").ChatRequest(messages=[]))
    assert candidates[0].provider is Provider.OLLAMA  # local first


def test_stream_interrupted_type_carries_partial() -> None:
    error = StreamInterrupted("x", partial="abc", provider="ollama", model="m")
    assert error.partial == "abc" and error.route is None


def test_candidate_lacking_a_needed_capability_is_skipped_not_called(
    local_server: LocalServer,
) -> None:
    image = ImagePart(url="data:image/png;base64,iVBORw0KGgo=")
    request = ChatRequest(
        messages=[Message(role="user", content=[TextPart(text="What is this?"), image])]
    )
    forge = Forge(config_for(embedded_in_process(), ollama_on(local_server)))
    candidates, drops = forge.router.plan(request)
    assert Provider.HUGGINGFACE not in [c.provider for c in candidates]
    assert drops[0].provider is Provider.HUGGINGFACE
    assert drops[0].reason == "lacks images"


def test_streamed_tool_call_arrives_assembled_on_the_last_chunk(tool_server: LocalServer) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    forge = Forge(config_for(openai_compatible_on(tool_server)))
    chunks = list(
        forge.stream(
            "Weather in Paris?",
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=64,
            temperature=0,
        )
    )
    last = chunks[-1]
    assert [call.name for call in last.tool_calls] == ["get_weather"]
    assert isinstance(last.tool_calls[0].arguments.get("city"), str)
    assert last.tool_calls[0].id and last.tool_calls[0].id != "get_weather"
    fragment_ids = {d.id for c in chunks[:-1] for d in c.tool_call_deltas if d.id}
    assert fragment_ids <= {last.tool_calls[0].id}
