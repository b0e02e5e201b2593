"""LangChain's standard integration suite on a scripted route whose provider reports every
usage detail forge carries (cached reads, cache writes, reasoning), so the suite's
``supported_usage_metadata_details`` checks run, invoked and streamed, without a server. The
wire parsing of those details per provider is tested against each documented format in
forge-core (``test_provider_usage_details.py``); this checks what ``ForgeChat`` makes of them."""

from __future__ import annotations

from typing import Any

from forge_core import Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_forge import ForgeChat
from langchain_tests.integration_tests import ChatModelIntegrationTests

#: What a provider with a prompt cache and a reasoning model reports (Anthropic reads and
#: writes its cache; OpenAI reads and reasons): details as parts of the input and output.
DETAILED = Usage(
    input_tokens=1200,
    output_tokens=300,
    cached_input_tokens=1000,
    cache_creation_input_tokens=150,
    reasoning_tokens=200,
)
DETAILS = ["reasoning_output", "cache_read_input", "cache_creation_input"]


class TestForgeChatUsageDetails(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ForgeChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        backend = ScriptedBackend(Reply("Hello!", usage=DETAILED), model="gpt-scripted")
        return {"config": config_for({"name": "openai"}), "backends": {"openai": backend}}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": list(DETAILS), "stream": list(DETAILS)}

    def _answer(self, *, stream: bool) -> AIMessage:
        model = ForgeChat(**self.chat_model_params)
        if not stream:
            return model.invoke("Hello")
        full: AIMessageChunk | None = None
        for chunk in model.stream("Hello"):
            full = chunk if full is None else full + chunk
        assert full is not None
        return AIMessage(
            content=full.content,
            usage_metadata=full.usage_metadata,
            response_metadata=full.response_metadata,
        )

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        return self._answer(stream=stream)

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        return self._answer(stream=stream)

    def invoke_with_cache_creation_input(self, *, stream: bool = False) -> AIMessage:
        return self._answer(stream=stream)
