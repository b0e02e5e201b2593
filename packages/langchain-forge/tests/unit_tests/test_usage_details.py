"""Cache and reasoning token counts reach ``usage_metadata`` as LangChain's
``input_token_details`` / ``output_token_details``, invoked and streamed."""

from __future__ import annotations

from forge_core import Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_forge import ForgeChat
from langchain_forge_support import merge_chunks

DETAILED = Usage(
    input_tokens=1200,
    output_tokens=300,
    cached_input_tokens=1000,
    cache_creation_input_tokens=150,
    reasoning_tokens=200,
)
EXPECTED = {
    "input_tokens": 1200,
    "output_tokens": 300,
    "total_tokens": 1500,
    "input_token_details": {"cache_read": 1000, "cache_creation": 150},
    "output_token_details": {"reasoning": 200},
}


def _chat() -> ForgeChat:
    backend = ScriptedBackend(
        Reply("hi", usage=DETAILED), Reply("hi", usage=DETAILED), model="gpt-test"
    )
    return ForgeChat(config=config_for({"name": "openai"}), backends={"openai": backend})


def test_invoke_reports_the_details() -> None:
    assert _chat().invoke("hello").usage_metadata == EXPECTED


def test_stream_reports_the_details() -> None:
    assert merge_chunks(list(_chat().stream("hello"))).usage_metadata == EXPECTED


def test_no_details_no_detail_keys() -> None:
    backend = ScriptedBackend(Reply("hi", usage=Usage(input_tokens=3, output_tokens=1)))
    chat = ForgeChat(config=config_for({"name": "openai"}), backends={"openai": backend})
    assert chat.invoke("hello").usage_metadata == {
        "input_tokens": 3,
        "output_tokens": 1,
        "total_tokens": 4,
    }
