"""Cached-input, cache-creation and reasoning tokens are read from each provider's documented
usage shape, non-streamed and streamed (docs/providers.md): OpenAI's
``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens``,
Anthropic's ``cache_read_input_tokens`` and ``cache_creation_input_tokens``."""

from __future__ import annotations

import json
from typing import Any

from forge_core import Provider, Usage
from forge_core.backends import AnthropicClient
from forge_core.backends.http import anthropic
from forge_core.backends.http.openai.wire import parse_chunk, parse_completion
from httpx_sse import ServerSentEvent

OPENAI_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 256,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
OPENAI_DETAILED = Usage(
    input_tokens=2006, output_tokens=300, cached_input_tokens=1920, reasoning_tokens=256
)


def test_openai_completion_usage_details() -> None:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "o4-mini-2025-04-16",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi"},
                "finish_reason": "stop",
            }
        ],
        "usage": OPENAI_USAGE,
    }
    assert parse_completion(data, Provider.OPENAI, "o4-mini").usage == OPENAI_DETAILED


def test_openai_stream_usage_chunk_details() -> None:
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "o4-mini-2025-04-16",
        "choices": [],
        "usage": OPENAI_USAGE,
    }
    assert parse_chunk(data, Provider.OPENAI, "o4-mini").usage == OPENAI_DETAILED


def test_openai_usage_without_details_has_zero_details() -> None:
    data = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    assert parse_chunk(data, Provider.OPENAI, "m").usage == Usage(input_tokens=5, output_tokens=2)


ANTHROPIC_USAGE = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188,
    "cache_read_input_tokens": 1500,
    "output_tokens": 393,
}
ANTHROPIC_DETAILED = Usage(
    input_tokens=21 + 188 + 1500,
    output_tokens=393,
    cached_input_tokens=1500,
    cache_creation_input_tokens=188,
)


def test_anthropic_message_usage_keeps_cache_reads_and_writes_apart() -> None:
    data = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": ANTHROPIC_USAGE,
    }
    answer = anthropic._parse_message(data, "claude-sonnet-4")
    assert answer.usage == ANTHROPIC_DETAILED


def _event(name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=name, data=json.dumps({"type": name, **data}))


def test_anthropic_stream_usage_keeps_cache_details_to_the_last_chunk() -> None:
    client = AnthropicClient(default_model="claude-sonnet-4", env={})
    state = anthropic._StreamState(client, "claude-sonnet-4")
    start_usage = {**ANTHROPIC_USAGE, "output_tokens": 1}
    events = [
        _event(
            "message_start",
            {
                "message": {
                    "id": "msg_01",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-20250514",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                }
            },
        ),
        _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        _event("content_block_stop", {"index": 0}),
        _event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 393},
            },
        ),
        _event("message_stop", {}),
    ]
    chunks = [chunk for event in events for chunk in state.feed(event)]
    assert [chunk.content for chunk in chunks] == ["Hi", ""]
    assert chunks[-1].usage == ANTHROPIC_DETAILED
