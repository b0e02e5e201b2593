"""ForgeChat's structured output keeps working when forge falls back to the embedded model.

The dead first candidate is ``ollama`` on a refused port of 127.0.0.1 (it claims JSON output,
so the router tries it); the next one is the embedded model in process (``huggingface``). The
same features falling back to llama-cpp-python's server are in
test_fallback_features_local_server.py.
"""

from __future__ import annotations

import pytest
from forge_core import ForgeConfig
from forge_test_support import embedded_in_process
from langchain_forge import ForgeChat
from langchain_forge_support import Joke, dead_first, route_attempts

pytestmark = [pytest.mark.local_server, pytest.mark.local_model]

MAX_TOKENS = 24
#: Room for a whole grammar-constrained JSON object from the tiny model.
JSON_MAX_TOKENS = 64


def _chat(config: ForgeConfig, max_tokens: int = MAX_TOKENS) -> ForgeChat:
    return ForgeChat(config=config, max_tokens=max_tokens, temperature=0.0)


def test_json_schema_structured_output_falls_back_to_the_in_process_model() -> None:
    chat = _chat(dead_first(embedded_in_process()), JSON_MAX_TOKENS)
    result = chat.with_structured_output(Joke, include_raw=True).invoke("Tell me a joke.")
    assert isinstance(result, dict)
    raw = result["raw"]
    assert route_attempts(raw) == [("ollama", False), ("huggingface", True)]
    # Grammar-constrained, but 64 tokens may cut a long string short: either it parsed into a
    # Joke, or the cut-off answer is reported as a parsing error (never a silent None).
    if result["parsing_error"] is None:
        assert isinstance(result["parsed"], Joke)
    else:
        assert raw.response_metadata["finish_reason"] == "length"


def test_json_mode_structured_output_falls_back_to_the_in_process_model() -> None:
    chat = _chat(dead_first(embedded_in_process()), JSON_MAX_TOKENS)
    schema = {"title": "Joke", "type": "object", "properties": {"setup": {"type": "string"}}}
    result = chat.with_structured_output(schema, method="json_mode", include_raw=True).invoke(
        "Answer in JSON with a key 'setup'."
    )
    assert route_attempts(result["raw"]) == [("ollama", False), ("huggingface", True)]
    if result["parsing_error"] is None:
        assert isinstance(result["parsed"], dict)
    else:
        assert result["raw"].response_metadata["finish_reason"] == "length"
