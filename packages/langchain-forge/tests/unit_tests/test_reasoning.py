"""The model's thinking reaches LangChain as ``additional_kwargs["reasoning_content"]`` (v0, as
the partner packages put it), invoked and streamed, and a ``reasoning`` content block."""

from __future__ import annotations

from forge_core import Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_forge import ForgeChat
from langchain_forge_support import merge_chunks


def _chat(provider: str = "ollama") -> ForgeChat:
    reply = Reply("4", reasoning="2 and 2 make 4.", usage=Usage(input_tokens=3, output_tokens=9))
    backend = ScriptedBackend(reply, reply, model="qwen3", provider=provider)
    return ForgeChat(config=config_for({"name": provider}), backends={provider: backend})


def test_invoke_puts_the_thinking_in_reasoning_content() -> None:
    answer = _chat().invoke("2+2?")
    assert answer.content == "4"
    assert answer.additional_kwargs["reasoning_content"] == "2 and 2 make 4."
    assert answer.content_blocks[0] == {"type": "reasoning", "reasoning": "2 and 2 make 4."}


def test_stream_yields_the_thinking_first_and_merges_it() -> None:
    chunks = list(_chat().stream("2+2?"))
    assert chunks[0].additional_kwargs == {"reasoning_content": "2 and 2 make 4."}
    assert chunks[0].content == ""
    merged = merge_chunks(chunks)
    assert merged.content == "4"
    assert merged.additional_kwargs["reasoning_content"] == "2 and 2 make 4."


def test_no_thinking_no_key() -> None:
    backend = ScriptedBackend(Reply("4"))
    chat = ForgeChat(config=config_for({"name": "openai"}), backends={"openai": backend})
    assert "reasoning_content" not in chat.invoke("2+2?").additional_kwargs
