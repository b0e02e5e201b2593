"""`forge_core.testing.ScriptedBackend` behind a real `Forge`: answers, faults, retries, tool
calls, streams, embeddings, circuits, and what it records of each call.

No server and no model: every deployment is a scripted backend, given to ``Forge(backends=...)``
under its deployment name, so the router plans, retries, opens circuits and falls back over
them as it would over real clients. Retry waits go through a `FakeClock`.
"""

from __future__ import annotations

import copy
import json
import traceback
from typing import Any

import pytest
from fake_clock import FakeClock
from forge_core import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    FallbackFailed,
    Forge,
    ForgeConfig,
    Message,
    Provider,
    ProviderUnavailable,
    RateLimited,
    RouteTrail,
    StreamInterrupted,
    ToolCall,
    Usage,
)
from forge_core.routing.streaming import CONTINUE_PROMPT
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import attempt_timeouts

PROMPT = "What is the capital of France?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def config(**routing: Any) -> ForgeConfig:
    """forge's default deployments and order (ollama, huggingface, openai, anthropic,
    openrouter; local first), with ``routing`` keys set; never a forge.yaml from disk."""
    return ForgeConfig.model_validate({"routing": routing})


def trail(route: RouteTrail | None) -> list[tuple[str | None, str | None]]:
    """``(deployment, error kind or None)`` for each attempt of ``route``."""
    assert route is not None
    return [(a.deployment, None if a.ok else a.error_kind) for a in route.attempts]


def text_of(chunks: list[Any]) -> str:
    return "".join(chunk.content for chunk in chunks)


# -- answers ----------------------------------------------------------------------------------


def test_an_answer_comes_from_the_given_deployment_with_its_route() -> None:
    usage = Usage(input_tokens=7, output_tokens=1)
    cloud = ScriptedBackend(Reply("Paris", usage=usage), model="gpt-test")
    forge = Forge(config(), backends={"openai": cloud})
    answer = forge.chat(PROMPT)
    assert answer.content == "Paris"
    assert (answer.provider, answer.model, answer.finish_reason) == (
        Provider.OPENAI,
        "gpt-test",
        "stop",
    )
    assert answer.usage == usage
    assert trail(answer.route) == [("openai", None)]
    # Only the given backends are routed to: every other deployment is a drop, never called.
    assert {drop.deployment for drop in answer.route.drops} == {
        "ollama",
        "huggingface",
        "anthropic",
        "openrouter",
    }


def test_replies_are_played_in_order_and_the_last_one_again() -> None:
    backend = ScriptedBackend("one", "two")
    forge = Forge(config(), backends={"openai": backend})
    assert [forge.chat(PROMPT).content for _ in range(3)] == ["one", "two", "two"]
    assert len(backend.calls) == 3


def test_a_chat_response_is_played_as_is_with_the_route_of_this_call() -> None:
    scripted = ChatResponse(
        content="as given",
        finish_reason="length",
        provider=Provider.OPENAI,
        model="given-model",
        route=RouteTrail(provider=Provider.ANTHROPIC, model="stale"),
    )
    forge = Forge(config(), backends={"openai": ScriptedBackend(scripted)})
    first, second = forge.chat(PROMPT), forge.chat(PROMPT)
    assert (first.content, first.finish_reason, first.model) == (
        "as given",
        "length",
        "given-model",
    )
    assert trail(first.route) == [("openai", None)] and first.route.provider is Provider.OPENAI
    # Each call gets its own copy: the router's stamping never reaches the script.
    assert first is not second and first.route is not second.route
    assert scripted.route.provider is Provider.ANTHROPIC


def test_a_chat_response_without_a_finish_reason_streams_whole_under_its_model() -> None:
    scripted = ChatResponse(
        content="streamed", provider=Provider.OPENAI, model="given-model", route=RouteTrail()
    )
    forge = Forge(config(), backends={"openai": ScriptedBackend(scripted)})
    chunks = list(forge.stream(PROMPT))
    assert text_of(chunks) == "streamed"
    assert {chunk.model for chunk in chunks} == {"given-model"}
    assert chunks[-1].finish_reason == "stop"
    assert trail(chunks[-1].route) == [("openai", None)]


# -- faults and fallback ----------------------------------------------------------------------


def test_a_scripted_fault_falls_back_to_the_next_deployment() -> None:
    local = ScriptedBackend(ProviderUnavailable("connection refused"), provider="ollama")
    cloud = ScriptedBackend("Paris")
    forge = Forge(config(), backends={"ollama": local, "openai": cloud})
    answer = forge.chat(PROMPT)
    assert answer.content == "Paris"
    assert answer.provider is Provider.OPENAI
    assert trail(answer.route) == [("ollama", "unavailable"), ("openai", None)]
    assert answer.route.attempts[0].message == "connection refused"
    assert (len(local.calls), len(cloud.calls)) == (1, 1)


def test_every_deployment_failing_raises_fallback_failed_with_every_attempt() -> None:
    local = ScriptedBackend(ProviderUnavailable("ollama down"), provider="ollama")
    cloud = ScriptedBackend(ProviderUnavailable("openai down"))
    forge = Forge(config(max_retries=0), backends={"ollama": local, "openai": cloud})
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(PROMPT)
    assert trail(caught.value.route) == [("ollama", "unavailable"), ("openai", "unavailable")]
    assert "ollama down" in str(caught.value) and "openai down" in str(caught.value)


def test_a_lone_deployment_is_retried_with_growing_backoff() -> None:
    clock = FakeClock()
    down = ProviderUnavailable("busy")
    backend = ScriptedBackend(down, down, down, "at last")
    forge = Forge(
        config(max_retries=3, retry_jitter_seconds=0, retry_initial_backoff_seconds=0.5),
        backends={"openai": backend},
        clock=clock,
    )
    answer = forge.chat(PROMPT)
    assert answer.content == "at last"
    assert trail(answer.route) == [("openai", "unavailable")] * 3 + [("openai", None)]
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert len(backend.calls) == 4


def test_rate_limited_waits_retry_after_when_no_other_deployment_is_left() -> None:
    clock = FakeClock()
    backend = ScriptedBackend(RateLimited("slow down", retry_after=2.0), "after the wait")
    forge = Forge(config(max_retries=2), backends={"openai": backend}, clock=clock)
    answer = forge.chat(PROMPT)
    assert answer.content == "after the wait"
    assert trail(answer.route) == [("openai", "rate_limited"), ("openai", None)]
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_rate_limited_is_retried_max_retries_times(max_retries: int) -> None:
    clock = FakeClock()
    backend = ScriptedBackend(RateLimited("slow down", retry_after=1.5))
    forge = Forge(config(max_retries=max_retries), backends={"openai": backend}, clock=clock)
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(PROMPT)
    assert trail(caught.value.route) == [("openai", "rate_limited")] * (max_retries + 1)
    assert clock.sleeps == [1.5] * max_retries
    assert len(backend.calls) == max_retries + 1


def test_rate_limited_fails_over_at_once_while_another_deployment_is_left() -> None:
    clock = FakeClock()
    busy = ScriptedBackend(RateLimited("slow down", retry_after=2.0))
    backup = ScriptedBackend("from the backup", provider="anthropic")
    forge = Forge(
        config(max_retries=2), backends={"openai": busy, "anthropic": backup}, clock=clock
    )
    answer = forge.chat(PROMPT)
    assert trail(answer.route) == [("openai", "rate_limited"), ("anthropic", None)]
    assert clock.sleeps == []
    assert len(busy.calls) == 1


def test_a_retry_after_beyond_the_cap_is_not_waited_out() -> None:
    clock = FakeClock()
    backend = ScriptedBackend(RateLimited("come back later", retry_after=120), "never asked")
    forge = Forge(
        config(max_retries=2, retry_after_cap_seconds=30), backends={"openai": backend}, clock=clock
    )
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(PROMPT)
    assert trail(caught.value.route) == [("openai", "rate_limited")]
    assert clock.sleeps == [] and len(backend.calls) == 1


def test_a_scripted_fault_is_a_new_error_each_time_it_is_played() -> None:
    scripted = RateLimited("slow down", retry_after=3.0, provider="openai", status_code=429)
    backend = ScriptedBackend(scripted)
    request = ChatRequest(messages=[Message(role="user", content=PROMPT)])
    raised = []
    for _ in range(3):
        with pytest.raises(RateLimited) as caught:
            backend.chat(request, "m", attempt_timeouts())
        raised.append(caught.value)
    assert len({id(error) for error in raised}) == 3 and scripted not in raised
    assert all(
        (e.retry_after, e.provider, e.status_code, str(e)) == (3.0, "openai", 429, "slow down")
        for e in raised
    )
    # Raising one object again would pile every earlier raise's frames onto its traceback.
    depths = [len(traceback.extract_tb(error.__traceback__)) for error in raised]
    assert depths[0] == depths[1] == depths[2]
    assert scripted.__traceback__ is None


# -- tool calls -------------------------------------------------------------------------------


def test_tool_calls_are_answered_with_made_up_ids() -> None:
    backend = ScriptedBackend(
        Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})])
    )
    forge = Forge(config(), backends={"openai": backend})
    answer = forge.chat(PROMPT, tools=[WEATHER_TOOL])
    assert answer.content is None
    assert answer.finish_reason == "tool_calls"
    assert answer.tool_calls == [
        ToolCall(id="call_0", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"}),
    ]
    assert backend.calls[0].request is not None
    assert backend.calls[0].request.tools == [WEATHER_TOOL]


def test_a_deployment_without_tool_calling_is_skipped_for_a_request_with_tools() -> None:
    plain = ScriptedBackend("no tools here", provider="ollama", capabilities=Capabilities())
    tools = ScriptedBackend(Reply(tool_calls=[ToolCall(id="w1", name="get_weather")]))
    forge = Forge(config(), backends={"ollama": plain, "openai": tools})
    answer = forge.chat(PROMPT, tools=[WEATHER_TOOL])
    assert [call.id for call in answer.tool_calls] == ["w1"]
    assert plain.calls == []
    [drop] = [d for d in answer.route.drops if d.deployment == "ollama"]
    assert drop.reason == "lacks tool calling"
    # Without tools the same deployment serves first (local first).
    assert forge.chat(PROMPT).content == "no tools here"


def test_streamed_tool_calls_come_as_deltas_then_whole_in_the_finish_chunk() -> None:
    calls = [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
    backend = ScriptedBackend(Reply("Checking.", tool_calls=calls, chunks=2))
    forge = Forge(config(), backends={"openai": backend})
    chunks = list(forge.stream(PROMPT, tools=[WEATHER_TOOL]))
    *body, last = chunks
    # The text first, then one delta per call, then the finish chunk.
    assert [chunk.content for chunk in body if chunk.content] == ["Check", "ing."]
    deltas = [delta for chunk in body for delta in chunk.tool_call_deltas]
    assert [(d.index, d.id, d.name, json.loads(d.arguments)) for d in deltas] == [
        (0, "call_0", "get_weather", {"city": "Paris"}),
        (1, "call_1", "get_weather", {"city": "Oslo"}),
    ]
    assert all(not chunk.tool_calls for chunk in body)
    assert last.finish_reason == "tool_calls"
    assert [(c.id, c.arguments) for c in last.tool_calls] == [
        ("call_0", {"city": "Paris"}),
        ("call_1", {"city": "Oslo"}),
    ]
    assert trail(last.route) == [("openai", None)]
    assert backend.calls[0].kind == "stream"


# -- streams ----------------------------------------------------------------------------------


def test_a_stream_yields_the_text_in_the_scripted_number_of_pieces() -> None:
    usage = Usage(input_tokens=2, output_tokens=4)
    forge = Forge(
        config(), backends={"openai": ScriptedBackend(Reply("abcdefghi", chunks=4, usage=usage))}
    )
    *body, last = list(forge.stream(PROMPT))
    assert [chunk.content for chunk in body] == ["abc", "de", "fg", "hi"]
    assert (last.content, last.finish_reason, last.usage) == ("", "stop", usage)
    assert last.route is not None and last.route.deployment == "openai"


def test_a_stream_that_dies_after_its_first_chunk_raises_stream_interrupted() -> None:
    dying = ScriptedBackend(Reply("Hello world", chunks=3, fail_after=1))
    backup = ScriptedBackend("never asked", provider="anthropic")
    forge = Forge(config(), backends={"openai": dying, "anthropic": backup})
    received: list[str] = []
    with pytest.raises(StreamInterrupted) as caught:
        for chunk in forge.stream(PROMPT):
            received.append(chunk.content)
    assert received == ["Hell"]
    assert caught.value.partial == "Hell"
    assert trail(caught.value.route) == [("openai", "unavailable")]
    # After the first token there is no failover (routing.midstream: raise).
    assert backup.calls == []


def test_a_stream_can_die_with_the_scripted_error() -> None:
    dying = ScriptedBackend(
        Reply("abcdef", chunks=3, fail_after=2, error=RateLimited("quota gone", retry_after=9))
    )
    forge = Forge(config(), backends={"openai": dying})
    with pytest.raises(StreamInterrupted) as caught:
        list(forge.stream(PROMPT))
    assert caught.value.partial == "abcd"
    assert trail(caught.value.route) == [("openai", "rate_limited")]
    assert "quota gone" in str(caught.value)


@pytest.mark.parametrize(
    "fault",
    [Reply("never seen", fail_after=0), ProviderUnavailable("refused")],
    ids=["dies-before-first-token", "fails-to-open"],
)
def test_a_stream_failing_before_its_first_token_falls_over(fault: Reply | Exception) -> None:
    failing = ScriptedBackend(fault)
    backup = ScriptedBackend("backup answer", provider="anthropic")
    forge = Forge(config(), backends={"openai": failing, "anthropic": backup})
    chunks = list(forge.stream(PROMPT))
    assert text_of(chunks) == "backup answer"
    assert trail(chunks[-1].route) == [("openai", "unavailable"), ("anthropic", None)]
    assert chunks[-1].provider is Provider.ANTHROPIC


def test_midstream_continue_asks_the_next_deployment_to_carry_on() -> None:
    dying = ScriptedBackend(Reply("Paris is", chunks=2, fail_after=1))
    backup = ScriptedBackend("Paris is the capital.", provider="anthropic")
    forge = Forge(config(midstream="continue"), backends={"openai": dying, "anthropic": backup})
    chunks = list(forge.stream(PROMPT))
    assert text_of(chunks) == "Paris is the capital."
    [call] = backup.calls
    assert call.request is not None
    assert [(m.role, m.content) for m in call.request.messages] == [
        ("user", PROMPT),
        ("assistant", "Pari"),
        ("user", CONTINUE_PROMPT),
    ]


# -- what a call records ------------------------------------------------------------------------


def test_calls_record_the_kind_the_model_and_the_request() -> None:
    backend = ScriptedBackend("ok", model="default-model")
    forge = Forge(config(), backends={"openai": backend})
    forge.chat(PROMPT, model="openai:gpt-x", temperature=0.3, max_tokens=5, stop=["\n"])
    list(
        forge.stream([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    )
    forge.embed(["first", "second"], model="openai:embedder")
    chat, stream, embed = backend.calls
    assert (chat.kind, chat.model) == ("chat", "gpt-x")
    assert chat.request is not None
    assert (chat.request.temperature, chat.request.max_tokens, chat.request.stop) == (
        0.3,
        5,
        ["\n"],
    )
    assert [(m.role, m.content) for m in chat.request.messages] == [("user", PROMPT)]
    assert (stream.kind, stream.model) == ("stream", "default-model")
    assert stream.request is not None
    assert [m.role for m in stream.request.messages] == ["system", "user"]
    assert (embed.kind, embed.model, embed.texts, embed.request) == (
        "embed",
        "embedder",
        ["first", "second"],
        None,
    )


# -- embeddings -------------------------------------------------------------------------------


def test_embed_gives_the_scripted_vector_for_every_text() -> None:
    backend = ScriptedBackend(embedding=[0.6, 0.8], model="embedder")
    forge = Forge(config(), backends={"openai": backend})
    response = forge.embed(["one", "two", "three"])
    assert response.vectors == [[0.6, 0.8]] * 3
    assert (response.provider, response.model) == (Provider.OPENAI, "embedder")
    assert trail(response.route) == [("openai", None)]
    assert backend.calls[0].texts == ["one", "two", "three"]


def test_embed_falls_back_from_a_scripted_fault_and_skips_non_embedders() -> None:
    no_embeddings = Capabilities(tools=True)
    chat_only = ScriptedBackend(provider="ollama", capabilities=no_embeddings)
    down = ScriptedBackend(ProviderUnavailable("embedder down"), provider="openrouter")
    serving = ScriptedBackend(embedding=[1.0, 2.0], provider="anthropic")
    forge = Forge(
        config(max_retries=0),
        backends={"ollama": chat_only, "openrouter": down, "anthropic": serving},
        overrides={"providers": {"fallback": {"order": ["ollama", "openrouter", "anthropic"]}}},
    )
    response = forge.embed(["text"])
    assert response.vectors == [[1.0, 2.0]]
    assert trail(response.route) == [("openrouter", "unavailable"), ("anthropic", None)]
    assert chat_only.calls == []


# -- async ------------------------------------------------------------------------------------


async def test_achat_answers_and_falls_back() -> None:
    local = ScriptedBackend(ProviderUnavailable("down"), provider="ollama")
    cloud = ScriptedBackend(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    forge = Forge(config(), backends={"ollama": local, "openai": cloud})
    answer = await forge.achat(PROMPT, tools=[WEATHER_TOOL])
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert trail(answer.route) == [("ollama", "unavailable"), ("openai", None)]
    assert [call.kind for call in local.calls + cloud.calls] == ["chat", "chat"]


async def test_astream_streams_and_raises_stream_interrupted_after_the_first_token() -> None:
    backend = ScriptedBackend(Reply("streamed", chunks=2), Reply("cut short", fail_after=1))
    forge = Forge(config(), backends={"openai": backend})
    chunks = [chunk async for chunk in forge.astream(PROMPT)]
    assert [chunk.content for chunk in chunks] == ["stre", "amed", ""]
    assert trail(chunks[-1].route) == [("openai", None)]
    with pytest.raises(StreamInterrupted) as caught:
        async for _ in forge.astream(PROMPT):
            pass
    assert caught.value.partial == "cut"
    assert [call.kind for call in backend.calls] == ["stream", "stream"]


async def test_aembed_gives_the_scripted_vector() -> None:
    forge = Forge(config(), backends={"openai": ScriptedBackend(embedding=[0.5])})
    response = await forge.aembed(["a", "b"])
    assert response.vectors == [[0.5], [0.5]]


# -- circuits and health ----------------------------------------------------------------------


def test_repeated_failures_open_the_circuit_so_the_backend_is_no_longer_called() -> None:
    clock = FakeClock()
    down = ProviderUnavailable("down")
    primary = ScriptedBackend(down, down, "back again", endpoint="scripted://primary")
    backup = ScriptedBackend("from the backup", provider="anthropic")
    forge = Forge(
        config(max_retries=0, breaker_failure_threshold=2, breaker_cooldown_seconds=10),
        backends={"openai": primary, "anthropic": backup},
        clock=clock,
    )
    for _ in range(2):
        assert forge.chat(PROMPT).provider is Provider.ANTHROPIC
    assert forge.stats()["circuits"]["scripted://primary"]["state"] == "open"

    skipped = forge.chat(PROMPT)
    assert len(primary.calls) == 2  # the open circuit keeps the call away from it
    assert trail(skipped.route) == [("anthropic", None)]
    [drop] = [d for d in skipped.route.drops if d.deployment == "openai"]
    assert "circuit open" in drop.reason

    clock.advance(10)
    probed = forge.chat(PROMPT)
    assert probed.content == "back again"
    assert trail(probed.route) == [("openai", None)]
    assert forge.stats()["circuits"]["scripted://primary"]["state"] == "closed"


def test_an_unhealthy_backend_is_skipped_once_its_health_is_checked() -> None:
    sick = ScriptedBackend("unseen", provider="ollama", healthy=False)
    well = ScriptedBackend("healthy answer")
    forge = Forge(config(), backends={"ollama": sick, "openai": well})
    assert forge.check_health() == {"ollama": "down", "openai": "up"}
    answer = forge.chat(PROMPT)
    assert answer.content == "healthy answer"
    assert sick.calls == []
    assert any(d.deployment == "ollama" and "health" in d.reason for d in answer.route.drops)


# -- the backend itself -----------------------------------------------------------------------


def test_a_backend_given_to_another_deployment_name_than_the_configs_is_refused() -> None:
    with pytest.raises(ValueError, match="not deployments"):
        Forge(config(), backends={"gpt": ScriptedBackend()})


def test_a_deep_copy_keeps_the_same_backend() -> None:
    backend = ScriptedBackend("one")
    copied = copy.deepcopy({"openai": backend})
    assert copied["openai"] is backend
