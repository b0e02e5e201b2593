"""LangChain's standard unit tests for chat models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forge_test_support import closed_port_url, config_for
from langchain_core.language_models import BaseChatModel
from langchain_forge import ForgeChat
from langchain_forge_support import ToolCallingRoute
from langchain_tests.unit_tests import ChatModelUnitTests

UNIT_CONFIG = Path(__file__).with_name("forge_unit.yaml")


class TestForgeChatStandard(ToolCallingRoute, ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ForgeChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # The only provider is a refused port: a unit test that reached the network would fail.
        # It is `openai` (an OpenAI-compatible endpoint) because the standard params pass an
        # api_key, which configures the pinned cloud provider.
        return {
            "model": "openai:gemma-3-270m",
            "config": config_for({"name": "openai", "base_url": closed_port_url()}),
        }

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"FORGE_CONFIG": str(UNIT_CONFIG), "FORGE_DEFAULT_MODEL": "ollama:gemma-3-270m"},
            {},
            {"config": str(UNIT_CONFIG), "model": "ollama:gemma-3-270m"},
        )
