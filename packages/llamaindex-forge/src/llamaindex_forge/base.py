"""`ForgeLLM`: a LlamaIndex LLM whose every request is routed by `forge_core.Forge`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

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
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.program.utils import FlexibleModel, create_flexible_model
from llama_index.core.prompts import PromptTemplate
from llama_index.core.types import PydanticProgramMode
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from llamaindex_forge._utils import (
    ToolCallAssembler,
    chat_response,
    request_params,
    stream_response,
    to_forge_messages,
    tool_calls_from_message,
    tool_choice_param,
    tool_specs,
    usage_dict,
)

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

Model = TypeVar("Model", bound=BaseModel)

__all__ = ["ForgeLLM", "ForgeRouteEvent"]

dispatcher = get_dispatcher(__name__)

DEFAULT_CONTEXT_WINDOW = 2048
#: ``metadata.model_name`` when no model is pinned (forge's configuration picks one per call).
UNPINNED_MODEL_NAME = "forge"


class ForgeRouteEvent(BaseEvent):
    """Who served one `ForgeLLM` or `ForgeEmbedding` call and how, for instrumentation.

    Dispatched through LlamaIndex's instrumentation dispatcher once per routed call (a
    stream's when its last chunk arrives), inside the call's span, so every event handler and
    span handler (Arize Phoenix, Langfuse, LlamaTrace …) sees the route next to the LLM and
    embedding events: ``route`` is the `forge_core.RouteTrail` as JSON (every attempt and
    drop, with why), ``cost_usd`` what the call cost (0 for a local model, None unknown).
    """

    operation: str
    provider: str
    model: str
    route: dict[str, Any]
    usage: dict[str, int] | None = None
    cost_usd: float | None = None

    @classmethod
    def class_name(cls) -> str:
        """The event's name in instrumentation output."""
        return "ForgeRouteEvent"

    @classmethod
    def of(
        cls,
        operation: str,
        provider: forge_core.Provider,
        model: str,
        route: forge_core.RouteTrail,
        usage: dict[str, int] | None = None,
    ) -> ForgeRouteEvent:
        """The event for an answer from ``provider``'s ``model`` by ``route``."""
        return cls(
            operation=operation,
            provider=provider.value,
            model=model,
            route=route.model_dump(mode="json"),
            usage=usage,
            cost_usd=route.cost_usd,
        )


def _announce(answer: forge_core.ChatResponse | forge_core.ChatChunk) -> None:
    """Dispatch the `ForgeRouteEvent` of a chat answer (a stream's last chunk)."""
    if answer.route is not None:
        dispatcher.event(
            ForgeRouteEvent.of(
                "chat", answer.provider, answer.model, answer.route, usage_dict(answer.usage)
            )
        )


class ForgeLLM(forge_core.ChatOptions, FunctionCallingLLM):
    """A LlamaIndex LLM routed by forge: local models first, cloud providers as fallback.

    Provider choice, fallback and retries all happen in `forge_core.Forge`; this class only
    converts LlamaIndex messages and responses. Every response's ``raw`` holds ``provider``,
    ``model``, ``finish_reason``, ``usage`` (``input_tokens`` / ``output_tokens`` /
    ``total_tokens``) and ``route`` (the `forge_core.RouteTrail` as JSON, with ``cost_usd``);
    the message's ``additional_kwargs`` holds the serving ``provider`` and ``model``. Each
    call also dispatches a `ForgeRouteEvent` through LlamaIndex's instrumentation, so event
    and span handlers see the route. forge's exceptions (`forge_core.FallbackFailed`,
    `forge_core.ConfigError` …) propagate unchanged.

    Example:
        ```python
        from llama_index.core import Settings
        from llamaindex_forge import ForgeLLM

        Settings.llm = ForgeLLM(model="huggingface:smollm2-135m", max_tokens=64)
        response = Settings.llm.complete("The sky is blue because")
        print(response.text, response.raw["provider"], response.raw["route"]["attempts"])
        ```

    Tool calling (`FunctionCallingLLM`): ``chat_with_tools`` / ``predict_and_call`` and agents
    (``FunctionAgent``) work when the route has a provider that can call tools; the calls land
    in ``message.additional_kwargs["tool_calls"]`` (OpenAI shape, real ids) and
    `get_tool_calls_from_response` returns them as `ToolSelection`s. Structured prediction asks
    for JSON-schema output (grammar-constrained on local models) when the route supports it.

    Generation parameters (``top_p``, ``top_k``, ``seed``, ``frequency_penalty``,
    ``presence_penalty``, ``logit_bias``, ``logprobs``, ``top_logprobs``,
    ``parallel_tool_calls``, ``user``, ``service_tier``, ``repeat_penalty``, Ollama's
    ``num_ctx`` and ``keep_alive``, ``extra_body``) are fields and per-call keywords alike; a
    provider that lacks one leaves it out (docs/providers.md). An unknown or misspelt option or
    keyword raises, naming the closest valid one (``num_predict``: ``max_tokens``, which Ollama
    receives as ``num_predict``).
    """

    model: str | None = Field(
        default=None,
        description=(
            "Model to ask for: 'provider:model' (e.g. 'huggingface:smollm2-135m', "
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
    context_window: int = Field(
        default=DEFAULT_CONTEXT_WINDOW,
        gt=0,
        description=(
            "Tokens the model can take in and put out in one call (for LlamaIndex). Unless set "
            "here, metadata reports the first candidate's known context window, else this."
        ),
    )

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex uses for this class in serialization and callbacks."""
        return "ForgeLLM"

    @property
    def metadata(self) -> LLMMetadata:
        """Context window, output budget and model name, as LlamaIndex's prompt helpers need.

        ``is_function_calling_model`` is true when `forge_core.Forge.capabilities` finds a
        candidate that calls tools (from the configuration, without a network call); a
        configuration that does not load raises its `forge_core.ConfigError` here.
        ``context_window`` is the option when set, else the context window the first candidate
        reports (the in-process model's ``n_ctx``), else the option's default.
        """
        return LLMMetadata(
            context_window=self._context_window(),
            num_output=self.max_tokens or DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=self._capabilities(_NEEDS_TOOLS) is not None,
            model_name=self.model or UNPINNED_MODEL_NAME,
        )

    def _context_window(self) -> int:
        if "context_window" in self.model_fields_set:
            return self.context_window
        capabilities = self._capabilities(forge_core.ModelRequirements())
        window = capabilities.context_window if capabilities is not None else None
        return window or self.context_window

    def _capabilities(self, needs: forge_core.ModelRequirements) -> forge_core.Capabilities | None:
        """`forge_core.Forge.capabilities` of this LLM's route (None: no candidate can meet
        ``needs``); a configuration that does not load raises its `forge_core.ConfigError`."""
        return self.forge.capabilities(self.model, needs)

    @property
    def forge(self) -> forge_core.Forge:
        """The `forge_core.Forge` serving this LLM, from `forge_core.shared_forge`.

        Every `ForgeLLM` (and `ForgeEmbedding`) with the same ``config`` and routing options
        shares one, with its HTTP pools, breakers and health; changing an option (or editing
        the config file) gives another. The first use of a set of options loads the
        configuration, so a bad ``config`` raises `forge_core.ConfigError` here.
        """
        return self.shared_forge()

    def _params(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        defaults = {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **self.chat_options(),
        }
        return request_params(defaults, kwargs)

    # -- chat ---------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route ``messages`` through forge and return the first successful answer.

        ``kwargs`` may set any `forge_core.ChatRequest` field for this call only: ``model``,
        ``temperature``, ``max_tokens``, ``stop``, ``local_only``, ``response_format``,
        ``tools``, ``tool_choice`` (OpenAI shapes), ``top_p``, ``seed`` ... ``extra_body``;
        ``prompt_cache_key`` names the conversation (balanced deployments keep it together).
        """
        request = to_forge_messages(messages)
        answer = self.forge.chat(request, **self._params(kwargs))
        _announce(answer)
        return chat_response(answer)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async `chat`."""
        request = to_forge_messages(messages)
        answer = await self.forge.achat(request, **self._params(kwargs))
        _announce(answer)
        return chat_response(answer)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the answer: one response per content chunk, then a last one with the route.

        Each response's ``delta`` is the new text and ``message.content`` the text so far; the
        last response has ``delta == ""`` and carries ``usage`` and ``route`` in ``raw``.
        Streamed tool calls are joined by index into ``additional_kwargs["tool_calls"]``, so
        each response holds the calls so far and the last one holds them whole.
        """
        request = to_forge_messages(messages)
        params = self._params(kwargs)
        forge = self.forge

        def gen() -> ChatResponseGen:
            chunks = forge.stream(request, **params)
            text = thinking = ""
            calls = ToolCallAssembler()
            try:
                for chunk in chunks:
                    text += chunk.content
                    thinking += chunk.reasoning
                    calls.add(chunk.tool_call_deltas)
                    _announce(chunk)
                    yield stream_response(chunk, text, calls.wire(), thinking)
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
            text = thinking = ""
            calls = ToolCallAssembler()
            try:
                async for chunk in chunks:
                    text += chunk.content
                    thinking += chunk.reasoning
                    calls.add(chunk.tool_call_deltas)
                    _announce(chunk)
                    yield stream_response(chunk, text, calls.wire(), thinking)
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

    # -- tools ----------------------------------------------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The `chat` arguments for a conversation with ``tools`` (OpenAI tool shapes).

        ``tool_choice`` may name a tool (forcing it), or be ``auto``, ``none`` or
        ``required``; with none given, ``tool_required`` asks for ``required``.
        """
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        specs = tool_specs(tools)
        prepared: dict[str, Any] = {"messages": messages, **kwargs}
        if specs:
            prepared["tools"] = specs
            choice = tool_choice_param(tool_choice, specs, tool_required=tool_required)
            if choice is not None:
                prepared["tool_choice"] = choice
        return prepared

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call unless parallel calls are allowed."""
        if not allow_parallel_tool_calls:
            calls = response.message.additional_kwargs.get("tool_calls")
            if calls and len(calls) > 1:
                response.message.additional_kwargs["tool_calls"] = calls[:1]
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The tool calls of ``response`` with the ids the provider gave them.

        While a stream is in flight the last call's arguments may be incomplete JSON; they read
        as ``{}`` until the final response.
        """
        done = response.delta in (None, "") and (response.raw or {}).get("route") is not None
        selections = tool_calls_from_message(response.message, partial=not done)
        if not selections and error_on_no_tool_call:
            raise ValueError(
                "ForgeLLM: expected at least one tool call, got none "
                f"(answer: {response.message.content!r})"
            )
        return selections

    # -- structured prediction -------------------------------------------------------------------

    def _json_schema_route(self, output_cls: type[BaseModel]) -> dict[str, Any] | None:
        """The ``response_format`` to ask for, or None when the route cannot honour it."""
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            return None
        response_format = _json_schema_format(output_cls)
        needs = forge_core.ModelRequirements(structured_output=True)
        return response_format if self._capabilities(needs) is not None else None

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Predict an ``output_cls`` with JSON-schema output where the route supports it.

        Otherwise LlamaIndex's own programs (tool calling, then text parsing) are used.
        """
        response_format = self._json_schema_route(output_cls)
        if response_format is None:
            fallback: Model = super().structured_predict(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
            return fallback
        messages = self._get_messages(prompt, **prompt_args)
        response = self.chat(messages, response_format=response_format, **(llm_kwargs or {}))
        return _parse_structured(output_cls, response)

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async `structured_predict`."""
        response_format = self._json_schema_route(output_cls)
        if response_format is None:
            fallback: Model = await super().astructured_predict(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
            return fallback
        messages = self._get_messages(prompt, **prompt_args)
        response = await self.achat(messages, response_format=response_format, **(llm_kwargs or {}))
        return _parse_structured(output_cls, response)

    def _structured_stream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Any, None, None]:
        """Partial objects (`FlexibleModel`) while JSON streams in, then the whole object."""
        response_format = self._json_schema_route(output_cls)
        if response_format is None:
            return super()._structured_stream_call(output_cls, prompt, llm_kwargs, **prompt_args)
        messages = self._get_messages(prompt, **prompt_args)
        responses = self.stream_chat(
            messages, response_format=response_format, **(llm_kwargs or {})
        )

        def gen() -> Generator[Model | FlexibleModel, None, None]:
            partials = _PartialObjects(output_cls)
            last: ChatResponse | None = None
            for response in responses:
                last = response
                partial = partials.take(response)
                if partial is not None:
                    yield partial
            yield _parse_structured(output_cls, last)

        return gen()

    async def _structured_astream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Any, None]:
        """Async `_structured_stream_call`."""
        response_format = self._json_schema_route(output_cls)
        if response_format is None:
            return await super()._structured_astream_call(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
        messages = self._get_messages(prompt, **prompt_args)
        responses = await self.astream_chat(
            messages, response_format=response_format, **(llm_kwargs or {})
        )

        async def gen() -> AsyncGenerator[Model | FlexibleModel, None]:
            partials = _PartialObjects(output_cls)
            last: ChatResponse | None = None
            async for response in responses:
                last = response
                partial = partials.take(response)
                if partial is not None:
                    yield partial
            yield _parse_structured(output_cls, last)

        return gen()


_NEEDS_TOOLS = forge_core.ModelRequirements(tools=True)


def _json_schema_format(output_cls: type[BaseModel]) -> dict[str, Any]:
    """An OpenAI ``response_format`` asking for JSON that validates against ``output_cls``."""
    return forge_core.json_schema_format(output_cls.__name__, output_cls.model_json_schema())


def _parse_structured(output_cls: type[Model], response: ChatResponse | None) -> Model:
    """``output_cls`` from the JSON answer; a clear ValueError when it does not validate."""
    text = response.message.content if response is not None else None
    try:
        return output_cls.model_validate_json(text or "")
    except ValidationError as exc:
        served = (response.raw or {}) if response is not None else {}
        raise ValueError(
            f"ForgeLLM: {served.get('provider')}:{served.get('model')} answered JSON that is "
            f"not a valid {output_cls.__name__}: {text!r}\n{exc}"
        ) from exc


class _PartialObjects:
    """Turns the JSON text streamed so far into partial objects, yielding each new one once."""

    def __init__(self, output_cls: type[BaseModel]) -> None:
        self._flexible = create_flexible_model(output_cls)
        self._last: dict[str, Any] | None = None

    def take(self, response: ChatResponse) -> FlexibleModel | None:
        if not response.delta:
            return None
        data = _parse_incomplete_json(response.message.content or "")
        if not isinstance(data, dict) or data == self._last:
            return None
        self._last = data
        try:
            return self._flexible.model_validate(data)
        except ValidationError:
            return None


def _parse_incomplete_json(text: str) -> Any:
    """``text`` as JSON as far as it goes (a partial string kept, a dangling key dropped:
    pydantic-core's partial mode), else None."""
    try:
        return from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return None
