"""Helpers for langchain-forge's tests: checks on ForgeChat's messages and stream chunks, configs
whose first candidate is dead, and the capabilities a tool-calling route declares to
langchain-tests' standard suites.
"""

from __future__ import annotations

from typing import Any

from forge_core import ForgeConfig, Provider
from forge_test_support import closed_port_url, config_for
from langchain_core.messages import AIMessage, AIMessageChunk
from pydantic import BaseModel, Field


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str = Field(description="The question that sets up the joke")
    punchline: str = Field(description="The answer that resolves the joke")


def dead_first(*alive: dict[str, Any]) -> ForgeConfig:
    """A config whose first candidate is ``ollama`` on a refused port, then ``alive``."""
    return config_for({"name": "ollama", "base_url": closed_port_url()}, *alive)


def route_attempts(message: AIMessage | AIMessageChunk) -> list[tuple[str, bool]]:
    """``(provider, ok)`` for each attempt in the route a message carries."""
    route = message.response_metadata["route"]
    return [(attempt["provider"], attempt["ok"]) for attempt in route["attempts"]]


def assert_served_by(message: AIMessage | AIMessageChunk, provider: Provider, model: str) -> None:
    """The message's metadata and route name ``provider`` and ``model``, and a normal finish."""
    metadata = message.response_metadata
    assert metadata["provider"] == provider.value
    assert metadata["model_name"] == model
    assert metadata["finish_reason"] in {"stop", "length"}
    assert metadata["route"]["provider"] == provider.value
    assert metadata["route"]["attempts"][-1]["ok"] is True


def merge_chunks(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """The chunks of a stream added up into one chunk, as LangChain merges them."""
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


def assert_one_final_chunk(chunks: list[AIMessageChunk]) -> AIMessageChunk:
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


class ToolCallingRoute:
    """Mixin for langchain-tests' chat model suites: the route calls tools, honours
    ``tool_choice``, gives structured output and JSON mode. Put it before the suite's class, so
    these attributes come before the suite's properties of the same names."""

    has_tool_calling = True
    has_tool_choice = True
    has_structured_output = True
    supports_json_mode = True
