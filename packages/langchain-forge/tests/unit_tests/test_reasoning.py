"""The model's thinking reaches LangChain as ``additional_kwargs["reasoning_content"]`` (v0, as
the partner packages put it), invoked and streamed, and a ``reasoning`` content block, whoever
served; signed thinking is kept whole (``reasoning_parts``, v1 ``extras``) and read back from
every shape an earlier AIMessage may hold it in; the reasoning options on every level."""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import Provider, ReasoningPart, TextPart, Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
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


# -- every serving provider, signed parts, v1 content, reading back, the request fields -------

SIGNED = [
    ReasoningPart(text="2 and 2 make 4.", signature="sig-1"),
    ReasoningPart(redacted="opaque"),
]
SIGNED_BLOCKS = [
    {
        "type": "reasoning",
        "reasoning": "2 and 2 make 4.",
        "extras": {"signature": "sig-1", "provider": "anthropic"},
    },
    {"type": "non_standard", "value": {"type": "redacted_thinking", "data": "opaque"}},
]


def _anthropic(*replies: Any, **options: Any) -> tuple[ForgeChat, ScriptedBackend]:
    backend = ScriptedBackend(*replies, model="claude", provider="anthropic")
    chat = ForgeChat(
        config=config_for({"name": "anthropic"}), backends={"anthropic": backend}, **options
    )
    return chat, backend


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama", "openrouter"])
def test_content_blocks_show_the_thinking_whoever_served(provider: str) -> None:
    answer = _chat(provider).invoke("2+2?")
    assert answer.response_metadata["provider"] == provider
    assert answer.response_metadata["model_provider"] == "forge"
    assert [block["type"] for block in answer.content_blocks] == ["reasoning", "text"]


def test_tool_calls_show_in_content_blocks_when_anthropic_served() -> None:
    chat, _ = _anthropic(Reply(tool_calls=[("f", {"a": 1})]))
    assert [b["type"] for b in chat.invoke("hi").content_blocks] == ["tool_call"]


def test_signed_thinking_is_kept_whole_for_the_next_turn_invoked_and_streamed() -> None:
    reply = Reply("4", reasoning_parts=SIGNED)
    chat, _ = _anthropic(reply)
    kept = [
        {
            "type": "reasoning",
            "text": "2 and 2 make 4.",
            "signature": "sig-1",
            "provider": "anthropic",
        },
        {"type": "reasoning", "text": "", "redacted": "opaque", "provider": "anthropic"},
    ]
    answer = chat.invoke("2+2?")
    assert answer.content == "4"
    assert answer.additional_kwargs["reasoning_parts"] == kept
    merged = merge_chunks(list(chat.stream("2+2?")))
    assert merged.additional_kwargs["reasoning_parts"] == kept
    assert merged.additional_kwargs["reasoning_content"] == "2 and 2 make 4."


def test_v1_content_is_reasoning_blocks_then_text_then_tool_calls() -> None:
    chat, _ = _anthropic(
        Reply("4", reasoning_parts=SIGNED, tool_calls=[("f", {})]), output_version="v1"
    )
    answer = chat.invoke("2+2?")
    assert answer.content[:3] == [*SIGNED_BLOCKS, {"type": "text", "text": "4"}]
    assert answer.content[3]["type"] == "tool_call"
    assert answer.content_blocks == answer.content


def test_v1_streams_the_thinking_as_reasoning_blocks_before_the_text() -> None:
    chat = _chat("openai").model_copy(update={"output_version": "v1"})
    merged = merge_chunks(list(chat.stream("2+2?")))
    types = [block["type"] for block in merged.content_blocks]
    assert types == ["reasoning", "text"]
    assert merged.content_blocks[0]["reasoning"] == "2 and 2 make 4."


@pytest.mark.parametrize(
    "previous",
    [
        # ForgeChat's own v0 answer.
        AIMessage(
            content="Let me check.",
            additional_kwargs={
                "reasoning_content": "2 and 2 make 4.",
                "reasoning_parts": [
                    {
                        "type": "reasoning",
                        "text": "2 and 2 make 4.",
                        "signature": "sig-1",
                        "provider": "anthropic",
                    },
                    {"type": "reasoning", "redacted": "opaque", "provider": "anthropic"},
                ],
            },
            tool_calls=[{"name": "f", "args": {}, "id": "toolu_1"}],
        ),
        # v1 blocks (ForgeChat's, and ChatAnthropic's under output_version="v1").
        AIMessage(
            content=[*SIGNED_BLOCKS, {"type": "text", "text": "Let me check."}],
            tool_calls=[{"name": "f", "args": {}, "id": "toolu_1"}],
        ),
        # ChatAnthropic's own content blocks.
        AIMessage(
            content=[
                {"type": "thinking", "thinking": "2 and 2 make 4.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
            ],
            tool_calls=[{"name": "f", "args": {}, "id": "toolu_1"}],
        ),
    ],
    ids=["v0", "v1", "chat-anthropic"],
)
def test_an_earlier_turn_sends_its_signed_thinking_back(previous: AIMessage) -> None:
    chat, backend = _anthropic(Reply("done"))
    chat.invoke([HumanMessage("2+2?"), previous, ToolMessage("4", tool_call_id="toolu_1")])
    sent = backend.calls[0].request.messages[1]
    assert sent.parts == [
        ReasoningPart(text="2 and 2 make 4.", signature="sig-1", provider=Provider.ANTHROPIC),
        ReasoningPart(redacted="opaque", provider=Provider.ANTHROPIC),
        TextPart(text="Let me check."),
    ]
    assert [call.id for call in sent.tool_calls] == ["toolu_1"]


def test_unsigned_reasoning_content_goes_back_as_an_unsigned_part() -> None:
    chat, backend = _anthropic(Reply("done"))
    previous = AIMessage(content="4", additional_kwargs={"reasoning_content": "2 and 2."})
    chat.invoke([HumanMessage("2+2?"), previous, HumanMessage("and 3+3?")])
    assert backend.calls[0].request.messages[1].parts == [
        ReasoningPart(text="2 and 2."),
        TextPart(text="4"),
    ]


def test_reasoning_is_asked_on_the_constructor_bind_and_per_call() -> None:
    chat, backend = _anthropic(Reply("4"), reasoning=True)
    chat.invoke("a")
    chat.bind(reasoning_effort="high").invoke("b")
    chat.invoke("c", reasoning_budget=2048)
    asked = [call.request for call in backend.calls]
    assert [(r.reasoning, r.reasoning_effort, r.reasoning_budget) for r in asked] == [
        (True, None, None),
        (True, "high", None),
        (True, None, 2048),
    ]


@pytest.mark.parametrize(
    ("name", "forge_name"), [("thinking", "reasoning_budget"), ("think", "reasoning")]
)
def test_other_chat_models_reasoning_options_are_refused_naming_forges(
    name: str, forge_name: str
) -> None:
    with pytest.raises(ValueError, match=forge_name):
        ForgeChat(**{name: True})
    chat, _ = _anthropic(Reply("4"))
    with pytest.raises(TypeError, match=forge_name):
        chat.invoke("hi", **{name: True})
