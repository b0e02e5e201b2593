"""`forge_core.testing.ScriptedBackend` behind a real `Forge`: answers, faults, retries, tool
calls, streams, embeddings, circuits, and what it records of each call.

No server and no model: every deployment is a scripted backend, given to ``Forge(backends=...)``
under its deployment name, so the router plans, retries, opens circuits and falls back over
them as it would over real clients. Retry waits go through a `FakeClock`.
"""

from __future__ import annotations

import copy
import traceback
from typing import Any

import pytest
from forge_core import (
    ChatRequest,
    Forge,
    ForgeConfig,
    Message,
    RateLimited,
    RouteTrail,
    Usage,
)
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


def test_a_stream_yields_the_text_in_the_scripted_number_of_pieces() -> None:
    usage = Usage(input_tokens=2, output_tokens=4)
    forge = Forge(
        config(), backends={"openai": ScriptedBackend(Reply("abcdefghi", chunks=4, usage=usage))}
    )
    *body, last = list(forge.stream(PROMPT))
    assert [chunk.content for chunk in body] == ["abc", "de", "fg", "hi"]
    assert (last.content, last.finish_reason, last.usage) == ("", "stop", usage)
    assert last.route is not None and last.route.deployment == "openai"


def test_a_deep_copy_keeps_the_same_backend() -> None:
    backend = ScriptedBackend("one")
    copied = copy.deepcopy({"openai": backend})
    assert copied["openai"] is backend
