"""Token log probabilities asked for (``logprobs``, ``top_logprobs``) come back from the OpenAI
chat-completions shape: ``choices[0].logprobs.content``, answered and streamed."""

from __future__ import annotations

from typing import Any

from forge_core import Provider
from forge_core.backends.http.openai.wire import parse_chunk, parse_completion

TOKENS: list[dict[str, Any]] = [
    {
        "token": "Hi",
        "logprob": -0.01,
        "bytes": [72, 105],
        "top_logprobs": [
            {"token": "Hi", "logprob": -0.01, "bytes": [72, 105]},
            {"token": "Hello", "logprob": -4.6, "bytes": [72, 101, 108, 108, 111]},
        ],
    }
]


def test_a_completion_returns_the_token_logprobs() -> None:
    data = {
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi"},
                "logprobs": {"content": TOKENS, "refusal": None},
                "finish_reason": "stop",
            }
        ],
    }
    assert parse_completion(data, Provider.OPENAI, "m").logprobs == TOKENS


def test_a_completion_without_logprobs_has_none() -> None:
    data = {"choices": [{"message": {"content": "Hi"}, "logprobs": None, "finish_reason": "stop"}]}
    assert parse_completion(data, Provider.OPENAI, "m").logprobs is None


def test_each_streamed_chunk_has_its_tokens_logprobs() -> None:
    data = {
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "delta": {"content": "Hi"},
                "logprobs": {"content": TOKENS},
                "finish_reason": None,
            }
        ],
    }
    chunk = parse_chunk(data, Provider.OPENAI, "m")
    assert (chunk.content, chunk.logprobs) == ("Hi", TOKENS)
    plain = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    assert parse_chunk(plain, Provider.OPENAI, "m").logprobs is None
