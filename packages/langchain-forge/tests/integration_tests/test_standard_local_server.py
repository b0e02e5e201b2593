"""LangChain's standard integration tests for chat models, against the real local servers.

Two routes, both llama-cpp-python's OpenAI-compatible server running the embedded Gemma 3
270M base model, because one server cannot serve both halves of the suite well:

- `TestForgeChatLocalServer`: the ``local_server`` fixture (``--chat_format gemma``, the
  model's own template: real text answers), reached as ``ollama``. That server has no tool
  calling, so the tool and structured-output tests are declared absent and skip.
- `TestForgeChatToolServer`: the ``tool_server`` fixture (``--chat_format
  chatml-function-calling``: real grammar-constrained tool calls), reached as ``openai``. Its
  chatml template makes the base model answer a bare "Hello" with nothing, so the plain-chat
  tests (the same code path, proven by the first class) are skipped there, not run twice.

Where the 270M model cannot pass a test on quality (not plumbing), the test is a
strict ``xfail`` (temperature 0: the model answers the same every run, so a fix or a regression shows) with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_test_support import LocalServer, config_for, ollama_on, openai_compatible_on
from langchain_core.language_models import BaseChatModel
from langchain_forge import ForgeChat
from langchain_forge_support import ToolCallingRoute
from langchain_tests.integration_tests import ChatModelIntegrationTests

pytestmark = pytest.mark.local_server

BOTH_OUTPUT_VERSIONS = pytest.mark.parametrize(
    "model", [{}, {"output_version": "v1"}], indirect=True
)

NO_STREAM_USAGE = (
    "llama-cpp-python's server reports no token usage on streams (it ignores "
    "stream_options.include_usage); forge invents none"
)
WEAK_ARGUMENTS = (
    "270M base model: the grammar makes the call well-formed but the argument values are "
    "its own (magic_function(3) is called with input=1000000000000000)"
)
WEAK_JSON = "270M base model: JSON mode gives valid JSON, but not the keys the prompt asks for"
CUT_STRING = (
    "270M base model: a grammar-constrained string runs past max_tokens and the cut "
    "tool-call JSON is rejected as a malformed response"
)
NO_JAPANESE = (
    "270M base model: the Chinese name passes through intact, the Japanese one is "
    "translated to 'Hello Corporation'"
)
#: Plain chat is the same ForgeChat code path on either route; it runs on the text route.
# langchain-tests requires an overridden standard test to carry an xfail mark
# (test_no_overrides_DO_NOT_OVERRIDE), so "not run here" is an xfail that does not run.
NOT_RUN_HERE = pytest.mark.xfail(
    run=False,
    reason="not run on this route: plain chat runs in TestForgeChatLocalServer; under the "
    "chatml template the 270M base model answers 'Hello' with nothing",
)


class _ForgeChatRoute(ChatModelIntegrationTests):
    """What both routes share: the class, greedy decoding, short answers."""

    server: LocalServer | None = None

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ForgeChat

    def _params(self, **route: Any) -> dict[str, Any]:
        return {"temperature": 0.0, "max_tokens": 48, **route}

    @pytest.mark.xfail(strict=True, reason=NO_STREAM_USAGE)
    def test_usage_metadata_streaming(self, model: BaseChatModel) -> None:
        super().test_usage_metadata_streaming(model)


class TestForgeChatLocalServer(_ForgeChatRoute):
    @pytest.fixture(autouse=True)
    def _serve(self, local_server: LocalServer) -> None:
        # Autouse fixtures run before the suite's `model` fixture reads `chat_model_params`.
        type(self).server = local_server

    @property
    def chat_model_params(self) -> dict[str, Any]:
        assert self.server is not None
        return self._params(
            model=f"ollama:{self.server.model}", config=config_for(ollama_on(self.server))
        )

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_tool_choice(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False


class TestForgeChatToolServer(ToolCallingRoute, _ForgeChatRoute):
    @pytest.fixture(autouse=True)
    def _serve(self, tool_server: LocalServer) -> None:
        type(self).server = tool_server

    @property
    def chat_model_params(self) -> dict[str, Any]:
        assert self.server is not None
        return self._params(
            model=f"openai:{self.server.model}",
            config=config_for(openai_compatible_on(self.server)),
        )

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        # JSON-schema output needs forge-core's llama-cpp dialect (the server rejects
        # response_format json_schema); a forced tool call works on this server today.
        return {"method": "function_calling"}

    # -- quality xfails -------------------------------------------------------------------------

    @BOTH_OUTPUT_VERSIONS
    @pytest.mark.xfail(strict=True, reason=WEAK_ARGUMENTS)
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(strict=True, reason=WEAK_ARGUMENTS)
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(strict=True, reason=CUT_STRING)
    def test_structured_output_optional_param(self, model: BaseChatModel) -> None:
        super().test_structured_output_optional_param(model)

    @pytest.mark.xfail(strict=True, reason=WEAK_JSON)
    def test_json_mode(self, model: BaseChatModel) -> None:
        super().test_json_mode(model)

    @pytest.mark.xfail(strict=True, reason=NO_JAPANESE)
    def test_unicode_tool_call_integration(
        self,
        model: BaseChatModel,
        *,
        tool_choice: str | None = None,
        force_tool_call: bool = True,
    ) -> None:
        super().test_unicode_tool_call_integration(
            model, tool_choice=tool_choice, force_tool_call=force_tool_call
        )

    # -- plain chat: not run here (the text route runs it) -----------------------------------

    @NOT_RUN_HERE
    def test_invoke(self, model: BaseChatModel) -> None:
        super().test_invoke(model)

    @NOT_RUN_HERE
    async def test_ainvoke(self, model: BaseChatModel) -> None:
        await super().test_ainvoke(model)

    @NOT_RUN_HERE
    def test_stream(self, model: BaseChatModel) -> None:
        super().test_stream(model)

    @NOT_RUN_HERE
    async def test_astream(self, model: BaseChatModel) -> None:
        await super().test_astream(model)

    @NOT_RUN_HERE
    def test_stream_events_v3(self, model: BaseChatModel) -> None:
        super().test_stream_events_v3(model)

    @NOT_RUN_HERE
    async def test_astream_events_v3(self, model: BaseChatModel) -> None:
        await super().test_astream_events_v3(model)

    @NOT_RUN_HERE
    def test_batch(self, model: BaseChatModel) -> None:
        super().test_batch(model)

    @NOT_RUN_HERE
    async def test_abatch(self, model: BaseChatModel) -> None:
        await super().test_abatch(model)

    @NOT_RUN_HERE
    def test_conversation(self, model: BaseChatModel) -> None:
        super().test_conversation(model)

    @NOT_RUN_HERE
    def test_double_messages_conversation(self, model: BaseChatModel) -> None:
        super().test_double_messages_conversation(model)

    @NOT_RUN_HERE
    def test_usage_metadata(self, model: BaseChatModel) -> None:
        super().test_usage_metadata(model)

    @NOT_RUN_HERE
    def test_usage_metadata_streaming(self, model: BaseChatModel) -> None:
        super().test_usage_metadata_streaming(model)

    @NOT_RUN_HERE
    def test_stop_sequence(self, model: BaseChatModel) -> None:
        super().test_stop_sequence(model)

    @NOT_RUN_HERE
    def test_message_with_name(self, model: BaseChatModel) -> None:
        super().test_message_with_name(model)
