"""ForgeChat on llama-cpp-python's real server, configured as a newcomer configures it: only
``base_url`` and ``api_key``, no ``dialect`` key.

Before forge identified the server, structured output went out as ``json_schema``, the server
answered 500, forge retried it, and the endpoint's circuit opened: the next plain calls failed
with "circuit open". Now the server is identified (llama-cpp-python's server takes a schema as
``json_object`` + ``schema``), a refusal is a bad request for that request alone, and a
request's retries count once against the endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import ForgeConfig, Provider
from forge_test_support import LocalServer
from langchain_forge import ForgeChat
from pydantic import BaseModel, Field

pytestmark = pytest.mark.local_server


class City(BaseModel):
    """A city and the country it is in."""

    name: str = Field(description="The city's name", max_length=24)
    country: str = Field(description="The country the city is in", max_length=24)


def _newcomer(server: LocalServer, **extra: Any) -> ForgeChat:
    # forge's defaults (no forge.yaml is read) and this endpoint alone, so no fallback can hide
    # what happens to it.
    return ForgeChat(
        model="openai:local",
        base_url=server.openai_base_url,
        api_key="sk-local",
        config=ForgeConfig(),
        fallback_order=["openai"],
        temperature=0.0,
        **extra,
    )


def _served_by_this_endpoint(message: Any) -> bool:
    route = message.response_metadata["route"]
    return route["provider"] == Provider.OPENAI.value and route["attempts"][-1]["ok"]


def test_structured_output_works_and_the_plain_calls_after_it_are_served(
    local_server: LocalServer,
) -> None:
    llm = _newcomer(local_server, max_tokens=64)
    city = llm.with_structured_output(City).invoke("Name the capital of France as JSON.")
    assert isinstance(city, City) and city.name and city.country
    for _ in range(3):
        answer = llm.invoke("Say hello.")
        assert answer.text and _served_by_this_endpoint(answer)


def test_structured_output_streams_too(local_server: LocalServer) -> None:
    llm = _newcomer(local_server, max_tokens=64)
    chunks = list(llm.with_structured_output(City).stream("Name the capital of France as JSON."))
    assert isinstance(chunks[-1], City)
    answer = llm.invoke("Say hello.")
    assert _served_by_this_endpoint(answer)


def test_the_endpoint_stays_for_plain_calls_whatever_a_structured_call_did(
    local_server: LocalServer,
) -> None:
    # Too few tokens for the JSON: the structured call fails, alone.
    llm = _newcomer(local_server, max_tokens=3)
    for _ in range(3):
        raw = llm.with_structured_output(City, include_raw=True).invoke("Paris as JSON.")
        assert raw["parsed"] is None
        answer = llm.invoke("Say hello.")
        assert _served_by_this_endpoint(answer)
    stats = llm.shared_forge().stats()["circuits"]
    assert [circuit["times_opened"] for circuit in stats.values()] == [0]
