"""The model's thinking reaches LlamaIndex as a `ThinkingBlock` before the text, and each
streamed piece of it as ``additional_kwargs["thinking_delta"]``; signed thinking keeps its
signature (``additional_information``) and goes back in a later turn; the reasoning options."""

from __future__ import annotations

from typing import Any

from forge_core import Provider, ReasoningPart, TextPart
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


SIGNED = [
    ReasoningPart(text="2 and 2 make 4.", signature="sig-1"),
    ReasoningPart(redacted="opaque"),
]
SIGNED_INFO = [
    {"signature": "sig-1", "provider": "anthropic"},
    {"redacted": "opaque", "provider": "anthropic"},
]


def _anthropic(*replies: Reply, **options: Any) -> tuple[ForgeLLM, ScriptedBackend]:
    backend = ScriptedBackend(*replies, model="claude", provider="anthropic")
    llm = ForgeLLM(
        config=config_for({"name": "anthropic"}), backends={"anthropic": backend}, **options
    )
    return llm, backend


def _infos(message: ChatMessage) -> list[dict[str, Any]]:
    return [
        dict(block.additional_information)
        for block in message.blocks
        if isinstance(block, ThinkingBlock)
    ]


def test_signed_thinking_is_one_block_per_part_with_its_signature() -> None:
    llm, _ = _anthropic(Reply("4", reasoning_parts=SIGNED))
    message = llm.chat(USER).message
    assert _thinking(message) == ["2 and 2 make 4.", ""]
    assert _infos(message) == SIGNED_INFO


def test_a_stream_ends_with_the_signed_parts_whole() -> None:
    llm, _ = _anthropic(Reply("4", reasoning_parts=SIGNED))
    last = list(llm.stream_chat(USER))[-1].message
    assert _thinking(last) == ["2 and 2 make 4.", ""]
    assert _infos(last) == SIGNED_INFO


def test_an_earlier_answer_sends_its_thinking_back() -> None:
    llm, backend = _anthropic(Reply("4", reasoning_parts=SIGNED), Reply("done"))
    earlier = llm.chat(USER).message
    llm.chat([*USER, earlier, ChatMessage(role=MessageRole.USER, content="and 3+3?")])
    sent = backend.calls[1].request.messages[1]
    assert sent.parts == [
        ReasoningPart(text="2 and 2 make 4.", signature="sig-1", provider=Provider.ANTHROPIC),
        ReasoningPart(redacted="opaque", provider=Provider.ANTHROPIC),
        TextPart(text="4"),
    ]


def test_reasoning_is_asked_on_the_llm_and_per_call() -> None:
    llm, backend = _anthropic(Reply("4"), reasoning_effort="low")
    llm.chat(USER)
    llm.chat(USER, reasoning_budget=4096, reasoning_effort=None)
    asked = [(c.request.reasoning_effort, c.request.reasoning_budget) for c in backend.calls]
    assert asked == [("low", None), (None, 4096)]
