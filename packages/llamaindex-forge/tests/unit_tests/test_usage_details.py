"""Cache and reasoning token counts reach ``raw["usage"]`` of `ForgeLLM` answers."""

from __future__ import annotations

from forge_core import Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llamaindex_forge import ForgeLLM

USER = [ChatMessage(role=MessageRole.USER, content="hi")]
DETAILED = Usage(
    input_tokens=1200,
    output_tokens=300,
    cached_input_tokens=1000,
    cache_creation_input_tokens=150,
    reasoning_tokens=200,
)


def test_chat_and_stream_raw_usage_have_the_details() -> None:
    backend = ScriptedBackend(Reply("ok", usage=DETAILED), Reply("ok", usage=DETAILED))
    llm = ForgeLLM(config=config_for({"name": "openai"}), backends={"openai": backend})
    expected = {
        "input_tokens": 1200,
        "output_tokens": 300,
        "total_tokens": 1500,
        "cached_input_tokens": 1000,
        "cache_creation_input_tokens": 150,
        "reasoning_tokens": 200,
    }
    answer = llm.chat(USER)
    assert answer.raw is not None
    assert answer.raw["usage"] == expected
    last = list(llm.stream_chat(USER))[-1]
    assert last.raw is not None
    assert last.raw["usage"] == expected
