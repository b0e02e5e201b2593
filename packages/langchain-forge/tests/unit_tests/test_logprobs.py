"""Token log probabilities reach ``response_metadata["logprobs"]["content"]``, the place
ChatOpenAI puts them, invoked and in stream chunks (which merge into one list)."""

from __future__ import annotations

from typing import Any

from forge_core import ChatChunk, ChatResponse, Provider, RouteTrail
from forge_core.testing import ScriptedBackend
from forge_test_support import config_for
from langchain_forge import ForgeChat
from langchain_forge._utils import chunk_to_message_chunk

TOKEN: dict[str, Any] = {"token": "Hi", "logprob": -0.01, "bytes": [72, 105], "top_logprobs": []}


def test_invoke_puts_the_logprobs_in_response_metadata() -> None:
    answer = ChatResponse(
        content="Hi", logprobs=[TOKEN], provider=Provider.OPENAI, model="m", route=RouteTrail()
    )
    backend = ScriptedBackend(answer)
    chat = ForgeChat(config=config_for({"name": "openai"}), backends={"openai": backend})
    message = chat.invoke("hello", logprobs=True)
    assert message.response_metadata["logprobs"] == {"content": [TOKEN]}
    request = backend.calls[0].request
    assert request is not None and request.logprobs is True


def test_stream_chunks_carry_their_logprobs_and_merge() -> None:
    first = chunk_to_message_chunk(
        ChatChunk(content="Hi", logprobs=[TOKEN], provider=Provider.OPENAI, model="m")
    )
    second = chunk_to_message_chunk(
        ChatChunk(
            content="!", logprobs=[{**TOKEN, "token": "!"}], provider=Provider.OPENAI, model="m"
        )
    )
    merged = first + second
    assert [t["token"] for t in merged.response_metadata["logprobs"]["content"]] == ["Hi", "!"]
