"""ForgeLLM and ForgeEmbedding as an app uses them, over scripted backends
(`forge_core.testing.ScriptedBackend`): chat, streams, completion, tool calling, structured
prediction and embeddings, with no server and no model.

Every test has a local ``ollama`` that is down and a cloud ``openai`` that answers, so each
also shows the fallback reaching LlamaIndex's types.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from forge_core import ForgeConfig, ProviderUnavailable, StreamInterrupted, ToolCall, Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llamaindex_forge import ForgeEmbedding, ForgeLLM
from pydantic import BaseModel

FELL_BACK = [("ollama", "unavailable"), ("openai", None)]
USER = [ChatMessage(role=MessageRole.USER, content="Capital of France?")]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD = FunctionTool.from_defaults(fn=add)


class Colour(BaseModel):
    """A colour and whether it is warm."""

    name: Literal["red", "green", "blue", "yellow"]
    warm: bool


def _config() -> ForgeConfig:
    """``ollama`` (local, first) then ``openai``, nothing else."""
    return config_for({"name": "ollama"}, {"name": "openai"})


def _down() -> ScriptedBackend:
    return ScriptedBackend(ProviderUnavailable("connection refused"), provider="ollama")


def _llm(*answers: Any, **fields: Any) -> tuple[ForgeLLM, ScriptedBackend]:
    """A `ForgeLLM` whose ``ollama`` is down and whose ``openai`` (model ``gpt-test``) plays
    ``answers``; and that ``openai`` backend, to read its calls."""
    cloud = ScriptedBackend(*answers, model="gpt-test")
    llm = ForgeLLM(config=_config(), backends={"ollama": _down(), "openai": cloud}, **fields)
    return llm, cloud


def _attempts(raw: Any) -> list[tuple[str, str | None]]:
    assert raw is not None
    return [
        (a["deployment"], None if a["ok"] else a["error_kind"]) for a in raw["route"]["attempts"]
    ]


def _request(backend: ScriptedBackend, index: int = 0) -> Any:
    request = backend.calls[index].request
    assert request is not None
    return request


# -- chat, streams, completion ----------------------------------------------------------------


def test_chat_answers_with_who_served_and_the_route() -> None:
    llm, cloud = _llm(Reply("Paris", usage=Usage(input_tokens=5, output_tokens=1)), max_tokens=8)
    response = llm.chat(USER, temperature=0.2)
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "Paris"
    assert response.message.additional_kwargs == {"provider": "openai", "model": "gpt-test"}
    assert response.raw is not None
    assert (response.raw["provider"], response.raw["model"]) == ("openai", "gpt-test")
    assert response.raw["usage"] == {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}
    assert _attempts(response.raw) == FELL_BACK
    request = _request(cloud)
    assert (request.max_tokens, request.temperature) == (8, 0.2)
    assert [(m.role, m.content) for m in request.messages] == [("user", "Capital of France?")]


def test_stream_chat_gives_deltas_then_a_last_response_with_the_route() -> None:
    llm, cloud = _llm(Reply("Paris is lovely", chunks=3))
    responses = list(llm.stream_chat(USER))
    assert [r.delta for r in responses] == ["Paris", " is l", "ovely", ""]
    assert [r.message.content for r in responses][-1] == "Paris is lovely"
    assert _attempts(responses[-1].raw) == FELL_BACK
    assert cloud.calls[0].kind == "stream"


def test_a_stream_cut_after_its_first_token_raises_forges_error() -> None:
    llm, _ = _llm(Reply("Paris is lovely", chunks=3, fail_after=1))
    deltas: list[str | None] = []
    with pytest.raises(StreamInterrupted) as caught:
        for response in llm.stream_chat(USER):
            deltas.append(response.delta)
    assert deltas == ["Paris"]
    assert caught.value.partial == "Paris"


def test_complete_and_stream_complete_take_a_prompt() -> None:
    llm, cloud = _llm("Paris", Reply("Oslo", chunks=2))
    completion = llm.complete("Capital of France?")
    assert completion.text == "Paris"
    assert completion.raw is not None and _attempts(completion.raw) == FELL_BACK
    streamed = list(llm.stream_complete("Capital of Norway?"))
    assert [c.delta for c in streamed] == ["Os", "lo", ""]
    assert streamed[-1].text == "Oslo"
    assert [_request(cloud, i).messages[0].content for i in (0, 1)] == [
        "Capital of France?",
        "Capital of Norway?",
    ]


async def test_achat_and_astream_chat_answer_over_the_same_route() -> None:
    llm, cloud = _llm("async answer")
    response = await llm.achat(USER)
    assert response.message.content == "async answer"
    assert _attempts(response.raw) == FELL_BACK
    responses = [r async for r in await llm.astream_chat(USER)]
    assert responses[-1].message.content == "async answer"
    assert _attempts(responses[-1].raw) == FELL_BACK
    completion = await llm.acomplete("hi")
    assert completion.text == "async answer"
    assert [call.kind for call in cloud.calls] == ["chat", "stream", "chat"]


# -- tool calling -----------------------------------------------------------------------------


def test_chat_with_tools_sends_the_tools_and_reads_the_call() -> None:
    llm, cloud = _llm(Reply(tool_calls=[ToolCall(id="t1", name="add", arguments={"a": 1, "b": 2})]))
    assert llm.metadata.is_function_calling_model is True
    response = llm.chat_with_tools([ADD], user_msg="1 + 2?", tool_required=True)
    assert llm.get_tool_calls_from_response(response) == [
        ToolSelection(tool_id="t1", tool_name="add", tool_kwargs={"a": 1, "b": 2})
    ]
    assert _attempts(response.raw) == FELL_BACK
    request = _request(cloud)
    assert [t["function"]["name"] for t in request.tools] == ["add"]
    assert request.tool_choice == {"type": "function", "function": {"name": "add"}}


def test_predict_and_call_runs_the_scripted_tool_call() -> None:
    llm, _ = _llm(Reply(tool_calls=[("add", {"a": 20, "b": 22})]))
    result = llm.predict_and_call([ADD], user_msg="20 + 22?")
    assert result.response == "42"
    [output] = result.sources
    assert (output.tool_name, output.raw_input, output.raw_output) == (
        "add",
        {"args": (), "kwargs": {"a": 20, "b": 22}},
        42,
    )


def test_a_streamed_tool_call_is_whole_in_the_last_response() -> None:
    llm, _ = _llm(Reply(tool_calls=[("add", {"a": 1, "b": 2})]))
    responses = list(llm.stream_chat_with_tools([ADD], user_msg="1 + 2?"))
    [selection] = llm.get_tool_calls_from_response(responses[-1])
    assert (selection.tool_id, selection.tool_name, selection.tool_kwargs) == (
        "call_0",
        "add",
        {"a": 1, "b": 2},
    )


def test_a_tool_result_goes_back_to_the_model() -> None:
    call = ToolCall(id="t1", name="add", arguments={"a": 1, "b": 2})
    llm, cloud = _llm(Reply(tool_calls=[call]), "1 + 2 is 3.")
    history = [ChatMessage(role=MessageRole.USER, content="1 + 2?")]
    first = llm.chat_with_tools([ADD], chat_history=history)
    [selection] = llm.get_tool_calls_from_response(first)
    history.append(first.message)
    history.append(
        ChatMessage(
            role=MessageRole.TOOL,
            content=str(add(**selection.tool_kwargs)),
            additional_kwargs={"tool_call_id": selection.tool_id},
        )
    )
    final = llm.chat_with_tools([ADD], chat_history=history)
    assert final.message.content == "1 + 2 is 3."
    sent = _request(cloud, 1).messages
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert sent[1].tool_calls == [call]
    assert (sent[2].tool_call_id, sent[2].content) == ("t1", "3")


# -- structured prediction --------------------------------------------------------------------


def test_structured_predict_parses_the_scripted_json() -> None:
    llm, cloud = _llm(json.dumps({"name": "red", "warm": True}))
    colour = llm.structured_predict(
        Colour, PromptTemplate("A warm colour, like {hint}."), hint="fire"
    )
    assert colour == Colour(name="red", warm=True)
    request = _request(cloud)
    assert request.response_format["type"] == "json_schema"
    assert request.response_format["json_schema"]["schema"] == Colour.model_json_schema()
    assert request.messages[-1].content == "A warm colour, like fire."


# -- embeddings -------------------------------------------------------------------------------


def test_embedding_gives_the_scripted_vectors_and_names_the_model_that_served() -> None:
    local = _down()
    cloud = ScriptedBackend(embedding=[0.6, 0.8], model="embedder")
    embed_model = ForgeEmbedding(config=_config(), backends={"ollama": local, "openai": cloud})
    assert embed_model.get_text_embedding_batch(["a", "b"]) == [[0.6, 0.8]] * 2
    assert embed_model.get_query_embedding("q") == [0.6, 0.8]
    assert embed_model.model_name == "openai:embedder"
    assert [call.texts for call in cloud.calls] == [["a", "b"], ["q"]]
    # Only the first call tried the local deployment; then the vector space is openai's.
    assert len(local.calls) == 1


async def test_async_embedding_gives_the_scripted_vector() -> None:
    cloud = ScriptedBackend(embedding=[1.0, 0.0])
    embed_model = ForgeEmbedding(config=_config(), backends={"ollama": _down(), "openai": cloud})
    assert await embed_model.aget_query_embedding("q") == [1.0, 0.0]
    assert await embed_model.aget_text_embedding_batch(["a", "b"]) == [[1.0, 0.0]] * 2


def test_prompt_cache_key_is_a_per_call_keyword() -> None:
    llm, cloud = _llm("Paris")
    llm.chat(USER, prompt_cache_key="conversation-1")
    llm.chat(USER)
    assert [_request(cloud, i).prompt_cache_key for i in (0, 1)] == ["conversation-1", None]
