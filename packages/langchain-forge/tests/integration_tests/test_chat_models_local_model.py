"""ForgeChat on the real in-process model, next to llama-cpp-python's real server.

The model is Gemma 3 270M (a base model): tests check types, providers, routes and usage, never
the wording of an answer. ForgeChat against the server alone is in
test_chat_models_local_server.py.
"""

from __future__ import annotations

import pytest
from forge_core import Provider
from forge_test_support import LocalServer, config_for, embedded_in_process, ollama_on
from langchain_forge import ForgeChat
from langchain_forge_support import (
    assert_one_final_chunk,
    assert_served_by,
    merge_chunks,
    route_attempts,
)

pytestmark = [pytest.mark.local_server, pytest.mark.local_model]

PROMPT = "Say hello."
MAX_TOKENS = 12
#: Greedy decoding keeps the tiny model's output the same from run to run.
TEMPERATURE = 0.0


def test_per_call_model_pins_the_in_process_provider(local_server: LocalServer) -> None:
    config = config_for(ollama_on(local_server), embedded_in_process())
    chat = ForgeChat(config=config, max_tokens=MAX_TOKENS, temperature=TEMPERATURE)
    answer = chat.invoke(PROMPT, model="huggingface:gemma-3-270m")
    assert isinstance(answer.content, str) and answer.content
    assert_served_by(answer, Provider.HUGGINGFACE, "gemma-3-270m")
    assert route_attempts(answer) == [("huggingface", True)]
    # Without the per-call model, the config's first provider (ollama) serves.
    assert chat.invoke(PROMPT).response_metadata["provider"] == "ollama"


def test_in_process_stream_reports_usage_on_the_final_chunk_only() -> None:
    chat = ForgeChat(
        config=config_for(embedded_in_process()), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    chunks = list(chat.stream(PROMPT))
    last = assert_one_final_chunk(chunks)
    assert_served_by(last, Provider.HUGGINGFACE, "gemma-3-270m")
    usage = last.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0
    assert 0 < usage["output_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert merge_chunks(chunks).usage_metadata == usage


async def test_in_process_async_stream_and_invoke() -> None:
    chat = ForgeChat(
        config=config_for(embedded_in_process()), max_tokens=8, temperature=TEMPERATURE
    )
    chunks = [chunk async for chunk in chat.astream(PROMPT)]
    last = assert_one_final_chunk(chunks)
    assert last.usage_metadata is not None and last.usage_metadata["output_tokens"] > 0
    answer = await chat.ainvoke(PROMPT)
    assert_served_by(answer, Provider.HUGGINGFACE, "gemma-3-270m")
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0
