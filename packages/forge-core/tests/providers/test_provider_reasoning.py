"""The thinking OpenAI-compatible servers return apart from the answer reaches
`ChatResponse.reasoning` and, streamed, `ChatChunk.reasoning` before the text: DeepSeek, vLLM
and llama-server's ``reasoning_content``, OpenRouter's and Ollama ``/v1``'s ``reasoning``."""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import ChatChunk, Forge, Provider, StreamInterrupted
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
