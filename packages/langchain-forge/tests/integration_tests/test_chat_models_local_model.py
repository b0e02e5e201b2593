"""ForgeChat on the real in-process model, next to llama-cpp-python's real server.

The model is Gemma 3 270M (a base model): tests check types, providers, routes and usage, never
the wording of an answer. ForgeChat against the server alone is in
test_chat_models_local_server.py.
"""

from __future__ import annotations

import pytest
from forge_core import Provider
from forge_test_support import LocalServer, config_for, embedded_in_process, ollama_on
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_forge import ForgeChat

pytestmark = [pytest.mark.local_server, pytest.mark.local_model]

PROMPT = "Say hello."
MAX_TOKENS = 12
#: Greedy decoding keeps the tiny model's output the same from run to run.
TEMPERATURE = 0.0


def _attempts(message: AIMessage | AIMessageChunk) -> list[tuple[str, bool]]:
    route = message.response_metadata["route"]
    return [(attempt["provider"], attempt["ok"]) for attempt in route["attempts"]]


def _assert_served_by(message: AIMessage | AIMessageChunk, provider: Provider, model: str) -> None:
    metadata = message.response_metadata
    assert metadata["model_provider"] == provider.value
    assert metadata["model_name"] == model
    assert metadata["finish_reason"] in {"stop", "length"}
    assert metadata["route"]["provider"] == provider.value
    assert metadata["route"]["attempts"][-1]["ok"] is True


def _collect(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


def _assert_one_final_chunk(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """Exactly one chunk (the last) carries the route, metadata and usage; it returns it."""
    assert chunks and all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks)
    with_route = [chunk for chunk in chunks if "route" in chunk.response_metadata]
    assert with_route == [chunks[-1]]
    assert [chunk for chunk in chunks if chunk.chunk_position == "last"] == [chunks[-1]]
    assert all(chunk.usage_metadata is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.content == ""
    return last


def test_per_call_model_pins_the_in_process_provider(local_server: LocalServer) -> None:
    config = config_for(ollama_on(local_server), embedded_in_process())
    chat = ForgeChat(config=config, max_tokens=MAX_TOKENS, temperature=TEMPERATURE)
    answer = chat.invoke(PROMPT, model="huggingface:gemma-3-270m")
    assert isinstance(answer.content, str) and answer.content
    _assert_served_by(answer, Provider.HUGGINGFACE, "gemma-3-270m")
    assert _attempts(answer) == [("huggingface", True)]
    # Without the per-call model, the config's first provider (ollama) serves.
    assert chat.invoke(PROMPT).response_metadata["model_provider"] == "ollama"


def test_in_process_stream_reports_usage_on_the_final_chunk_only() -> None:
    chat = ForgeChat(
        config=config_for(embedded_in_process()), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    chunks = list(chat.stream(PROMPT))
    last = _assert_one_final_chunk(chunks)
    _assert_served_by(last, Provider.HUGGINGFACE, "gemma-3-270m")
    usage = last.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0
    assert 0 < usage["output_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert _collect(chunks).usage_metadata == usage


async def test_in_process_async_stream_and_invoke() -> None:
    chat = ForgeChat(
        config=config_for(embedded_in_process()), max_tokens=8, temperature=TEMPERATURE
    )
    chunks = [chunk async for chunk in chat.astream(PROMPT)]
    last = _assert_one_final_chunk(chunks)
    assert last.usage_metadata is not None and last.usage_metadata["output_tokens"] > 0
    answer = await chat.ainvoke(PROMPT)
    _assert_served_by(answer, Provider.HUGGINGFACE, "gemma-3-270m")
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0
