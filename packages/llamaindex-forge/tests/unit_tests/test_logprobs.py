"""Token log probabilities reach LlamaIndex's ``ChatResponse.logprobs``: per token, the token
chosen, then its other alternatives."""

from __future__ import annotations

from forge_core import ChatChunk, ChatResponse, Provider, RouteTrail
from forge_core.testing import ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage, LogProb, MessageRole
from llamaindex_forge import ForgeLLM
from llamaindex_forge._utils import stream_response

TOKEN = {
    "token": "Hi",
    "logprob": -0.01,
    "bytes": [72, 105],
    "top_logprobs": [
        {"token": "Hi", "logprob": -0.01, "bytes": [72, 105]},
        {"token": "Hey", "logprob": -4.6, "bytes": [72, 101, 121]},
    ],
}
EXPECTED = [
    [
        LogProb(token="Hi", logprob=-0.01, bytes=[72, 105]),
        LogProb(token="Hey", logprob=-4.6, bytes=[72, 101, 121]),
    ]
]


def test_chat_returns_the_logprobs() -> None:
    answer = ChatResponse(
        content="Hi", logprobs=[TOKEN], provider=Provider.OPENAI, model="m", route=RouteTrail()
    )
    llm = ForgeLLM(
        config=config_for({"name": "openai"}), backends={"openai": ScriptedBackend(answer)}
    )
    response = llm.chat([ChatMessage(role=MessageRole.USER, content="hello")], logprobs=True)
    assert response.logprobs == EXPECTED


def test_a_streamed_piece_has_its_logprobs() -> None:
    chunk = ChatChunk(content="Hi", logprobs=[TOKEN], provider=Provider.OPENAI, model="m")
    assert stream_response(chunk, "Hi").logprobs == EXPECTED
    assert stream_response(chunk.model_copy(update={"logprobs": None}), "Hi").logprobs is None
