"""The thinking OpenAI-compatible servers return apart from the answer reaches
`ChatResponse.reasoning` and, streamed, `ChatChunk.reasoning` before the text: DeepSeek, vLLM
and llama-server's ``reasoning_content``, OpenRouter's and Ollama ``/v1``'s ``reasoning``."""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import (
    Capabilities,
    CapabilityMismatch,
    ChatChunk,
    ChatRequest,
    FallbackFailed,
    Forge,
    Message,
    Provider,
    ReasoningPart,
    StreamInterrupted,
    TextPart,
)
from forge_core.backends.http.openai.tool_emulation import emulated_stream
from forge_core.backends.http.openai.wire import parse_chunk, parse_completion
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for


def _completion(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "deepseek-reasoner",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }


def _chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "deepseek-reasoner",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a_completion_keeps_the_thinking_apart(field: str) -> None:
    message = {"role": "assistant", "content": "4", field: "2 and 2 make 4."}
    answer = parse_completion(_completion(message), Provider.OPENAI, "m")
    assert (answer.content, answer.reasoning) == ("4", "2 and 2 make 4.")


def test_a_completion_without_thinking_has_none() -> None:
    message = {"role": "assistant", "content": "4", "reasoning_content": None}
    assert parse_completion(_completion(message), Provider.OPENAI, "m").reasoning is None


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a_streamed_thinking_delta_is_its_own_piece(field: str) -> None:
    thought = parse_chunk(_chunk({"role": "assistant", field: "2 and 2"}), Provider.OPENAI, "m")
    text = parse_chunk(_chunk({"content": "4", field: None}), Provider.OPENAI, "m")
    assert (thought.reasoning, thought.content) == ("2 and 2", "")
    assert (text.reasoning, text.content) == ("", "4")


def _forge(*replies: Any) -> Forge:
    backend = ScriptedBackend(*replies, model="m")
    return Forge(config_for({"name": "openai"}), backends={"openai": backend})


def test_forge_chat_and_stream_carry_the_thinking_before_the_text() -> None:
    reply = Reply("4", reasoning="2 and 2 make 4.")
    forge = _forge(reply, reply)
    assert forge.chat("2+2?").reasoning == "2 and 2 make 4."
    chunks = list(forge.stream("2+2?"))
    assert [(c.reasoning, c.content) for c in chunks if c.reasoning or c.content] == [
        ("2 and 2 make 4.", ""),
        ("", "4"),
    ]


def test_a_stream_that_dies_after_thinking_was_shown_does_not_fail_over_silently() -> None:
    dying = ScriptedBackend(
        Reply("never", reasoning="thinking...", fail_after=0), model="m", provider="ollama"
    )
    cloud = ScriptedBackend(Reply("4"), model="m")
    forge = Forge(
        config_for({"name": "ollama"}, {"name": "openai"}),
        backends={"ollama": dying, "openai": cloud},
    )
    with pytest.raises(StreamInterrupted):
        list(forge.stream("2+2?"))
    assert cloud.calls == []


def test_an_emulated_tool_stream_passes_the_thinking_through() -> None:
    def chunk(**fields: Any) -> ChatChunk:
        return ChatChunk(provider=Provider.OPENAI, model="m", **fields)

    upstream = [
        chunk(reasoning="Paris, so "),
        chunk(reasoning="call it."),
        chunk(content='{"name": "get_weather", '),
        chunk(content='"arguments": {"city": "Paris"}}', finish_reason="stop"),
    ]
    out = list(emulated_stream(iter(upstream), forced=False))
    assert [c.reasoning for c in out] == ["Paris, so ", "call it.", ""]
    assert [call.name for call in out[-1].tool_calls] == ["get_weather"]


# -- routing on the reasoning capability, signed parts through the router --------------------


def test_a_request_for_reasoning_skips_a_candidate_that_cannot_think() -> None:
    plain = ScriptedBackend("no thoughts", provider="ollama", capabilities=Capabilities())
    thinker = ScriptedBackend(Reply("4", reasoning="2 and 2."), model="m")
    forge = Forge(
        config_for({"name": "ollama"}, {"name": "openai"}),
        backends={"ollama": plain, "openai": thinker},
    )
    answer = forge.chat(
        ChatRequest(messages=[Message(role="user", content="2+2?")], reasoning=True)
    )
    assert (answer.provider, answer.reasoning) == (Provider.OPENAI, "2 and 2.")
    assert plain.calls == []
    assert "lacks reasoning" in answer.route.drops[0].reason


def test_no_candidate_that_can_think_fails_naming_reasoning() -> None:
    plain = ScriptedBackend("no thoughts", capabilities=Capabilities())
    forge = Forge(config_for({"name": "openai"}), backends={"openai": plain})
    request = ChatRequest(messages=[Message(role="user", content="2+2?")], reasoning_effort="low")
    with pytest.raises(FallbackFailed, match="lacks reasoning"):
        forge.chat(request)


def test_reasoning_false_needs_no_thinking_candidate() -> None:
    plain = ScriptedBackend("4", capabilities=Capabilities())
    forge = Forge(config_for({"name": "openai"}), backends={"openai": plain})
    request = ChatRequest(messages=[Message(role="user", content="2+2?")], reasoning=False)
    assert forge.chat(request).content == "4"


def test_a_model_that_cannot_think_fails_over_to_one_that_can() -> None:
    refusing = ScriptedBackend(
        CapabilityMismatch('ollama: HTTP 400: "llama3.2" does not support thinking'),
        provider="ollama",
    )
    thinker = ScriptedBackend(Reply("4", reasoning="2 and 2."), model="m")
    forge = Forge(
        config_for({"name": "ollama"}, {"name": "openai"}),
        backends={"ollama": refusing, "openai": thinker},
    )
    answer = forge.chat(
        ChatRequest(messages=[Message(role="user", content="2+2?")], reasoning=True)
    )
    assert [(a.provider, a.error_kind) for a in answer.route.attempts] == [
        (Provider.OLLAMA, "capability"),
        (Provider.OPENAI, None),
    ]


SIGNED = [
    ReasoningPart(text="2 and 2", signature="sig-1"),
    ReasoningPart(redacted="opaque"),
]


def test_signed_parts_are_answered_and_streamed_whole_on_the_last_chunk() -> None:
    reply = Reply("4", reasoning_parts=SIGNED)
    backend = ScriptedBackend(reply, provider="anthropic", model="m")
    forge = Forge(config_for({"name": "anthropic"}), backends={"anthropic": backend})
    stamped = [part.model_copy(update={"provider": Provider.ANTHROPIC}) for part in SIGNED]

    answer = forge.chat("2+2?")
    assert (answer.reasoning_parts, answer.reasoning) == (stamped, "2 and 2")

    chunks = list(forge.stream("2+2?"))
    assert [c.reasoning for c in chunks if c.reasoning] == ["2 and 2"]
    assert chunks[-1].reasoning_parts == stamped
    assert all(not c.reasoning_parts for c in chunks[:-1])


def test_unsigned_streamed_thinking_is_one_part_on_the_last_chunk() -> None:
    chunks = list(_forge(Reply("4", reasoning="2 and 2 make 4.")).stream("2+2?"))
    assert chunks[-1].reasoning_parts == [ReasoningPart(text="2 and 2 make 4.")]


def test_an_answer_becomes_the_assistant_message_to_send_back() -> None:
    answer = _forge(Reply("4", reasoning="2 and 2.", tool_calls=[("f", {})])).chat("2+2?")
    message = answer.to_message()
    assert message.role == "assistant"
    assert message.parts == [ReasoningPart(text="2 and 2."), TextPart(text="4")]
    assert [call.name for call in message.tool_calls] == ["f"]
    assert _forge("4").chat("2+2?").to_message().content == "4"
