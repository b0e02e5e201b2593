"""The same tool intent through ForgeChat and ForgeLLM sends the same request on the wire.

forge-core decides what a tool choice means once (`forge_core.resolve_tool_choice`); both
framework packages only translate their vocabulary, so the request bodies a server receives
are identical.
"""

from __future__ import annotations

from typing import Any

import pytest
from fault_server import FaultServer, ok
from forge_test_support import config_for
from langchain_forge import ForgeChat
from llama_index.core.tools import FunctionTool
from llamaindex_forge import ForgeLLM


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _config(server: FaultServer) -> Any:
    return config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})


def _sent(server: FaultServer) -> dict[str, Any]:
    [seen] = server.requests
    body = dict(seen.body)
    # Each framework writes its own description and schema title for the same function.
    return {
        "tool_choice": body.get("tool_choice"),
        "tools": [t["function"]["name"] for t in body["tools"]],
    }


@pytest.mark.parametrize(
    ("langchain_choice", "llamaindex_kwargs", "tools"),
    [
        ("required", {"tool_required": True}, [add]),
        ("any", {"tool_required": True}, [add, mul]),
        ("add", {"tool_choice": "add"}, [add, mul]),
        ("auto", {"tool_choice": "auto"}, [add, mul]),
    ],
    ids=["required-one-tool", "required-two-tools", "by-name", "auto"],
)
def test_the_same_tool_choice_sends_the_same_wire_request(
    langchain_choice: str, llamaindex_kwargs: dict[str, Any], tools: list[Any]
) -> None:
    with FaultServer(default=ok("no call")) as langchain_server:
        chat = ForgeChat(config=_config(langchain_server), max_tokens=8)
        chat.bind_tools(tools, tool_choice=langchain_choice).invoke("2 + 3?")
        from_langchain = _sent(langchain_server)
    with FaultServer(default=ok("no call")) as llamaindex_server:
        llm = ForgeLLM(config=_config(llamaindex_server), max_tokens=8)
        function_tools = [FunctionTool.from_defaults(fn=fn) for fn in tools]
        llm.chat_with_tools(function_tools, user_msg="2 + 3?", **llamaindex_kwargs)
        from_llamaindex = _sent(llamaindex_server)
    assert from_langchain == from_llamaindex
    assert from_langchain["tools"] == [fn.__name__ for fn in tools]
    if langchain_choice in ("required", "add"):
        assert from_langchain["tool_choice"] == {"type": "function", "function": {"name": "add"}}
