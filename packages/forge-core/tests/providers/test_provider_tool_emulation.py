"""Tool calls emulated through schema-constrained output where the server has none for
``auto`` (llama-cpp-python's server, identified from its ``/openapi.json``), on the real wire:
a fault server that describes itself as llama-cpp-python's server records what forge sends and
answers with what the constrained model would write.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from dialect_servers import SELF_DESCRIPTIONS, SelfDescribingServer
from fault_server import ok
from forge_core import ChatRequest, MalformedResponse, Message, Provider, ToolCall
from forge_core.backends import OpenAICompatibleClient, build_backends
from forge_provider_support import weather_tool
from forge_test_support import attempt_timeouts, config_for

WEATHER = weather_tool("city")
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def _client(server: SelfDescribingServer) -> OpenAICompatibleClient:
    spec = {"name": "openai", "base_url": server.base_url, "default_model": "m"}
    backend = build_backends(config_for(spec))[Provider.OPENAI]
    assert isinstance(backend, OpenAICompatibleClient)
    return backend


def _llama_cpp_python(*answers: str) -> SelfDescribingServer:
    # Each answer streams in pieces of 5 characters, as a model writes it.
    faults = [ok(text, *[text[i : i + 5] for i in range(0, len(text), 5)]) for text in answers]
    return SelfDescribingServer(SELF_DESCRIPTIONS["llama-cpp"], script=faults)


def _ask(tools: list[dict[str, Any]], tool_choice: Any = None, **fields: Any) -> ChatRequest:
    messages = fields.pop("messages", [Message(role="user", content="Weather in Paris?")])
    return ChatRequest(messages=messages, tools=tools, tool_choice=tool_choice, **fields)


def _answer(client: OpenAICompatibleClient, request: ChatRequest, how: str) -> Any:
    """(content, tool calls, finish reason) by one of the four ways a backend is called."""
    timeouts = attempt_timeouts(10)
    if how == "chat":
        response = client.chat(request, "m", timeouts)
        return response.content, response.tool_calls, response.finish_reason

    async def call() -> Any:
        if how == "achat":
            response = await client.achat(request, "m", timeouts)
            return response.content, response.tool_calls, response.finish_reason
        return _gathered([chunk async for chunk in client.astream(request, "m", timeouts)])

    if how == "stream":
        return _gathered(list(client.stream(request, "m", timeouts)))
    return asyncio.run(call())


def _gathered(chunks: list[Any]) -> Any:
    [last] = [chunk for chunk in chunks if chunk.finish_reason is not None]
    assert last is chunks[-1]
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    assert [json.loads(delta.arguments) for delta in deltas] == [
        call.arguments for call in last.tool_calls
    ]
    text = "".join(chunk.content for chunk in chunks)
    return text or None, last.tool_calls, last.finish_reason


HOW = ["chat", "stream", "achat", "astream"]


@pytest.mark.parametrize("how", HOW)
def test_auto_goes_out_as_a_schema_of_an_answer_or_a_call_and_comes_back_a_call(how: str) -> None:
    with _llama_cpp_python(CALL) as server:
        content, calls, finish = _answer(_client(server), _ask([WEATHER, ADD], "auto"), how)
        [sent] = server.requests
    assert not content and finish == "tool_calls"
    [call] = calls
    assert isinstance(call, ToolCall) and call.id.startswith("call_")
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    body = sent.body
    assert "tools" not in body and "tool_choice" not in body
    assert body["response_format"]["type"] == "json_object"
    options = body["response_format"]["schema"]["anyOf"]
    assert options[0]["properties"] == {"answer": {"type": "string"}}
    assert [option["properties"]["name"] for option in options[1:]] == [
        {"const": "get_weather"},
        {"const": "add"},
    ]
    assert options[2]["properties"]["arguments"] == ADD["function"]["parameters"]
    # The tools and the instruction open the first user message.
    first = body["messages"][0]
    assert first["role"] == "user" and '"add"' in first["content"]
    assert first["content"].endswith("Weather in Paris?")


@pytest.mark.parametrize("how", HOW)
def test_an_auto_answer_comes_back_as_text(how: str) -> None:
    with _llama_cpp_python('{"answer": "Sunny, I think."}') as server:
        content, calls, finish = _answer(_client(server), _ask([WEATHER]), how)
    assert (content, calls, finish) == ("Sunny, I think.", [], "stop")


def test_an_answer_cut_off_by_max_tokens_comes_back_as_its_text_so_far() -> None:
    with _llama_cpp_python('{"answer": "Sunny in Par') as server:
        content, calls, _ = _answer(_client(server), _ask([WEATHER]), "chat")
    assert (content, calls) == ("Sunny in Par", [])


def test_required_of_several_tools_allows_only_the_calls() -> None:
    with _llama_cpp_python('{"name": "add", "arguments": {"a": 1, "b": 2}}') as server:
        _, calls, finish = _answer(_client(server), _ask([WEATHER, ADD], "required"), "chat")
        [sent] = server.requests
    assert [(call.name, call.arguments) for call in calls] == [("add", {"a": 1, "b": 2})]
    assert finish == "tool_calls"
    schema = sent.body["response_format"]["schema"]
    assert [option["properties"]["name"]["const"] for option in schema["anyOf"]] == [
        "get_weather",
        "add",
    ]
    assert "answer" not in sent.body["messages"][0]["content"]


def test_a_forced_answer_that_is_no_call_is_a_malformed_response() -> None:
    with (
        _llama_cpp_python('{"name": "get_weather", "argu') as server,
        pytest.raises(MalformedResponse, match="not a call"),
    ):
        _answer(_client(server), _ask([WEATHER, ADD], "required"), "chat")


def test_a_named_tool_goes_out_natively_the_server_constrains_it_itself() -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
    with _llama_cpp_python("ignored") as server:
        _client(server).chat(_ask([WEATHER, ADD], forced), "m", attempt_timeouts(10))
        [sent] = server.requests
    assert sent.body["tool_choice"] == forced and "response_format" not in sent.body


def test_tool_results_in_the_history_become_plain_messages() -> None:
    history = [
        Message(role="user", content="Weather in Paris?"),
        Message(
            role="assistant",
            content=None,
            tool_calls=[ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})],
        ),
        Message(role="tool", content="Sunny, 21 C", tool_call_id="call_1"),
    ]
    with _llama_cpp_python('{"answer": "It is sunny."}') as server:
        content, _, _ = _answer(_client(server), _ask([WEATHER], messages=history), "chat")
        [sent] = server.requests
    assert content == "It is sunny."
    messages = sent.body["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    assert json.loads(messages[1]["content"]) == {
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }
    assert messages[2]["content"].startswith("get_weather returned: Sunny, 21 C")
    assert all("tool_calls" not in m and "tool_call_id" not in m for m in messages)


def test_capabilities_say_tools_are_emulated_once_the_server_is_known() -> None:
    with _llama_cpp_python(CALL) as server:
        client = _client(server)
        assert client.capabilities("m").tools_emulated is False
        client.chat(_ask([WEATHER]), "m", attempt_timeouts(10))
        capabilities = client.capabilities("m")
    assert capabilities.tools and capabilities.tools_emulated


def test_other_dialects_send_tools_natively() -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS["vllm"]) as server:
        client = _client(server)
        client.chat(_ask([WEATHER], "auto"), "m", attempt_timeouts(10))
        [sent] = server.requests
        assert client.capabilities("m").tools_emulated is False
    assert sent.body["tools"] == [WEATHER] and sent.body["tool_choice"] == "auto"
