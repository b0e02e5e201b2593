"""`ForgeChat`: a LangChain chat model whose every call is routed by `forge_core.Forge`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import forge_core
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from langchain_forge._utils import (
    chunk_to_message_chunk,
    config_identity,
    messages_to_forge,
    request_params,
    response_to_message,
)

__all__ = ["ForgeChat"]

#: ``ls_model_name`` when neither the instance nor the call names a model (the config decides,
#: and which model serves is only known from the response's ``model_name``).
AUTO_MODEL_NAME = "auto"


@dataclass(frozen=True)
class _ForgeState:
    """A built `forge_core.Forge` and the config identity and overrides it was built from.

    Copies of a `ForgeChat` (``model_copy``, ``copy.deepcopy``) share it: a `Forge` is not
    changed by calls, and it holds pooled HTTP clients and locks that cannot be deep-copied.
    """

    inputs: tuple[Any, dict[str, Any]]
    forge: forge_core.Forge

    def __deepcopy__(self, memo: dict[int, Any]) -> _ForgeState:
        return self


class ForgeChat(BaseChatModel):
    """Chat model routed by forge: local models first, cloud providers as fallback.

    Every call goes through `forge_core.Forge`, which picks the provider (Ollama, a GGUF
    model run in process, OpenAI, OpenRouter ...), falls back when one fails, and reports
    the route it took. `ForgeChat` only converts messages and results.

    Setup:
        Install ``langchain-forge``; add ``forge-core[llama]`` to run GGUF models in
        process. Routing is configured in a ``forge.yaml`` (``$FORGE_CONFIG``,
        ``./forge.yaml`` or the user config dir) or a `forge_core.ForgeConfig`.

        ```bash
        pip install -U langchain-forge "forge-core[llama]"
        ```

    Key init args — completion params:
        model: str | None
            ``provider:model`` (``ollama:llama3.1:8b``, ``huggingface:gemma-3-270m``) pins
            the first candidate; a bare name goes to the configured provider; None lets the
            config decide.
        temperature: float | None
            Sampling temperature.
        max_tokens: int | None
            Maximum number of tokens to generate.
        stop: list[str] | None
            Default stop sequences.

    Key init args — routing params:
        config: ForgeConfig | str | Path | None
            A `forge_core.ForgeConfig` or the path of a ``forge.yaml``; None searches the
            usual places.
        fallback_order: list[str] | None
            Providers to try, in order (``providers.fallback.order``).
        local_first: bool | None
            Try local providers before cloud ones (``model_preferences.local_first``).
        local_only: bool | None
            Never call a cloud provider (``model_preferences.local_only``).
        timeout: float | None
            Deadline in seconds for the whole request, fallbacks included
            (``routing.total_timeout_seconds``).
        max_retries: int | None
            Accepted for compatibility and stored; forge-core owns retries and fallback.

        Routing params left as None keep the config's value.

    Instantiate:
        ```python
        from langchain_forge import ForgeChat

        llm = ForgeChat(model="ollama:llama3.1:8b", temperature=0, max_tokens=256)
        ```

    Invoke:
        ```python
        messages = [
            ("system", "You are a helpful translator. Translate to French."),
            ("human", "I love programming."),
        ]
        answer = llm.invoke(messages)
        answer.content
        answer.response_metadata["model_provider"]  # "ollama"
        answer.response_metadata["route"]["attempts"]  # every provider tried
        ```

        Per-call options: ``llm.invoke(messages, model="huggingface:gemma-3-270m",
        temperature=0.2, max_tokens=64, local_only=True, stop=["\\n"])``.

    Stream:
        ```python
        for chunk in llm.stream(messages):
            print(chunk.text, end="")
        ```

        The last chunk has empty content and carries ``response_metadata`` (provider, model,
        finish reason, route), ``usage_metadata`` when the provider reports usage, and
        ``chunk_position="last"``.

    Async:
        ```python
        await llm.ainvoke(messages)
        async for chunk in llm.astream(messages):
            ...
        ```

    Fallback:
        ```python
        llm = ForgeChat(fallback_order=["ollama", "huggingface", "openai"], local_first=True)
        answer = llm.invoke("Hello")
        for attempt in answer.response_metadata["route"]["attempts"]:
            print(attempt["provider"], attempt["ok"], attempt["error_kind"])
        ```

        When every candidate fails, forge's `forge_core.FallbackFailed` is raised unchanged;
        its ``route`` lists each attempt and each skipped provider.

    Token usage:
        ```python
        answer.usage_metadata
        # {"input_tokens": 28, "output_tokens": 5, "total_tokens": 33}
        ```

    Response metadata:
        ```python
        answer.response_metadata
        # {"model_name": "llama3.1:8b", "model_provider": "ollama", "finish_reason": "stop",
        #  "route": {"provider": "ollama", "model": "llama3.1:8b", "attempts": [...],
        #            "drops": [...], "ttft_ms": ..., "total_ms": ...}}
        ```
    """

    model: str | None = None
    """``provider:model`` or a bare model name; None lets the forge config decide."""

    temperature: float | None = None
    """Sampling temperature; None keeps the provider's default."""

    max_tokens: int | None = None
    """Maximum number of tokens to generate; None keeps the provider's default."""

    stop: list[str] | None = None
    """Default stop sequences (the ``stop`` argument of a call replaces them)."""

    timeout: float | None = None
    """Deadline in seconds for a whole request, fallbacks included.

    Sets forge's ``routing.total_timeout_seconds``; None keeps the config's value.
    """

    max_retries: int | None = None
    """Accepted for compatibility with other chat models and stored; forge-core owns retries
    and fallback, so it has no effect."""

    streaming: bool = False
    """Whether ``invoke`` streams the answer internally (callbacks then get every token)."""

    config: forge_core.ForgeConfig | str | Path | None = None
    """A `forge_core.ForgeConfig` or the path of a ``forge.yaml``.

    None uses ``$FORGE_CONFIG``, ``./forge.yaml``, the user config dir, then forge's defaults.
    """

    fallback_order: list[str] | None = None
    """Providers to try, in order (``providers.fallback.order``); None keeps the config's."""

    local_first: bool | None = None
    """Try local providers before cloud ones (``model_preferences.local_first``)."""

    local_only: bool | None = None
    """Never send a request to a cloud provider (``model_preferences.local_only``)."""

    _forge_state: _ForgeState | None = PrivateAttr(default=None)

    # -- LangChain metadata -------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        """The type of this chat model, for LangChain's serialization and tracing."""
        return "forge"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """Everything that changes what a call does (also keys LangChain's LLM cache)."""
        return {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "timeout": self.timeout,
            "fallback_order": self.fallback_order,
            "local_first": self.local_first,
            "local_only": self.local_only,
            "config": config_identity(self.config),
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Standard LangSmith tracing params; per-call ``model``/``temperature``/... win."""
        model = kwargs.get("model", self.model)
        params = LangSmithParams(
            ls_provider="forge",
            ls_model_name=model or AUTO_MODEL_NAME,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop = self.stop if stop is None else stop
        if stop:
            params["ls_stop"] = stop
        return params

    # -- forge --------------------------------------------------------------------------------

    def _overrides(self) -> dict[str, Any]:
        """forge.yaml-shaped overrides from the routing fields that are set."""
        return forge_core.routing_overrides(
            fallback_order=self.fallback_order,
            local_first=self.local_first,
            local_only=self.local_only,
            timeout=self.timeout,
        )

    def _get_forge(self) -> forge_core.Forge:
        """The `forge_core.Forge`, built on first use (again if ``config`` or a routing field
        changed since)."""
        overrides = self._overrides()
        inputs = (config_identity(self.config), overrides)
        state = self._forge_state
        if state is None or state.inputs != inputs:
            forge = forge_core.Forge(self.config, overrides=overrides or None)
            state = self._forge_state = _ForgeState(inputs, forge)
        return state.forge

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> forge_core.ChatRequest:
        """The forge request: instance fields, then per-call ``kwargs`` and ``stop``."""
        fields: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop if stop is None else stop,
        }
        fields.update(request_params(kwargs))
        return forge_core.ChatRequest(
            messages=messages_to_forge(messages),
            **{key: value for key, value in fields.items() if value is not None},
        )

    # -- calls --------------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Route one request through forge and return its answer."""
        request = self._request(messages, stop, kwargs)
        response = self._get_forge().chat(request)
        return ChatResult(generations=[ChatGeneration(message=response_to_message(response))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async `_generate` (forge's native ``achat``)."""
        request = self._request(messages, stop, kwargs)
        response = await self._get_forge().achat(request)
        return ChatResult(generations=[ChatGeneration(message=response_to_message(response))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream through forge: content chunks, then one last chunk with usage and route."""
        request = self._request(messages, stop, kwargs)
        chunks = self._get_forge().stream(request)
        try:
            for chunk in chunks:
                generation = ChatGenerationChunk(message=chunk_to_message_chunk(chunk))
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.content, chunk=generation)
                yield generation
        finally:
            chunks.close()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Async `_stream` (forge's native ``astream``)."""
        request = self._request(messages, stop, kwargs)
        chunks = self._get_forge().astream(request)
        try:
            async for chunk in chunks:
                generation = ChatGenerationChunk(message=chunk_to_message_chunk(chunk))
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.content, chunk=generation)
                yield generation
        finally:
            await chunks.aclose()
