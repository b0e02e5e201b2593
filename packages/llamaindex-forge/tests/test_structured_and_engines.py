"""Structured prediction on the embedded model in process, and ForgeLLM inside chat engines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest
from forge_test_support import LocalServer, config_for, embedded_in_process, ollama_on
from llama_index.core import Settings
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MessageRole
from llama_index.core.program.utils import FlexibleModel
from llama_index.core.prompts import PromptTemplate
from llamaindex_forge import ForgeLLM
from pydantic import BaseModel


class Colour(BaseModel):
    """A colour and whether it is warm."""

    name: Literal["red", "green", "blue", "yellow"]
    warm: bool


PROMPT = PromptTemplate("Pick one colour a {thing} can be, and say whether it is warm.")


@pytest.fixture
def in_process_llm() -> ForgeLLM:
    return ForgeLLM(config=config_for(embedded_in_process()), max_tokens=48, temperature=0.0)


@pytest.fixture
def restore_settings_llm() -> Iterator[None]:
    previous = Settings._llm
    try:
        yield
    finally:
        Settings._llm = previous


def test_in_process_route_asks_for_json_schema_output(in_process_llm: ForgeLLM) -> None:
    response_format = in_process_llm._json_schema_route(Colour)
    assert response_format is not None
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"] == Colour.model_json_schema()


def test_other_program_modes_are_left_to_llamaindex() -> None:
    llm = ForgeLLM(config=config_for(embedded_in_process()), pydantic_program_mode="llm")
    assert llm._json_schema_route(Colour) is None


@pytest.mark.local_model
def test_structured_predict_returns_a_valid_object(in_process_llm: ForgeLLM) -> None:
    colour = in_process_llm.structured_predict(Colour, PROMPT, thing="apple")
    assert isinstance(colour, Colour)
    assert colour.name in {"red", "green", "blue", "yellow"}


@pytest.mark.local_model
async def test_astructured_predict_returns_a_valid_object(in_process_llm: ForgeLLM) -> None:
    colour = await in_process_llm.astructured_predict(Colour, PROMPT, thing="banana")
    assert isinstance(colour, Colour)


@pytest.mark.local_model
def test_stream_structured_predict_ends_with_the_whole_object(in_process_llm: ForgeLLM) -> None:
    outputs = list(in_process_llm.stream_structured_predict(Colour, PROMPT, thing="apple"))
    *partials, final = outputs
    assert isinstance(final, Colour)
    assert partials, "nothing was streamed before the final object"
    assert all(isinstance(partial, FlexibleModel) for partial in partials)
    # The partial objects grow towards the final one.
    assert partials[-1].model_dump() == final.model_dump()


@pytest.mark.local_model
async def test_astream_structured_predict_ends_with_the_whole_object(
    in_process_llm: ForgeLLM,
) -> None:
    stream = await in_process_llm.astream_structured_predict(Colour, PROMPT, thing="sky")
    outputs = [output async for output in stream]
    assert isinstance(outputs[-1], Colour)


@pytest.mark.local_server
@pytest.mark.usefixtures("restore_settings_llm")
def test_settings_llm_serves_a_chat_engine(local_server: LocalServer) -> None:
    Settings.llm = ForgeLLM(config=config_for(ollama_on(local_server)), max_tokens=12)
    engine = SimpleChatEngine.from_defaults()
    first = engine.chat("Name a colour.")
    assert first.response.strip()
    second = engine.chat("Name another one.")
    assert second.response.strip()
    history = engine.chat_history
    assert [message.role for message in history] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.USER,
        MessageRole.ASSISTANT,
    ]
    assert history[1].content == first.response
    assert history[1].additional_kwargs == {"provider": "ollama", "model": local_server.model}


@pytest.mark.local_server
@pytest.mark.usefixtures("restore_settings_llm")
def test_settings_llm_streams_through_a_chat_engine(local_server: LocalServer) -> None:
    Settings.llm = ForgeLLM(config=config_for(ollama_on(local_server)), max_tokens=12)
    engine = SimpleChatEngine.from_defaults()
    streamed = engine.stream_chat("Name a colour.")
    text = "".join(streamed.response_gen)
    assert text.strip()
    # The engine strips the streamed text before keeping it in memory.
    assert engine.chat_history[-1].content == text.strip()
