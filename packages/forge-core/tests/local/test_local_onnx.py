"""The ONNX path of the ``huggingface`` provider, on tiny real ONNX causal LMs built in fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from forge_core import (
    CapabilityMismatch,
    ChatRequest,
    Forge,
    HuggingFaceConfig,
    Message,
    Provider,
)
from forge_core.backends.local.backend import HuggingFaceBackend
from forge_core.backends.local.onnx import OnnxCausalLM, render_chat
from forge_core.config.local_models import resolve_local_model
from forge_test_support import attempt_timeouts, config_for
from forge_tiny_onnx import EOS_ID, TinyOnnxModel

#: Runs a (tiny, generated) ONNX model in process with the onnx extra's onnxruntime.
pytestmark = pytest.mark.local_model

PROMPT = "name a colour"


def prompt_ids(engine: OnnxCausalLM) -> list[int]:
    return engine.tokenize(render_chat([{"role": "user", "content": PROMPT}], None))


def backend_for(model: TinyOnnxModel, **settings: Any) -> HuggingFaceBackend:
    return HuggingFaceBackend(
        HuggingFaceConfig.model_validate(
            {"models": [{"name": "tiny", "local_path": str(model.directory)}], **settings}
        )
    )


def decode(engine: OnnxCausalLM, ids: list[int]) -> str:
    return str(engine.tokenizer.decode(ids))


@pytest.mark.parametrize("variant", ["tiny_onnx", "tiny_onnx_kv"])
def test_greedy_decoding_equals_the_numpy_reference(
    variant: str, request: pytest.FixtureRequest
) -> None:
    model: TinyOnnxModel = request.getfixturevalue(variant)
    engine = OnnxCausalLM(model.directory)
    assert engine.has_kv_cache is model.kv_cache
    prompt = prompt_ids(engine)
    tokens = [token for _piece, token in engine.generate(prompt, max_tokens=12)]
    expected = model.reference_greedy(prompt, 12)
    assert tokens == expected
    assert len(set(expected)) > 2, "the fixture should not collapse to one repeated token"


def test_kv_cache_and_full_recompute_agree(
    tiny_onnx: TinyOnnxModel, tiny_onnx_kv: TinyOnnxModel
) -> None:
    plain = OnnxCausalLM(tiny_onnx.directory)
    cached = OnnxCausalLM(tiny_onnx_kv.directory)
    prompt = prompt_ids(plain)
    assert list(plain.generate(prompt, max_tokens=16)) == list(
        cached.generate(prompt, max_tokens=16)
    )


def test_sampled_decoding_is_repeatable_with_a_seed_and_matches_the_reference(
    tiny_onnx_kv: TinyOnnxModel,
) -> None:
    engine = OnnxCausalLM(tiny_onnx_kv.directory)
    prompt = prompt_ids(engine)
    first = [token for _, token in engine.generate(prompt, max_tokens=10, temperature=1.5, seed=11)]
    second = [
        token for _, token in engine.generate(prompt, max_tokens=10, temperature=1.5, seed=11)
    ]
    assert first == second
    # Reference: softmax(logits / T) from numpy, drawn with the same seeded generator.
    rng = np.random.default_rng(11)
    ids = list(prompt)
    expected = []
    for _ in range(10):
        logits = tiny_onnx_kv.reference_logits(ids) / 1.5
        weights = np.exp(logits - logits.max())
        token = int(rng.choice(len(weights), p=weights / weights.sum()))
        if token == EOS_ID:
            break
        ids.append(token)
        expected.append(token)
    assert first == expected
    greedy = tiny_onnx_kv.reference_greedy(prompt, 10)
    assert first != greedy or len(set(first)) > 1


def test_stop_string_ends_generation_and_is_not_returned(tiny_onnx: TinyOnnxModel) -> None:
    engine = OnnxCausalLM(tiny_onnx.directory)
    prompt = prompt_ids(engine)
    full = "".join(piece for piece, _ in engine.generate(prompt, max_tokens=12))
    words = full.split()
    stop = words[3]
    cut = "".join(piece for piece, _ in engine.generate(prompt, max_tokens=12, stop=[stop]))
    assert cut == full[: full.index(stop)]


def test_onnx_directory_resolves_as_onnx(tiny_onnx: TinyOnnxModel, tmp_path: Path) -> None:
    settings = HuggingFaceConfig.model_validate(
        {"models": [{"name": "tiny", "local_path": str(tiny_onnx.directory / "model.onnx")}]}
    )
    resolved = resolve_local_model("tiny", settings)
    assert resolved.format == "onnx" and resolved.path == tiny_onnx.directory
    snapshot = tmp_path / "models--acme--tiny-onnx" / "snapshots" / "abc" / "onnx"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(tiny_onnx.directory, target_is_directory=True)
    cached = resolve_local_model("acme/tiny-onnx", HuggingFaceConfig(cache_dir=str(tmp_path)))
    assert cached.format == "onnx" and cached.path == snapshot.parent / "onnx"


def test_chat_through_forge_equals_the_reference(tiny_onnx_kv: TinyOnnxModel) -> None:
    forge = Forge(
        config_for(
            {
                "name": "huggingface",
                "models": [{"name": "tiny", "local_path": str(tiny_onnx_kv.directory)}],
            }
        )
    )
    answer = forge.chat(PROMPT, max_tokens=8, temperature=0)
    engine = OnnxCausalLM(tiny_onnx_kv.directory)
    prompt = prompt_ids(engine)
    expected = tiny_onnx_kv.reference_greedy(prompt, 8)
    assert answer.content == decode(engine, expected)
    assert answer.provider is Provider.HUGGINGFACE and answer.model == "tiny"
    assert answer.usage is not None
    assert answer.usage.input_tokens == len(prompt)
    assert answer.usage.output_tokens == len(expected)
    assert answer.finish_reason == ("length" if len(expected) == 8 else "stop")
    again = forge.chat(PROMPT, max_tokens=8, temperature=0)
    assert again.content == answer.content


def test_stream_pieces_join_to_the_chat_answer(tiny_onnx: TinyOnnxModel) -> None:
    local = backend_for(tiny_onnx)
    request = ChatRequest(messages=[Message(role="user", content=PROMPT)], max_tokens=8)
    whole = local.chat(request, "tiny", attempt_timeouts())
    chunks = list(local.stream(request, "tiny", attempt_timeouts()))
    assert len([chunk for chunk in chunks if chunk.content]) > 1
    assert "".join(chunk.content for chunk in chunks) == whole.content
    assert chunks[-1].usage is not None and chunks[-1].finish_reason is not None


async def test_async_stream_matches(tiny_onnx: TinyOnnxModel) -> None:
    local = backend_for(tiny_onnx)
    request = ChatRequest(messages=[Message(role="user", content=PROMPT)], max_tokens=6)
    whole = await local.achat(request, "tiny", attempt_timeouts())
    pieces = [chunk.content async for chunk in local.astream(request, "tiny", attempt_timeouts())]
    assert "".join(pieces) == whole.content


def test_onnx_models_report_no_tools_and_refuse_them(tiny_onnx: TinyOnnxModel) -> None:
    local = backend_for(tiny_onnx)
    capabilities = local.capabilities("tiny")
    assert not capabilities.tools and not capabilities.structured_output
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    request = ChatRequest(messages=[Message(role="user", content=PROMPT)], tools=[tool])
    with pytest.raises(CapabilityMismatch):
        local.chat(request, "tiny", attempt_timeouts())


def test_prompt_beyond_the_onnx_context_is_refused(tiny_onnx: TinyOnnxModel) -> None:
    local = backend_for(tiny_onnx)
    request = ChatRequest(messages=[Message(role="user", content="red " * 70)], max_tokens=4)
    with pytest.raises(CapabilityMismatch):
        local.chat(request, "tiny", attempt_timeouts())


def test_stats_describe_the_onnx_model(tiny_onnx: TinyOnnxModel) -> None:
    local = backend_for(tiny_onnx)
    local.warm()
    local.chat(
        ChatRequest(messages=[Message(role="user", content=PROMPT)], max_tokens=4),
        "tiny",
        attempt_timeouts(),
    )
    [model] = [
        entry for entry in local.stats()["models"] if entry["path"] == str(tiny_onnx.directory)
    ]
    assert model["format"] == "onnx" and model["output_tokens"] > 0
    assert model["tokens_per_second"] > 0 and model["load_seconds"] > 0
