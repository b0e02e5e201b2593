"""Fixtures for the local (in-process) backend tests: tiny real ONNX causal LMs, clean-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from forge_core.backends.local.pool import unload_models
from forge_tiny_onnx import TinyOnnxModel, build_tiny_onnx_model


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> TinyOnnxModel:
    """A tiny ONNX causal LM without a KV cache (the whole sequence each step)."""
    return build_tiny_onnx_model(tmp_path_factory.mktemp("onnx") / "tiny", kv_cache=False)


@pytest.fixture(scope="session")
def tiny_onnx_kv(tmp_path_factory: pytest.TempPathFactory) -> TinyOnnxModel:
    """The same weights in a graph with ``past_key_values`` inputs and ``present`` outputs."""
    return build_tiny_onnx_model(tmp_path_factory.mktemp("onnx") / "tiny-kv", kv_cache=True)


@pytest.fixture(autouse=True, scope="module")
def _unload_local_models() -> Iterator[None]:
    """Each module starts and ends with no model loaded, so counts in other tests hold."""
    unload_models()
    yield
    unload_models()
