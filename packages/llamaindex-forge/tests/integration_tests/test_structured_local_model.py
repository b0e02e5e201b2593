"""Structured prediction on the embedded model in process.

The route decision alone (no model call) is in unit_tests/test_structured.py; ForgeLLM inside
chat engines is in test_llm_local_server.py.
"""

from __future__ import annotations

from typing import Literal

import pytest
from forge_test_support import config_for, embedded_in_process
from llama_index.core.program.utils import FlexibleModel
from llama_index.core.prompts import PromptTemplate
from llamaindex_forge import ForgeLLM
from pydantic import BaseModel

pytestmark = pytest.mark.local_model


class Colour(BaseModel):
    """A colour and whether it is warm."""

    name: Literal["red", "green", "blue", "yellow"]
    warm: bool


PROMPT = PromptTemplate("Pick one colour a {thing} can be, and say whether it is warm.")


@pytest.fixture
def in_process_llm() -> ForgeLLM:
    return ForgeLLM(config=config_for(embedded_in_process()), max_tokens=48, temperature=0.0)


def test_structured_predict_returns_a_valid_object(in_process_llm: ForgeLLM) -> None:
    colour = in_process_llm.structured_predict(Colour, PROMPT, thing="apple")
    assert isinstance(colour, Colour)
    assert colour.name in {"red", "green", "blue", "yellow"}


async def test_astructured_predict_returns_a_valid_object(in_process_llm: ForgeLLM) -> None:
    colour = await in_process_llm.astructured_predict(Colour, PROMPT, thing="banana")
    assert isinstance(colour, Colour)


def test_stream_structured_predict_ends_with_the_whole_object(in_process_llm: ForgeLLM) -> None:
    outputs = list(in_process_llm.stream_structured_predict(Colour, PROMPT, thing="apple"))
    *partials, final = outputs
    assert isinstance(final, Colour)
    assert partials, "nothing was streamed before the final object"
    assert all(isinstance(partial, FlexibleModel) for partial in partials)
    # The partial objects grow towards the final one.
    assert partials[-1].model_dump() == final.model_dump()


async def test_astream_structured_predict_ends_with_the_whole_object(
    in_process_llm: ForgeLLM,
) -> None:
    stream = await in_process_llm.astream_structured_predict(Colour, PROMPT, thing="sky")
    outputs = [output async for output in stream]
    assert isinstance(outputs[-1], Colour)
