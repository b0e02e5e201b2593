"""ForgeLLM against llama-cpp-python's real server, alone and inside LlamaIndex's engines.

The model is Gemma 3 270M, a small base model: these tests assert on types, providers, routes
and usage, never on what the answer says. ForgeLLM on the in-process GGUF is in
test_llm_local_model.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from forge_test_support import (
    LocalServer,
    closed_port_url,
    config_for,
    ollama_on,
    openai_compatible_on,
)
from llama_index.core import Settings
from llama_index.core.base.llms.types import ChatResponse, CompletionResponse, MessageRole
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.prompts import PromptTemplate
from llamaindex_forge import ForgeLLM
from llamaindex_forge_support import CONVERSATION, MAX_TOKENS, assert_served, assert_usage

pytestmark = pytest.mark.local_server


@pytest.fixture
def ollama_llm(local_server: LocalServer) -> ForgeLLM:
    """ForgeLLM whose only provider is the local server reached as ``ollama``."""
    return ForgeLLM(config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS)


@pytest.fixture
def restore_settings_llm() -> Iterator[None]:
    """Put LlamaIndex's global LLM back as it was after the test."""
    previous = Settings._llm
    try:
        yield
    finally:
        Settings._llm = previous


# -- the four chat paths -----------------------------------------------------------------------


def test_chat(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    response = ollama_llm.chat(CONVERSATION)
    assert isinstance(response, ChatResponse)
    assert response.message.role == MessageRole.ASSISTANT
    assert isinstance(response.message.content, str)
    assert response.message.content.strip()
    assert_served(response, "ollama", local_server.model)
    assert response.raw is not None
    assert_usage(response.raw)
    assert response.raw["finish_reason"] in {"stop", "length"}


async def test_achat(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    response = await ollama_llm.achat(CONVERSATION)
    assert isinstance(response, ChatResponse)
    assert response.message.content
    assert_served(response, "ollama", local_server.model)


def test_stream_chat(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    responses = list(ollama_llm.stream_chat(CONVERSATION))
    *pieces, last = responses
    assert pieces, "no content was streamed"
    text = ""
    for piece in pieces:
        assert isinstance(piece, ChatResponse)
        assert piece.delta
        text += piece.delta
        assert piece.message.content == text
        assert piece.raw is not None
        assert piece.raw["route"] is None
        assert piece.message.additional_kwargs["provider"] == "ollama"
    assert text.strip()
    assert last.delta == ""
    assert last.message.content == text
    assert last.raw is not None
    assert last.raw["finish_reason"] in {"stop", "length"}
    assert_served(last, "ollama", local_server.model)


async def test_astream_chat(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    responses = [response async for response in await ollama_llm.astream_chat(CONVERSATION)]
    *pieces, last = responses
    assert pieces, "no content was streamed"
    assert "".join(piece.delta or "" for piece in pieces) == last.message.content
    assert last.message.content
    assert last.delta == ""
    assert_served(last, "ollama", local_server.model)


# -- completion paths (derived from chat) ------------------------------------------------------


def test_complete(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    response = ollama_llm.complete("The sky is")
    assert isinstance(response, CompletionResponse)
    assert response.text.strip()
    assert_served(response, "ollama", local_server.model)
    assert response.additional_kwargs == {"provider": "ollama", "model": local_server.model}


async def test_acomplete(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    response = await ollama_llm.acomplete("The sky is")
    assert isinstance(response, CompletionResponse)
    assert response.text.strip()
    assert_served(response, "ollama", local_server.model)


def test_stream_complete(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    *pieces, last = list(ollama_llm.stream_complete("The sky is"))
    assert pieces, "no content was streamed"
    assert all(isinstance(piece, CompletionResponse) for piece in pieces)
    assert "".join(piece.delta or "" for piece in pieces) == last.text
    assert last.text.strip()
    assert_served(last, "ollama", local_server.model)


async def test_astream_complete(ollama_llm: ForgeLLM, local_server: LocalServer) -> None:
    pieces = [piece async for piece in await ollama_llm.astream_complete("The sky is")]
    assert len(pieces) > 1
    assert pieces[-1].text.strip()
    assert "".join(piece.delta or "" for piece in pieces) == pieces[-1].text
    assert_served(pieces[-1], "ollama", local_server.model)


# -- routing ----------------------------------------------------------------------------------


def test_fallback_from_refused_ollama_to_openai_compatible(local_server: LocalServer) -> None:
    config = config_for(
        {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(local_server)
    )
    response = ForgeLLM(config=config, max_tokens=MAX_TOKENS).chat(CONVERSATION)
    assert response.message.content
    assert_served(response, "openai", local_server.model)
    assert response.raw is not None
    first, second = response.raw["route"]["attempts"]
    assert first["provider"] == "ollama"
    assert first["ok"] is False
    assert first["error_kind"] == "unavailable"
    assert second["provider"] == "openai"
    assert second["ok"] is True


def test_stream_falls_back_before_the_first_token(local_server: LocalServer) -> None:
    config = config_for(
        {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(local_server)
    )
    *_, last = ForgeLLM(config=config, max_tokens=MAX_TOKENS).stream_chat(CONVERSATION)
    assert last.message.content
    assert_served(last, "openai", local_server.model)
    assert last.raw is not None
    assert last.raw["route"]["attempts"][0]["ok"] is False


def test_fallback_order_option_reorders_providers(local_server: LocalServer) -> None:
    config = config_for(ollama_on(local_server), openai_compatible_on(local_server))
    response = ForgeLLM(
        config=config, fallback_order=["openai", "ollama"], max_tokens=MAX_TOKENS
    ).chat(CONVERSATION)
    assert_served(response, "openai", local_server.model)
    assert response.raw is not None
    assert len(response.raw["route"]["attempts"]) == 1


def test_model_option_pins_the_provider(local_server: LocalServer) -> None:
    config = config_for(ollama_on(local_server), openai_compatible_on(local_server))
    llm = ForgeLLM(config=config, model=f"openai:{local_server.model}", max_tokens=MAX_TOKENS)
    assert_served(llm.chat(CONVERSATION), "openai", local_server.model)
    # A per-call model wins over the option.
    pinned = llm.chat(CONVERSATION, model=f"ollama:{local_server.model}")
    assert_served(pinned, "ollama", local_server.model)


# -- inside LlamaIndex ------------------------------------------------------------------------


@pytest.mark.usefixtures("restore_settings_llm")
def test_settings_llm_chat(local_server: LocalServer) -> None:
    Settings.llm = ForgeLLM(config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS)
    assert isinstance(Settings.llm, ForgeLLM)
    response = Settings.llm.chat(CONVERSATION)
    assert response.message.content
    assert_served(response, "ollama", local_server.model)


@pytest.mark.usefixtures("restore_settings_llm")
def test_settings_llm_predict_with_a_prompt_template(local_server: LocalServer) -> None:
    Settings.llm = ForgeLLM(
        config=config_for(ollama_on(local_server)),
        max_tokens=MAX_TOKENS,
        system_prompt="You answer in one short sentence.",
    )
    answer = Settings.llm.predict(PromptTemplate("Name a {thing}."), thing="colour")
    assert isinstance(answer, str)
    assert answer.strip()


def test_token_counting_handler_reads_forge_usage(local_server: LocalServer) -> None:
    # A tokenizer that counts nothing: every count the handler reports comes from raw["usage"].
    counter = TokenCountingHandler(tokenizer=lambda text: [])
    llm = ForgeLLM(
        config=config_for(ollama_on(local_server)),
        max_tokens=MAX_TOKENS,
        callback_manager=CallbackManager([counter]),
    )
    response = llm.chat(CONVERSATION)
    assert response.raw is not None
    usage = response.raw["usage"]
    assert counter.prompt_llm_token_count == usage["input_tokens"] > 0
    assert counter.completion_llm_token_count == usage["output_tokens"] > 0


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


@pytest.mark.usefixtures("restore_settings_llm")
def test_settings_llm_streams_through_a_chat_engine(local_server: LocalServer) -> None:
    Settings.llm = ForgeLLM(config=config_for(ollama_on(local_server)), max_tokens=12)
    engine = SimpleChatEngine.from_defaults()
    streamed = engine.stream_chat("Name a colour.")
    text = "".join(streamed.response_gen)
    assert text.strip()
    # The engine strips the streamed text before keeping it in memory.
    assert engine.chat_history[-1].content == text.strip()
