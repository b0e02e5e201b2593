"""`ForgeChat`: a LangChain chat model whose every call is routed by `forge_core.Forge`."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal

import forge_core
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, model_validator

from langchain_forge._utils import (
    chunk_to_message_chunk,
    messages_to_forge,
    request_params,
    response_to_message,
    tool_choice_to_openai,
    with_model_kwargs_as_extra_body,
)

__all__ = ["ForgeChat"]

#: ``ls_model_name`` when neither the instance nor the call names a model (the config decides,
#: and which model serves is only known from the response's ``model_name``).
AUTO_MODEL_NAME = "auto"

StructuredOutputMethod = Literal["function_calling", "json_mode", "json_schema"]

_log = logging.getLogger(__name__)


class ForgeChat(BaseChatModel, forge_core.ChatOptions):
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
            ``provider:model`` (``ollama:llama3.1:8b``, ``huggingface:smollm2-135m``) pins
            the first candidate; a bare name goes to the configured provider; None lets the
            config decide.
        temperature: float | None
            Sampling temperature.
        max_tokens: int | None
            Maximum number of tokens to generate.
        stop: list[str] | None
            Default stop sequences.
        top_p, top_k, seed, frequency_penalty, presence_penalty, logit_bias, logprobs,
        top_logprobs, parallel_tool_calls, user, service_tier, repeat_penalty: optional
            Sent to every provider that takes them, left out (with a debug log line) by the
            ones that do not (docs/providers.md).
        num_ctx: int | None, keep_alive: str | int | None
            Ollama's context size (wins over the size forge picks to fit the prompt) and how
            long it keeps the model loaded; the other providers leave them out.
        extra_body: dict | None
            Raw fields merged last into the provider's request body. ``model_kwargs`` is
            accepted as its other name (as ``ChatOpenAI`` has it), not beside it.
        reasoning, reasoning_effort, reasoning_budget: optional
            Ask for thinking (only candidates that can think serve): True, an effort
            (``low``/``medium``/``high``) or a token budget, translated per provider; the
            thinking comes back in ``additional_kwargs["reasoning_content"]`` (and signed
            parts in ``["reasoning_parts"]``) and as ``reasoning`` content blocks.

        An unknown or misspelt option (``temprature=0.2``) raises, naming the closest valid
        one; it is never dropped or passed on silently. ``num_predict`` (ChatOllama's) is
        ``max_tokens`` here: Ollama receives it as ``num_predict``.

    Key init args — routing params:
        config: ForgeConfig | str | Path | None
            A `forge_core.ForgeConfig` or the path of a ``forge.yaml``; None searches the
            usual places.
        fallback_order: list[str] | None
            Providers or deployments (kinds, names, ``name:model``) to try, in order (``providers.fallback.order``).
        local_first: bool | None
            Try local providers before cloud ones (``model_preferences.local_first``).
        local_only: bool | None
            Never call a cloud provider (``model_preferences.local_only``).
        timeout: float | None
            Deadline in seconds for the whole request, fallbacks included
            (``routing.total_timeout_seconds``).
        max_retries: int | None
            Retries of one candidate after a retryable error (``routing.max_retries``);
            fallback to the next candidate is separate.

        Routing params left as None keep the config's value.

    Key init args — endpoint params:
        api_key: SecretStr | None
            API key of the provider ``model`` pins (``openai:``, ``openrouter:``,
            ``anthropic:``), or of ``openai`` when ``model`` names no provider. None: the
            env var the config names (``api_key_env``). Never in a repr, error or log.
        base_url: str | None
            Base URL of the provider ``model`` pins (``ollama:`` too), or of ``openai`` (any
            OpenAI-compatible server) when ``model`` names no provider.

        ``model`` defaults to ``$FORGE_DEFAULT_MODEL`` and ``config`` to ``$FORGE_CONFIG``.

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
        answer.response_metadata["provider"]  # "ollama": who served
        answer.response_metadata["route"]["attempts"]  # every provider tried
        ```

        Per-call options: ``llm.invoke(messages, model="huggingface:smollm2-135m",
        temperature=0.2, max_tokens=64, local_only=True, stop=["\\n"], seed=7)``, or
        ``llm.bind(top_p=0.5, seed=7)``: every `forge_core.ChatRequest` field; an unknown one
        raises TypeError naming the closest.

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

    Tool calling:
        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location.'''

            location: str = Field(..., description="The city, e.g. Paris")


        llm_with_tools = llm.bind_tools([GetWeather], tool_choice="auto")
        answer = llm_with_tools.invoke("What is the weather in Paris?")
        answer.tool_calls
        # [{"name": "GetWeather", "args": {"location": "Paris"}, "id": "call_...", ...}]
        ```

        ``tool_choice``: ``"auto"``, ``"none"``, ``"any"`` / ``"required"`` (some tool must
        be called), a tool's name, or an OpenAI ``tool_choice`` dict. Streamed tool calls
        arrive as ``tool_call_chunks`` and merge into ``tool_calls``.

    Structured output:
        ```python
        class Joke(BaseModel):
            '''A joke to tell the user.'''

            setup: str
            punchline: str


        structured = llm.with_structured_output(Joke)  # method="json_schema"
        structured.invoke("Tell me a joke about cats")  # Joke(setup=..., punchline=...)
        llm.with_structured_output(Joke, method="function_calling", include_raw=True)
        # {"raw": AIMessage, "parsed": Joke | None, "parsing_error": Exception | None}
        ```

        ``method``: ``"json_schema"`` (native JSON-schema output), ``"function_calling"`` (a
        forced tool call) or ``"json_mode"`` (any JSON object; describe it in the prompt).

    Fallback:
        ```python
        llm = ForgeChat(fallback_order=["ollama", "huggingface", "openai"], local_first=True)
        answer = llm.invoke("Hello")
        for attempt in answer.response_metadata["route"]["attempts"]:
            print(attempt["provider"], attempt["ok"], attempt["error_kind"])
        ```

        When every candidate fails, forge's `forge_core.FallbackFailed` is raised unchanged;
        its ``route`` lists each attempt and each skipped provider.

        Every feature survives a fallback: bound tools and structured output go to the next
        candidate that can do them (candidates without tool calling or JSON output are
        skipped before any call, and listed in the route's ``drops``); a stream fails over
        before its first token, so ``stream``, ``astream``, callbacks and ``astream_events``
        see one clean stream from the provider that answered.

    Model profile:
        ```python
        ForgeChat(model="anthropic:claude-sonnet-4").profile
        # {"tool_calling": True, "structured_output": True, "image_inputs": True,
        #  "max_input_tokens": 200000, ...}
        ```

        For a pinned ``model``: forge's capability table for the deployment that would serve
        it first, worked out without a network call when the ForgeChat is made. None without
        a ``model``: the config picks the model per request and a fallback may differ.

    Token usage:
        ```python
        answer.usage_metadata
        # {"input_tokens": 28, "output_tokens": 5, "total_tokens": 33}
        ```

    Response metadata:
        ```python
        answer.response_metadata
        # {"model_name": "llama3.1:8b", "provider": "ollama", "model_provider": "forge",
        #  "finish_reason": "stop",
        #  "route": {"provider": "ollama", "model": "llama3.1:8b", "attempts": [...],
        #            "drops": [...], "ttft_ms": ..., "total_ms": ..., "cost_usd": 0.0}}
        ```

    Callbacks and tracing:
        The route reaches every callback handler in ``on_llm_end``: each generation's
        ``generation_info`` (and so the message's ``response_metadata``) and, for ``invoke``,
        the ``LLMResult``'s ``llm_output`` hold ``model_name`` (the model that served),
        ``provider``, ``route`` (every attempt and drop, with why) and ``cost_usd``;
        ``llm_output`` also has ``token_usage``. LangSmith shows them in the run's output,
        Langfuse takes the served model and usage from ``llm_output``; with OpenTelemetry
        (``forge-core[otel]``) forge's own spans nest under the handler's span
        (docs/observability.md).
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    model: str | None = Field(default_factory=lambda: os.environ.get("FORGE_DEFAULT_MODEL") or None)
    """``provider:model`` or a bare model name; defaults to ``$FORGE_DEFAULT_MODEL``, and when
    that is unset too the forge config decides."""

    temperature: float | None = None
    """Sampling temperature; None keeps the provider's default."""

    max_tokens: int | None = None
    """Maximum number of tokens to generate; None keeps the provider's default."""

    stop: list[str] | None = None
    """Default stop sequences (the ``stop`` argument of a call replaces them)."""

    streaming: bool = False
    """Whether ``invoke`` streams the answer internally (callbacks then get every token)."""

    @model_validator(mode="before")
    @classmethod
    def _model_kwargs_are_extra_body(cls, data: Any) -> Any:
        """``model_kwargs`` (ChatOpenAI's name) is taken as ``extra_body``, forge's name for
        the same raw request fields; both at once, or a forge option inside, is refused."""
        if isinstance(data, dict) and "model_kwargs" in data:
            return with_model_kwargs_as_extra_body(data)
        return data

    # -- LangChain metadata -------------------------------------------------------------------

    def _resolve_model_profile(self) -> ModelProfile | None:
        """``profile`` for a pinned ``model``: what forge's capability table says the model
        can do on the deployment that would serve it first (`forge_core.Forge.model_capabilities`),
        as LangChain's `ModelProfile`; None without a ``model`` (the config picks one per
        request, and a fallback may differ) or when no deployment serves it.

        Worked out when the ForgeChat is made, without a network call: an Ollama model has
        the table's defaults until forge has read its ``/api/show`` (then vision and context
        length are the model's own). A config that cannot load leaves it None (the first call
        raises the error)."""
        if not self.model:
            return None
        try:
            capabilities = self.shared_forge().model_capabilities(self.model)
        except forge_core.ForgeError as exc:
            _log.debug("ForgeChat: no profile for %s: %s", self.model, exc)
            return None
        return _profile_of(capabilities) if capabilities is not None else None

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
            **self.chat_options(),
            "timeout": self.timeout,
            "fallback_order": self.fallback_order,
            "local_first": self.local_first,
            "local_only": self.local_only,
            "config": self.config_identity(),
            "base_url": self.base_url,
            # Given backends answer differently from configured ones (and from each other).
            "backends": (
                sorted(f"{name}@{id(backend):x}" for name, backend in self.backends.items())
                if self.backends
                else None
            ),
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

    def _request(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
    ) -> forge_core.ChatRequest:
        """The forge request: instance fields, then per-call ``kwargs`` and ``stop``; the
        conversation key (``prompt_cache_key``) unless given: `_conversation_key`."""
        fields: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
        }
        fields.update(self.chat_options())
        key = _conversation_key(run_manager)
        if key is not None:
            fields["prompt_cache_key"] = key
        fields.update(request_params(kwargs))
        if stop is not None:
            fields["stop"] = stop
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
        request = self._request(messages, stop, kwargs, run_manager)
        return _chat_result(self.shared_forge().chat(request), self.output_version)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async `_generate` (forge's native ``achat``)."""
        request = self._request(messages, stop, kwargs, run_manager)
        return _chat_result(await self.shared_forge().achat(request), self.output_version)

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None], /) -> dict[str, Any]:
        """The ``llm_output`` of a batch (``generate``): every answer's route, the summed
        ``token_usage`` and ``cost_usd`` (None when any answer's cost is unknown)."""
        outputs = [output for output in llm_outputs if output]
        usage: dict[str, int] = {}
        for output in outputs:
            for key, value in (output.get("token_usage") or {}).items():
                usage[key] = usage.get(key, 0) + value
        costs = [output.get("cost_usd") for output in outputs]
        known = [cost for cost in costs if cost is not None]
        return {
            "token_usage": usage,
            "routes": [output.get("route") for output in outputs],
            "cost_usd": sum(known) if len(known) == len(costs) else None,
        }

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream through forge: content chunks, then one last chunk with usage and route."""
        request = self._request(messages, stop, kwargs, run_manager)
        chunks = self.shared_forge().stream(request)
        named_calls: set[int] = set()
        try:
            for chunk in chunks:
                message = chunk_to_message_chunk(chunk, named_calls)
                generation = ChatGenerationChunk(
                    message=message, generation_info=_served(chunk, message.response_metadata)
                )
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
        request = self._request(messages, stop, kwargs, run_manager)
        chunks = self.shared_forge().astream(request)
        named_calls: set[int] = set()
        try:
            async for chunk in chunks:
                message = chunk_to_message_chunk(chunk, named_calls)
                generation = ChatGenerationChunk(
                    message=message, generation_info=_served(chunk, message.response_metadata)
                )
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.content, chunk=generation)
                yield generation
        finally:
            await chunks.aclose()

    # -- tools and structured output ----------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (OpenAI tool schemas) to every call of the returned runnable.

        Args:
            tools: Tools as dicts, pydantic models, TypedDicts, functions or `BaseTool`s;
                each is converted with ``convert_to_openai_tool``.
            tool_choice: ``"auto"`` (the model decides), ``"none"``, ``"any"`` /
                ``"required"`` / ``True`` (some tool must be called), a tool's name (that
                tool must be called), or an OpenAI ``tool_choice`` dict.
            strict: Passed to ``convert_to_openai_tool`` (schema-exact arguments where the
                provider supports it).
            kwargs: Further per-call options (``model``, ``max_tokens`` ...).

        forge sends the tools to the first candidate that can call tools: candidates whose
        provider or model lacks tool calling are skipped (listed in the route's ``drops``),
        never called, so fallback keeps tool calling.
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        choice = tool_choice_to_openai(tool_choice, formatted)
        if choice is not None:
            kwargs["tool_choice"] = choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: StructuredOutputMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """A runnable whose output is ``schema``-shaped: a pydantic instance or a dict.

        Args:
            schema: A pydantic model class, a TypedDict, or a JSON schema / OpenAI tool dict.
                A pydantic class gives instances of it; anything else gives dicts.
            method: ``"json_schema"`` (the provider's native JSON-schema output,
                ``response_format={"type": "json_schema", ...}``), ``"function_calling"``
                (one forced tool call whose arguments are the output) or ``"json_mode"``
                (``response_format={"type": "json_object"}``; describe the shape in the
                prompt, the schema only validates).
            include_raw: Return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``
                instead of raising when the answer does not parse.
            strict: Ask for schema-exact output where the provider supports it.
            kwargs: Further per-call options (``model``, ``max_tokens`` ...).

        Candidates that cannot do what ``method`` needs (tool calling, JSON-schema output,
        JSON mode) are skipped by forge's router, so fallback keeps structured output.
        """
        if kwargs.get("tools") or kwargs.get("response_format"):
            raise ValueError(
                "ForgeChat.with_structured_output sets tools / response_format itself; "
                "do not pass them"
            )
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        tool = convert_to_openai_tool(schema, strict=strict)
        trace_format = {"kwargs": {"method": method, "strict": strict}, "schema": tool}
        parser: Runnable[Any, Any]
        if method == "function_calling":
            name = tool["function"]["name"]
            llm = self.bind_tools(
                [schema],
                tool_choice=name,
                strict=strict,
                ls_structured_output_format=trace_format,
                **kwargs,
            )
            if is_pydantic:
                parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            else:
                parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        elif method in ("json_schema", "json_mode"):
            if method == "json_schema":
                function = tool["function"]
                response_format = forge_core.json_schema_format(
                    function["name"],
                    function.get("parameters", {}),
                    description=function.get("description"),
                    strict=strict,
                )
            else:
                response_format = {"type": "json_object"}
            llm = self.bind(
                response_format=response_format, ls_structured_output_format=trace_format, **kwargs
            )
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if is_pydantic
                else JsonOutputParser()
            )
        else:
            raise ValueError(
                f"ForgeChat: unknown structured output method {method!r}; use 'json_schema', "
                "'function_calling' or 'json_mode'"
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [no_parse], exception_key="parsing_error"
        )


def _conversation_key(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> str | None:
    """The conversation key of a call: the run's metadata ``thread_id`` or ``session_id``
    (LangGraph copies its ``configurable.thread_id`` there), else those of the runnable the
    call runs in (a LangGraph node, a chain: langchain-core's ``var_child_runnable_config``,
    its metadata or ``configurable.thread_id``). langchain-core's ``stream``/``astream`` hand
    ``_stream`` no run manager, so a model streamed inside a node has its key from there; a
    top-level ``.stream(config=...)`` has neither, and takes ``prompt_cache_key=``."""
    metadata = run_manager.metadata if run_manager is not None else None
    key = (metadata.get("thread_id") or metadata.get("session_id")) if metadata else None
    if key is None:
        parent = var_child_runnable_config.get()
        if parent:
            outer = parent.get("metadata") or {}
            key = (
                outer.get("thread_id")
                or outer.get("session_id")
                or (parent.get("configurable") or {}).get("thread_id")
            )
    return None if key is None else str(key)


# LangChain asks for `_generate`'s (`_agenerate`'s) signature on every call, to see whether it
# takes a ``run_manager``; `inspect.signature` returns a function's own ``__signature__`` at once
# instead of rebuilding it from the code object (~15 µs a call), so it is computed here, once.
for _method in (ForgeChat._generate, ForgeChat._agenerate):
    setattr(_method, "__signature__", inspect.signature(_method))  # noqa: B010


def _profile_of(capabilities: forge_core.Capabilities) -> ModelProfile:
    """forge `Capabilities` as LangChain's `ModelProfile`: text in and out, tool calling (and
    its streaming), ``tool_choice``, structured output, image inputs and the context window as
    ``max_input_tokens`` when known. What forge does not know (output limits, audio, PDFs,
    reasoning) is left unset rather than guessed."""
    profile = ModelProfile(
        text_inputs=True,
        text_outputs=True,
        tool_calling=capabilities.tools,
        tool_call_streaming=capabilities.tools and capabilities.streaming,
        tool_choice=capabilities.tool_choice,
        structured_output=capabilities.structured_output,
        image_inputs=capabilities.vision,
    )
    if capabilities.context_window is not None:
        profile["max_input_tokens"] = capabilities.context_window
    return profile


def _served(
    answer: forge_core.ChatResponse | forge_core.ChatChunk, metadata: dict[str, Any]
) -> dict[str, Any] | None:
    """Who served and the route, for ``generation_info``, from the message's
    ``response_metadata`` (the route is dumped once); None on a stream's content chunks (only
    forge's last chunk has a route), so merging a stream's chunks keeps one copy."""
    route = answer.route
    if route is None:
        return None
    return {
        "model_name": answer.model,
        "provider": answer.provider.value,
        "route": metadata["route"],
        "cost_usd": route.cost_usd,
    }


def _chat_result(
    response: forge_core.ChatResponse, output_version: str | None = None
) -> ChatResult:
    """A forge answer as LangChain's result: the message, and the route in ``generation_info``
    and ``llm_output`` (what callback handlers receive in ``on_llm_end``)."""
    message = response_to_message(response, output_version)
    served = _served(response, message.response_metadata) or {}
    llm_output = dict(served)
    if response.usage is not None:
        llm_output["token_usage"] = {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "total_tokens": response.usage.total_tokens,
        }
    generation = ChatGeneration(message=message, generation_info=served)
    return ChatResult(generations=[generation], llm_output=llm_output)
