"""The huggingface provider running the embedded Gemma 3 270M GGUF in this process."""

from __future__ import annotations

import json

import pytest
from forge_core import Forge, ModelNotFound, Provider
from forge_core.backends.local import pool as _local_pool
from forge_test_support import config_for, embedded_in_process

pytestmark = pytest.mark.local_model
PROMPT = "Name a colour."


@pytest.fixture(scope="module")
def forge() -> Forge:
    return Forge(config_for(embedded_in_process(isolation="thread")))


def test_chat_in_process(forge: Forge) -> None:
    answer = forge.chat(PROMPT, max_tokens=12)
    assert answer.content
    assert answer.provider is Provider.HUGGINGFACE
    assert answer.model == "gemma-3-270m"
    assert answer.usage is not None
    assert answer.usage.input_tokens > 0 and 0 < answer.usage.output_tokens <= 12


def test_stream_in_process_reports_usage_once(forge: Forge) -> None:
    chunks = list(forge.stream(PROMPT, max_tokens=10))
    with_usage = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1]
    usage = chunks[-1].usage
    assert usage is not None and usage.input_tokens > 0
    assert usage.output_tokens == sum(1 for chunk in chunks if chunk.content)
    assert chunks[-1].route is not None and chunks[-1].route.provider is Provider.HUGGINGFACE


async def test_async_in_process(forge: Forge) -> None:
    answer = await forge.achat(PROMPT, max_tokens=6)
    assert answer.content and answer.provider is Provider.HUGGINGFACE
    text = "".join([chunk.content async for chunk in forge.astream(PROMPT, max_tokens=6)])
    assert text


def test_json_schema_output_is_valid_json_matching_the_schema(forge: Forge) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["colour", "count"],
    }
    answer = forge.chat(
        "Give a colour and a count as JSON.",
        max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "pick", "schema": schema}},
    )
    data = json.loads(answer.content or "")
    assert isinstance(data["colour"], str)
    assert isinstance(data["count"], int)


def test_model_loads_once_per_process(forge: Forge) -> None:
    forge.chat(PROMPT, max_tokens=2)
    other = Forge(config_for(embedded_in_process(isolation="thread")))
    other.chat(PROMPT, max_tokens=2)
    chat_entries = [entry for entry in _local_pool.loaded_models() if entry.purpose == "chat"]
    assert len(chat_entries) == 1


def test_unknown_local_model_lists_every_place_searched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    forge = Forge(
        config_for(
            {
                "name": "huggingface",
                "cache_dir": str(tmp_path),
                "models": [{"name": "acme/missing", "local_path": str(tmp_path / "x.gguf")}],
            }
        )
    )
    candidates, drops = forge.router.plan(__import__("forge_core").ChatRequest(messages=[]))
    assert candidates == []
    [drop] = drops
    assert "x.gguf" in drop.reason and str(tmp_path) in drop.reason and "packaged" in drop.reason
    with pytest.raises(ModelNotFound):
        forge.router._backends[Provider.HUGGINGFACE].check_ready("acme/missing")
