"""ForgeChat and ForgeEmbeddings as an app uses them, over scripted backends
(`forge_core.testing.ScriptedBackend`): invoke, stream, tools, structured output, a chain, a
tool loop and embeddings, with no server and no model.

Every test has a local ``ollama`` that is down and a cloud ``openai`` that answers, so each
also shows the fallback reaching LangChain's types.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from forge_core import (
    ForgeConfig,
    ProviderUnavailable,
    StreamInterrupted,
    ToolCall,
    Usage,
)
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_forge import ForgeChat, ForgeEmbeddings
from langchain_forge_support import Joke, assert_one_final_chunk, merge_chunks, route_attempts

FELL_BACK = [("ollama", False), ("openai", True)]


@tool
def get_weather(city: str) -> str:
    """The weather in ``city``."""
    return f"Sunny in {city}"


def _config() -> ForgeConfig:
    """``ollama`` (local, first) then ``openai``, nothing else."""
    return config_for({"name": "ollama"}, {"name": "openai"})


def _down() -> ScriptedBackend:
    return ScriptedBackend(ProviderUnavailable("connection refused"), provider="ollama")


def _chat(*answers: Any, **fields: Any) -> tuple[ForgeChat, ScriptedBackend]:
    """A `ForgeChat` whose ``ollama`` is down and whose ``openai`` (model ``gpt-test``) plays
    ``answers``; and that ``openai`` backend, to read its calls."""
    cloud = ScriptedBackend(*answers, model="gpt-test")
    chat = ForgeChat(config=_config(), backends={"ollama": _down(), "openai": cloud}, **fields)
    return chat, cloud


def _request(backend: ScriptedBackend, index: int = 0) -> Any:
    request = backend.calls[index].request
    assert request is not None
    return request


# -- invoke and stream ------------------------------------------------------------------------


def test_invoke_answers_with_the_route_and_usage() -> None:
    chat, cloud = _chat(Reply("Paris", usage=Usage(input_tokens=5, output_tokens=1)))
    answer = chat.invoke("Capital of France?", temperature=0.1, max_tokens=4)
    assert isinstance(answer, AIMessage)
    assert answer.content == "Paris"
    assert answer.response_metadata["provider"] == "openai"
    assert answer.response_metadata["model_name"] == "gpt-test"
    assert answer.response_metadata["finish_reason"] == "stop"
    assert route_attempts(answer) == FELL_BACK
    assert answer.usage_metadata == {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}
    request = _request(cloud)
    assert (request.temperature, request.max_tokens) == (0.1, 4)
    assert [(m.role, m.content) for m in request.messages] == [("user", "Capital of France?")]


def test_stream_yields_the_pieces_then_one_final_chunk() -> None:
    chat, cloud = _chat(Reply("Paris is lovely", chunks=3, usage=Usage(input_tokens=2)))
    chunks = list(chat.stream("Tell me about Paris"))
    assert [chunk.content for chunk in chunks[:-1]] == ["Paris", " is l", "ovely"]
    last = assert_one_final_chunk(chunks)
    assert route_attempts(last) == FELL_BACK
    assert merge_chunks(chunks).content == "Paris is lovely"
    assert cloud.calls[0].kind == "stream"


def test_a_stream_cut_after_its_first_token_raises_forges_error_with_the_partial_text() -> None:
    chat, _ = _chat(Reply("Paris is lovely", chunks=3, fail_after=1))
    received: list[str] = []
    with pytest.raises(StreamInterrupted) as caught:
        for chunk in chat.stream("Tell me about Paris"):
            received.append(str(chunk.content))
    assert received == ["Paris"]
    assert caught.value.partial == "Paris"


async def test_ainvoke_and_astream_answer_over_the_same_route() -> None:
    chat, cloud = _chat("async answer")
    answer = await chat.ainvoke("hi")
    assert answer.content == "async answer"
    assert route_attempts(answer) == FELL_BACK
    chunks = [chunk async for chunk in chat.astream("hi")]
    assert merge_chunks(chunks).content == "async answer"
    assert route_attempts(chunks[-1]) == FELL_BACK
    assert [call.kind for call in cloud.calls] == ["chat", "stream"]


# -- tools ------------------------------------------------------------------------------------


def test_bind_tools_sends_the_tools_and_reads_the_tool_call() -> None:
    chat, cloud = _chat(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    answer = chat.bind_tools([get_weather], tool_choice="get_weather").invoke("Weather in Paris?")
    assert answer.tool_calls == [
        {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_0", "type": "tool_call"}
    ]
    assert answer.response_metadata["finish_reason"] == "tool_calls"
    request = _request(cloud)
    assert [t["function"]["name"] for t in request.tools] == ["get_weather"]
    assert request.tool_choice == {"type": "function", "function": {"name": "get_weather"}}


def test_streamed_tool_calls_merge_into_tool_calls() -> None:
    calls = [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
    chat, _ = _chat(Reply(tool_calls=calls))
    chunks = list(chat.bind_tools([get_weather]).stream("Weather in Paris and Oslo?"))
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    merged = merge_chunks(chunks)  # type: ignore[arg-type]
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [
        ("get_weather", {"city": "Paris"}, "call_0"),
        ("get_weather", {"city": "Oslo"}, "call_1"),
    ]
    assert route_attempts(chunks[-1]) == FELL_BACK  # type: ignore[arg-type]


def test_a_tool_loop_sends_the_call_and_its_result_back() -> None:
    chat, cloud = _chat(
        Reply(tool_calls=[ToolCall(id="w1", name="get_weather", arguments={"city": "Paris"})]),
        "It is sunny in Paris.",
    )
    llm = chat.bind_tools([get_weather])
    messages: list[Any] = [HumanMessage("Weather in Paris?")]
    first = llm.invoke(messages)
    messages.append(first)
    for call in first.tool_calls:
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = llm.invoke(messages)
    assert final.content == "It is sunny in Paris."
    sent = _request(cloud, 1).messages
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert [(c.id, c.name, c.arguments) for c in sent[1].tool_calls] == [
        ("w1", "get_weather", {"city": "Paris"})
    ]
    assert (sent[2].tool_call_id, sent[2].content) == ("w1", "Sunny in Paris")


# -- structured output ------------------------------------------------------------------------


def test_json_schema_structured_output_parses_the_scripted_json() -> None:
    joke = {"setup": "Why did the cat sit on the computer?", "punchline": "To watch the mouse."}
    chat, cloud = _chat(json.dumps(joke))
    result = chat.with_structured_output(Joke, method="json_schema").invoke("A cat joke")
    assert result == Joke(**joke)
    response_format = _request(cloud).response_format
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Joke"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"setup", "punchline"}


def test_json_schema_structured_output_with_raw_reports_a_parsing_error() -> None:
    chat, _ = _chat("not JSON at all")
    result = chat.with_structured_output(Joke, method="json_schema", include_raw=True).invoke(
        "A cat joke"
    )
    assert isinstance(result, dict)
    assert result["parsed"] is None
    assert result["parsing_error"] is not None
    assert result["raw"].content == "not JSON at all"


def test_function_calling_structured_output_reads_the_forced_tool_call() -> None:
    chat, cloud = _chat(Reply(tool_calls=[("Joke", {"setup": "s", "punchline": "p"})]))
    result = chat.with_structured_output(Joke, method="function_calling").invoke("A joke")
    assert result == Joke(setup="s", punchline="p")
    assert _request(cloud).tool_choice == {"type": "function", "function": {"name": "Joke"}}


# -- a chain ----------------------------------------------------------------------------------


def _prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", "Answer in one word."), ("human", "Capital of {country}?")]
    )


def test_a_prompt_llm_parser_chain_invokes_streams_and_batches() -> None:
    chat, cloud = _chat("Paris", "Paris", "Oslo", "Rome")
    chain = _prompt() | chat | StrOutputParser()
    assert chain.invoke({"country": "France"}) == "Paris"
    pieces = list(chain.stream({"country": "France"}))
    assert "".join(pieces) == "Paris" and len([p for p in pieces if p]) == 3
    assert sorted(chain.batch([{"country": "Norway"}, {"country": "Italy"}])) == ["Oslo", "Rome"]
    first = _request(cloud)
    assert [(m.role, m.content) for m in first.messages] == [
        ("system", "Answer in one word."),
        ("user", "Capital of France?"),
    ]
    asked = sorted(_request(cloud, index).messages[1].content for index in (2, 3))
    assert asked == ["Capital of Italy?", "Capital of Norway?"]


async def test_a_chain_runs_async_too() -> None:
    chat, _ = _chat("Paris")
    chain = _prompt() | chat | StrOutputParser()
    assert await chain.ainvoke({"country": "France"}) == "Paris"


def test_a_copied_model_still_plays_the_same_script() -> None:
    chat, cloud = _chat("one", "two")
    assert chat.invoke("hi").content == "one"
    assert copy.deepcopy(chat).invoke("hi").content == "two"
    assert len(cloud.calls) == 2


# -- embeddings -------------------------------------------------------------------------------


def _embeddings(**fields: Any) -> tuple[ForgeEmbeddings, ScriptedBackend, ScriptedBackend]:
    """`ForgeEmbeddings` over a down ``ollama`` and an ``openai`` that embeds; both backends."""
    local = _down()
    cloud = ScriptedBackend(embedding=[0.6, 0.8], model="embedder")
    embeddings = ForgeEmbeddings(
        config=_config(), backends={"ollama": local, "openai": cloud}, **fields
    )
    return embeddings, local, cloud


def test_embeddings_give_the_scripted_vectors_in_batches_and_pin_the_model() -> None:
    embeddings, local, cloud = _embeddings(batch_size=2)
    assert embeddings.embed_documents(["a", "b", "c"]) == [[0.6, 0.8]] * 3
    assert embeddings.embed_query("q") == [0.6, 0.8]
    assert [call.texts for call in cloud.calls] == [["a", "b"], ["c"], ["q"]]
    assert embeddings.served == "openai:embedder"
    # Only the first batch tried the local deployment; then the vector space is openai's.
    assert [call.texts for call in local.calls] == [["a", "b"]]
    route = embeddings.route
    assert route is not None and [a.deployment for a in route.attempts] == ["openai"]


async def test_async_embeddings_give_the_scripted_vectors() -> None:
    embeddings, local, cloud = _embeddings()
    assert await embeddings.aembed_documents(["a", "b"]) == [[0.6, 0.8]] * 2
    assert await embeddings.aembed_query("q") == [0.6, 0.8]
    assert [call.texts for call in cloud.calls] == [["a", "b"], ["q"]]
    assert len(local.calls) == 1


# -- conversation keys (#32) ------------------------------------------------------------------


def test_a_thread_id_or_session_id_in_the_run_metadata_is_the_conversation_key() -> None:
    chat, cloud = _chat("ok")
    chat.invoke("hi", config={"metadata": {"thread_id": "t-1"}})
    chat.invoke("hi", config={"metadata": {"session_id": 7}})
    chat.invoke("hi", config={"metadata": {"thread_id": "t-1"}}, prompt_cache_key="given")
    chat.invoke("hi")
    keys = [_request(cloud, i).prompt_cache_key for i in range(4)]
    assert keys == ["t-1", "7", "given", None]


def test_a_streamed_call_takes_the_key_as_a_keyword() -> None:
    # langchain-core's `stream` hands `_stream` no run manager, so no run metadata: a direct
    # top-level stream names its conversation with the keyword.
    chat, cloud = _chat("ok")
    list(chat.stream("hi", prompt_cache_key="t-2"))
    list(chat.bind(prompt_cache_key="t-3").stream("hi"))
    list(chat.stream("hi", config={"metadata": {"thread_id": "not seen"}}))
    keys = [_request(cloud, i).prompt_cache_key for i in (0, 1, 2)]
    assert keys == ["t-2", "t-3", None]


def test_a_call_inside_a_runnable_takes_the_key_of_its_config_streamed_or_not() -> None:
    """A model called in a LangGraph node (here a `RunnableLambda`, which sets the config
    for what it calls as a node does) has its thread: ``configurable.thread_id`` or the
    metadata's, in ``invoke``, ``stream`` and ``astream`` alike."""
    import asyncio

    from langchain_core.runnables import RunnableLambda

    chat, cloud = _chat("ok")
    node = RunnableLambda(lambda text: "".join(str(c.content) for c in chat.stream(text)))
    node.invoke("hi", config={"configurable": {"thread_id": "t-4"}})
    RunnableLambda(lambda text: chat.invoke(text)).invoke(
        "hi", config={"configurable": {"thread_id": "t-5"}}
    )
    node.invoke("hi", config={"metadata": {"session_id": "s-6"}})

    async def streamed(text: str) -> str:
        return "".join([str(c.content) async for c in chat.astream(text)])

    asyncio.run(RunnableLambda(streamed).ainvoke("hi", config={"metadata": {"thread_id": "t-7"}}))
    # The call's own key still wins.
    RunnableLambda(lambda text: chat.invoke(text, prompt_cache_key="own")).invoke(
        "hi", config={"configurable": {"thread_id": "t-8"}}
    )
    keys = [_request(cloud, i).prompt_cache_key for i in range(5)]
    assert keys == ["t-4", "t-5", "s-6", "t-7", "own"]
