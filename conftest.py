"""Session fixtures for every test under the workspace (see tests/support)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from forge_test_support import LocalServer, embedded_model_path, run_local_server


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """Path of the embedded Gemma 3 270M GGUF."""
    return embedded_model_path()


@pytest.fixture(scope="session")
def local_server(embedded_model: Path) -> Iterator[LocalServer]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, for the whole session."""
    with run_local_server(embedded_model) as server:
        yield server


@pytest.fixture(scope="session")
def tool_server(embedded_model: Path) -> Iterator[LocalServer]:
    """The same server with ``chatml-function-calling``: grammar-constrained tool calls."""
    with run_local_server(embedded_model, chat_format="chatml-function-calling") as server:
        yield server
