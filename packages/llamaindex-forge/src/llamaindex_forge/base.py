"""`ForgeLLM`: a LlamaIndex LLM whose every request is routed by `forge_core.Forge`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import forge_core
from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_validator
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM

from llamaindex_forge._utils import (
    chat_response,
    request_params,
    stream_response,
    to_forge_messages,
)

__all__ = ["ForgeLLM"]

DEFAULT_CONTEXT_WINDOW = 2048
#: ``metadata.model_name`` when no model is pinned (forge's configuration picks one per call).
UNPINNED_MODEL_NAME = "forge"


class ForgeLLM(LLM):
    """A LlamaIndex LLM routed by forge: local models first, cloud providers as fallback.

    Provider choice, fallback and retries all happen in `forge_core.Forge`; this class only
    converts LlamaIndex messages and responses. Every response's ``raw`` holds ``provider``,
    ``model``, ``finish_reason``, ``usage`` (``input_tokens`` / ``output_tokens`` /
    ``total_tokens``) and ``route`` (the `forge_core.RouteTrail` as JSON); the message's
    ``additional_kwargs`` holds the serving ``provider`` and ``model``. forge's exceptions
    (`forge_core.FallbackFailed`, `forge_core.ConfigError` …) propagate unchanged.

    Example:
        ```python
        from llama_index.core import Settings
        from llamaindex_forge import ForgeLLM

        Settings.llm = ForgeLLM(model="huggingface:gemma-3-270m", max_tokens=64)
        response = Settings.llm.complete("The sky is blue because")
        print(response.text, response.raw["provider"], response.raw["route"]["attempts"])
        ```
    """

    model: str | None = Field(
        default=None,
        description=(
            "Model to ask for: 'provider:model' (e.g. 'huggingface:gemma-3-270m', "
            "'ollama:llama3.1:8b') pins the first candidate; a bare name is resolved by forge; "
            "None lets the forge configuration decide."
        ),
    )
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        description="Sampling temperature; None uses the provider's default.",
    )
    max_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Maximum tokens to generate; None uses the provider's default.",
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Seconds bounding a whole request, fallbacks included "
            "(forge's routing.total_timeout_seconds); None keeps the configured value."
        ),
    )
    config: forge_core.ForgeConfig | str | None = Field(
        default=None,
        description=(
            "A forge_core.ForgeConfig, or the path of a forge.yaml; None uses $FORGE_CONFIG, "
            "./forge.yaml, the user config dir, then forge's defaults."
        ),
    )
    fallback_order: list[str] | None = Field(
        default=None,
        description="Providers to try, in order (providers.fallback.order); None keeps config.",
    )
    local_first: bool | None = Field(
        default=None,
        description="Try local providers before cloud ones; None keeps the configured value.",
    )
    local_only: bool | None = Field(
        default=None,
        description="Never send a request to a cloud provider; None keeps the configured value.",
    )
    context_window: int = Field(
        default=DEFAULT_CONTEXT_WINDOW,
        gt=0,
        description="Tokens the model can take in and put out in one call (for LlamaIndex).",
    )

    _forge: forge_core.Forge | None = PrivateAttr(default=None)
    _forge_source: tuple[object, dict[str, Any]] | None = PrivateAttr(default=None)

    @field_validator("config", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        """Accept any ``os.PathLike`` as a config path."""
        if hasattr(value, "__fspath__"):
            return str(value.__fspath__())
        return value

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex uses for this class in serialization and callbacks."""
        return "ForgeLLM"

    @property
    def metadata(self) -> LLMMetadata:
        """Context window, output budget and model name, as LlamaIndex's prompt helpers need."""
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens or DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=False,
            model_name=self.model or UNPINNED_MODEL_NAME,
        )

    @property
    def overrides(self) -> dict[str, Any]:
        """The ``Forge(overrides=...)`` mapping built from the options that are set."""
        return forge_core.routing_overrides(
            fallback_order=self.fallback_order,
            local_first=self.local_first,
            local_only=self.local_only,
            timeout=self.timeout,
        )

    @property
    def forge(self) -> forge_core.Forge:
        """The `forge_core.Forge` serving this LLM, built on first use.

        It is rebuilt when ``config`` or a routing option changed since it was built. Building
        it loads the configuration, so a bad ``config`` raises `forge_core.ConfigError` here.
        """
        overrides = self.overrides
        source = self._forge_source
        if (
            self._forge is None
            or source is None
            or not _same_config(source[0], self.config)
            or source[1] != overrides
        ):
            self._forge = forge_core.Forge(self.config, overrides=overrides or None)
            self._forge_source = (self.config, overrides)
        return self._forge

    def _params(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        defaults = {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        return request_params(defaults, kwargs)

    # -- chat ---------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route ``messages`` through forge and return the first successful answer.

        ``kwargs`` may set ``model``, ``temperature``, ``max_tokens``, ``stop``, ``local_only``
        or ``response_format`` for this call only.
        """
        request = to_forge_messages(messages)
        return chat_response(self.forge.chat(request, **self._params(kwargs)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async `chat`."""
        request = to_forge_messages(messages)
        return chat_response(await self.forge.achat(request, **self._params(kwargs)))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the answer: one response per content chunk, then a last one with the route.

        Each response's ``delta`` is the new text and ``message.content`` the text so far; the
        last response has ``delta == ""`` and carries ``usage`` and ``route`` in ``raw``.
        """
        request = to_forge_messages(messages)
        params = self._params(kwargs)
        forge = self.forge

        def gen() -> ChatResponseGen:
            chunks = forge.stream(request, **params)
            text = ""
            try:
                for chunk in chunks:
                    text += chunk.content
                    yield stream_response(chunk, text)
            finally:
                chunks.close()

        return gen()

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async `stream_chat`."""
        request = to_forge_messages(messages)
        params = self._params(kwargs)
        forge = self.forge

        async def gen() -> ChatResponseAsyncGen:
            chunks = forge.astream(request, **params)
            text = ""
            try:
                async for chunk in chunks:
                    text += chunk.content
                    yield stream_response(chunk, text)
            finally:
                await chunks.aclose()

        return gen()

    # -- completion (derived from chat) -------------------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """`chat` with ``prompt`` as the only (user) message."""
        return chat_to_completion_decorator(self.chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        """Async `complete`."""
        return await achat_to_completion_decorator(self.achat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        """`stream_chat` with ``prompt`` as the only (user) message."""
        return stream_chat_to_completion_decorator(self.stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async `stream_complete`."""
        return await astream_chat_to_completion_decorator(self.astream_chat)(prompt, **kwargs)


def _same_config(built_with: object, current: object) -> bool:
    """Whether ``current`` is the config the cached `Forge` was built from."""
    if isinstance(current, forge_core.ForgeConfig):
        return built_with is current
    return built_with == current
