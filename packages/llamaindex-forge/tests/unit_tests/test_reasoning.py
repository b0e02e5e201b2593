"""The model's thinking reaches LlamaIndex as a `ThinkingBlock` before the text, and each
streamed piece of it as ``additional_kwargs["thinking_delta"]``."""

from __future__ import annotations

from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ThinkingBlock
from llamaindex_forge import ForgeLLM

USER = [ChatMessage(role=MessageRole.USER, content="2+2?")]


def _llm() -> ForgeLLM:
    reply = Reply("4", reasoning="2 and 2 make 4.")
    backend = ScriptedBackend(reply, reply, model="qwen3")
    return ForgeLLM(config=config_for({"name": "openai"}), backends={"openai": backend})


def _thinking(message: ChatMessage) -> list[str]:
    return [block.content or "" for block in message.blocks if isinstance(block, ThinkingBlock)]


def test_chat_has_a_thinking_block_before_the_text() -> None:
    answer = _llm().chat(USER)
    assert answer.message.content == "4"
    assert _thinking(answer.message) == ["2 and 2 make 4."]
    assert isinstance(answer.message.blocks[0], ThinkingBlock)


def test_stream_chat_gives_the_thinking_delta_then_the_text() -> None:
    responses = list(_llm().stream_chat(USER))
    first = responses[0]
    assert first.delta == ""
    assert first.message.additional_kwargs["thinking_delta"] == "2 and 2 make 4."
    last = responses[-1]
    assert last.message.content == "4"
    assert _thinking(last.message) == ["2 and 2 make 4."]
    assert "thinking_delta" not in last.message.additional_kwargs
