"""ForgeChat against llama-cpp-python's real OpenAI-compatible server.

The model is Gemma 3 270M (a base model): tests check types, providers, routes and usage, never
the wording of an answer. ForgeChat on the real in-process model is in
test_chat_models_local_model.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import FallbackFailed, OllamaUnavailable, Provider
from forge_test_support import (
    LocalServer,
    closed_port_url,
    config_for,
    ollama_on,
    openai_compatible_on,
)
from langchain_core.callbacks import AsyncCallbackManager, BaseCallbackHandler, CallbackManager
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_forge import ForgeChat
from langchain_forge_support import (
    assert_one_final_chunk,
    assert_served_by,
    merge_chunks,
    route_attempts,
)

pytestmark = pytest.mark.local_server

PROMPT = "Say hello."
MAX_TOKENS = 12
#: Greedy decoding keeps the tiny model's output the same from run to run.
TEMPERATURE = 0.0


class _TokenRecorder(BaseCallbackHandler):
    """Records every ``on_llm_new_token`` call."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
        assert isinstance(token, str)  # ForgeChat streams text content
        self.tokens.append(token)


def test_invoke_through_the_ollama_surface(local_server: LocalServer) -> None:
    chat = ForgeChat(
        config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    answer = chat.invoke([SystemMessage(content="You are terse."), HumanMessage(content=PROMPT)])
    assert isinstance(answer, AIMessage)
    assert isinstance(answer.content, str) and answer.content
    assert_served_by(answer, Provider.OLLAMA, local_server.model)
    assert route_attempts(answer) == [("ollama", True)]
    usage = answer.usage_metadata
    assert usage is not None
    assert usage["output_tokens"] > 0 and usage["input_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens"] <= MAX_TOKENS


async def test_ainvoke_through_the_openai_compatible_surface(local_server: LocalServer) -> None:
    chat = ForgeChat(
        config=config_for(openai_compatible_on(local_server)),
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
    )
    answer = await chat.ainvoke(PROMPT)
    assert isinstance(answer, AIMessage)
    assert isinstance(answer.content, str) and answer.content
    assert_served_by(answer, Provider.OPENAI, local_server.model)
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0


def test_stream_yields_text_then_one_final_chunk(local_server: LocalServer) -> None:
    chat = ForgeChat(
        config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    recorder = _TokenRecorder()
    chunks = list(chat.stream(PROMPT, config={"callbacks": [recorder]}))
    last = assert_one_final_chunk(chunks)
    assert_served_by(last, Provider.OLLAMA, local_server.model)
    assert route_attempts(last) == [("ollama", True)]
    # llama-cpp-python's server reports no usage on a stream: forge has none, ForgeChat invents none.
    assert last.usage_metadata is None
    # Every chunk reached the callbacks exactly once.
    assert recorder.tokens == [chunk.text for chunk in chunks]
    merged = merge_chunks(chunks)
    assert merged.response_metadata["provider"] == "ollama"


async def test_astream_yields_text_then_one_final_chunk(local_server: LocalServer) -> None:
    chat = ForgeChat(
        config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    chunks = [chunk async for chunk in chat.astream(PROMPT)]
    last = assert_one_final_chunk(chunks)
    assert_served_by(last, Provider.OLLAMA, local_server.model)


def test_stream_hook_reports_each_chunk_to_a_given_run_manager(local_server: LocalServer) -> None:
    # langchain-core 1.8 reports tokens itself and passes no run manager to _stream; older cores
    # pass one, and _stream must then report every chunk to it.
    chat = ForgeChat(
        config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    recorder = _TokenRecorder()
    messages: list[BaseMessage] = [HumanMessage(content=PROMPT)]
    (run_manager,) = CallbackManager.configure([recorder]).on_chat_model_start({}, [messages])
    generations = list(chat._stream(messages, run_manager=run_manager))
    assert recorder.tokens == [generation.text for generation in generations]
    assert len(recorder.tokens) >= 2


async def test_astream_hook_reports_each_chunk_to_a_given_run_manager(
    local_server: LocalServer,
) -> None:
    chat = ForgeChat(
        config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    recorder = _TokenRecorder()
    messages: list[BaseMessage] = [HumanMessage(content=PROMPT)]
    manager = AsyncCallbackManager.configure([recorder])
    (run_manager,) = await manager.on_chat_model_start({}, [messages])
    generations = [
        generation async for generation in chat._astream(messages, run_manager=run_manager)
    ]
    assert recorder.tokens == [generation.text for generation in generations]
    assert len(recorder.tokens) >= 2


def test_streaming_field_routes_invoke_through_the_stream(local_server: LocalServer) -> None:
    chat = ForgeChat(
        config=config_for(ollama_on(local_server)),
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
        streaming=True,
    )
    recorder = _TokenRecorder()
    answer = chat.invoke(PROMPT, config={"callbacks": [recorder]})
    assert isinstance(answer.content, str) and answer.content
    assert "".join(recorder.tokens) == answer.content  # tokens came one by one
    assert len(recorder.tokens) > 1
    assert_served_by(answer, Provider.OLLAMA, local_server.model)


def test_lcel_chain_returns_text(local_server: LocalServer) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer in one short sentence."), ("human", "Tell me about {topic}.")]
    )
    chat = ForgeChat(
        config=config_for(ollama_on(local_server)), max_tokens=MAX_TOKENS, temperature=TEMPERATURE
    )
    chain = prompt | chat | StrOutputParser()
    text = chain.invoke({"topic": "the sea"})
    assert isinstance(text, str) and text


def test_fallback_from_a_refused_ollama_to_openai(local_server: LocalServer) -> None:
    config = config_for(
        {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(local_server)
    )
    answer = ForgeChat(config=config, max_tokens=MAX_TOKENS, temperature=TEMPERATURE).invoke(PROMPT)
    assert isinstance(answer.content, str) and answer.content
    assert_served_by(answer, Provider.OPENAI, local_server.model)
    attempts = answer.response_metadata["route"]["attempts"]
    assert [(a["provider"], a["ok"]) for a in attempts] == [("ollama", False), ("openai", True)]
    assert attempts[0]["error_kind"] == OllamaUnavailable.kind
    assert "refused" in attempts[0]["message"]


def test_streamed_fallback_reports_the_refused_attempt(local_server: LocalServer) -> None:
    config = config_for(
        {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(local_server)
    )
    chunks = list(
        ForgeChat(config=config, max_tokens=MAX_TOKENS, temperature=TEMPERATURE).stream(PROMPT)
    )
    last = assert_one_final_chunk(chunks)
    assert_served_by(last, Provider.OPENAI, local_server.model)
    assert route_attempts(last) == [("ollama", False), ("openai", True)]


def test_fallback_order_field_puts_openai_first(local_server: LocalServer) -> None:
    config = config_for(ollama_on(local_server), openai_compatible_on(local_server))
    chat = ForgeChat(
        config=config,
        fallback_order=["openai", "ollama"],
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
    )
    answer = chat.invoke(PROMPT)
    assert route_attempts(answer) == [("openai", True)]


def test_every_provider_refused_raises_fallback_failed_unchanged() -> None:
    chat = ForgeChat(
        config=config_for({"name": "ollama", "base_url": closed_port_url()}),
        max_tokens=4,
        temperature=TEMPERATURE,
    )
    with pytest.raises(FallbackFailed) as caught:
        chat.invoke(PROMPT)
    assert [(a.provider, a.ok) for a in caught.value.route.attempts] == [(Provider.OLLAMA, False)]
    with pytest.raises(FallbackFailed):
        list(chat.stream(PROMPT))
