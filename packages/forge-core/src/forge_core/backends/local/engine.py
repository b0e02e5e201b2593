"""The engines behind the ``huggingface`` provider: one loaded model answering one request.

`make_instance` loads a GGUF (llama-cpp-python) or an ONNX model directory (onnxruntime);
`generation_for` runs one request on it and yields `ChatChunk`s. The same code runs in this
process (``isolation: thread``) and in a worker process of forge's own (``isolation: process``,
`forge_core.backends.local.worker`), so both answer alike.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from forge_core.backends.base import AttemptTimeouts
from forge_core.backends.content import require_text_only
from forge_core.backends.http.openai.wire import message_to_wire
from forge_core.backends.parameters import (
    carry_parameters,
    leave_out_extra_body,
    merge_extra_body,
)
from forge_core.config.local_models import ResolvedModel, gpu_layers, llama_output_logged
from forge_core.config.sections import HuggingFaceConfig
from forge_core.errors import (
    BadRequest,
    CapabilityMismatch,
    MissingDependency,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
)
from forge_core.types import (
    ChatChunk,
    ChatRequest,
    Message,
    Provider,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "REPEAT_PENALTY",
    "Generation",
    "Purpose",
    "chat_format_for",
    "embed_texts",
    "generation_for",
    "make_instance",
]

LLAMA_HINT = "pip install 'forge-core[llama]'"
ONNX_HINT = "pip install 'forge-core[onnx]'"
#: A base model given no limit rambles until its context is full; cap answers by default.
DEFAULT_MAX_TOKENS = 512
#: Chat formats whose template has no system turn: the system text opens the first user turn.
_SYSTEMLESS_FORMATS = frozenset({"gemma"})
#: Chat format for a GGUF with no template of its own and none configured.
_FALLBACK_CHAT_FORMAT = "chatml"
_PROVIDER = Provider.HUGGINGFACE.value


#: What a loaded instance is for: answering chats, or computing embeddings (llama.cpp loads a
#: model differently for each, so they are separate instances).
Purpose = Literal["chat", "embed"]


def make_instance(
    resolved: ResolvedModel, config: HuggingFaceConfig, purpose: Purpose = "chat"
) -> Any:
    """One loaded instance of ``resolved``: a ``Llama`` (GGUF) or an `OnnxCausalLM`."""
    if purpose == "embed":
        return embedding_instance(resolved, config)
    if resolved.format == "onnx":
        return onnx_instance(resolved, config)
    return gguf_instance(resolved, config)


def embedding_instance(resolved: ResolvedModel, config: HuggingFaceConfig) -> Any:
    """A ``llama_cpp.Llama`` in embedding mode (mean pooling) for the GGUF ``resolved``."""
    if resolved.format != "gguf":
        raise CapabilityMismatch(
            f"huggingface: {resolved.name} is a {resolved.format} model; embeddings need a GGUF",
            provider=_PROVIDER,
            model=resolved.name,
        )
    return _llama(
        resolved,
        config,
        "for embeddings",
        lambda llama_cpp: {
            "embedding": True,
            # Chat GGUFs declare no pooling; mean pooling gives one vector per text.
            "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            # A text must fit one batch to be embedded whole (longer ones truncate).
            "n_batch": config.n_ctx,
            "n_ubatch": config.n_ctx,
        },
    )


def _llama(
    resolved: ResolvedModel,
    config: HuggingFaceConfig,
    purpose: str,
    settings: Callable[[Any], dict[str, Any]],
) -> Any:
    """A ``llama_cpp.Llama`` for ``resolved`` with ``config``'s context, threads and offload,
    and ``settings(llama_cpp)``; what llama.cpp prints meanwhile goes to the log."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency(
            f"huggingface: running GGUF models {purpose} needs llama-cpp-python: {LLAMA_HINT}",
            provider=_PROVIDER,
            model=resolved.name,
        ) from exc
    try:
        with llama_output_logged():
            return llama_cpp.Llama(
                model_path=str(resolved.path),
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
                n_gpu_layers=gpu_layers(config.device),
                verbose=False,
                **settings(llama_cpp),
            )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelNotFound(
            f"huggingface: cannot load {resolved.path} {purpose}: {exc}",
            provider=_PROVIDER,
            model=resolved.name,
        ) from exc


def embed_texts(instance: Any, texts: list[str], model: str) -> list[list[float]]:
    """Unit-length vectors of ``texts`` from an `embedding_instance`."""
    try:
        vectors = instance.embed(texts, normalize=True, truncate=True)
    except (ValueError, RuntimeError) as exc:
        raise ProviderUnavailable(
            f"huggingface: embedding failed: {exc}", provider=_PROVIDER, model=model
        ) from exc
    return [[float(x) for x in vector] for vector in vectors]


class Generation(Protocol):
    """One request being answered: its chunks, and the tokens generated so far."""

    output_tokens: int

    def chunks(self, timeouts: AttemptTimeouts) -> Iterator[ChatChunk]:
        """The answer piece by piece; the last chunk carries the finish reason and usage."""
        ...


def generation_for(instance: Any, fmt: str, request: ChatRequest, model: str) -> Generation:
    """``request`` on ``instance`` (a model loaded by `make_instance` in format ``fmt``)."""
    if fmt == "onnx":
        return _OnnxGeneration(instance, request, model)
    return _GgufGeneration(instance, request, model)


def generate(
    generation: Generation, timeouts: AttemptTimeouts, model: str
) -> Generator[ChatChunk, None, None]:
    """``generation``'s chunks, llama-cpp-python's ``ValueError``s translated."""
    try:
        yield from generation.chunks(timeouts)
    except ValueError as exc:
        raise translate(exc, model) from exc


def gguf_instance(resolved: ResolvedModel, config: HuggingFaceConfig) -> Any:
    """A ``llama_cpp.Llama`` for chat with ``resolved`` and ``config``'s settings."""
    # chat_format None lets llama-cpp-python use the GGUF's own template; see chat_format_for.
    llama = _llama(resolved, config, "for chat", lambda _: {"chat_format": resolved.chat_format})
    llama.chat_format = chat_format_for(llama.metadata, resolved.chat_format)
    return llama


def onnx_instance(resolved: ResolvedModel, config: HuggingFaceConfig) -> Any:
    """An `OnnxCausalLM` for the ONNX model directory ``resolved``."""
    try:
        from forge_core.backends.local.onnx import OnnxCausalLM
    except ImportError as exc:
        raise MissingDependency(
            f"huggingface: running ONNX models needs onnxruntime: {ONNX_HINT}",
            provider=_PROVIDER,
            model=resolved.name,
        ) from exc
    try:
        return OnnxCausalLM(resolved.path, n_threads=config.n_threads)
    except Exception as exc:
        raise ModelNotFound(
            f"huggingface: cannot load the ONNX model in {resolved.path}: {exc}",
            provider=_PROVIDER,
            model=resolved.name,
        ) from exc


#: The repetition penalty of in-process GGUF generation: the default of llama-cpp-python's
#: OpenAI-compatible server and of Ollama, so a model answers the same in process as behind
#: those servers. (``Llama.create_chat_completion`` defaults to 1.0, with which small models
#: repeat themselves in loops; its chat handlers default to 1.1.)
REPEAT_PENALTY = 1.1


def chat_format_for(metadata: dict[str, str], configured: str | None) -> str:
    """The llama-cpp-python chat format to use for a GGUF with ``metadata``.

    A format named in config wins (the user asked for it); then the GGUF's own
    ``tokenizer.chat_template`` (llama-cpp-python registers it as ``chat_template.default``);
    then ChatML.
    """
    if configured:
        return configured
    if "tokenizer.chat_template" in metadata:
        return "chat_template.default"
    return _FALLBACK_CHAT_FORMAT


def translate(exc: ValueError, model: str) -> ProviderError:
    text = str(exc)
    if "context window" in text or "exceed" in text:
        return CapabilityMismatch(
            f"huggingface: prompt does not fit {model}'s context: {text}",
            provider=_PROVIDER,
            model=model,
        )
    return ProviderUnavailable(
        f"huggingface: generation failed: {text}", provider=_PROVIDER, model=model
    )


def _context_check(prompt_tokens: int, request: ChatRequest, n_ctx: int, model: str) -> int:
    """The ``max_tokens`` to generate with; `CapabilityMismatch` when the prompt does not fit."""
    wanted = request.max_tokens
    room = n_ctx - prompt_tokens
    if (wanted is not None and wanted > room) or room < 1:
        raise CapabilityMismatch(
            f"huggingface: {model}: the prompt is {prompt_tokens} tokens and "
            f"{wanted or 1} more were asked for, but the context holds {n_ctx} "
            f"(n_ctx); refused before generation",
            provider=_PROVIDER,
            model=model,
        )
    return wanted if wanted is not None else min(DEFAULT_MAX_TOKENS, room)


# -- GGUF generation ------------------------------------------------------------------------------


class _Captured(Exception):
    """Raised by `_PromptCapture` to stop a chat handler once it has built the prompt."""


class _PromptCapture:
    """Stands in for a ``Llama`` in a chat call, recording the completion it asks for.

    llama-cpp-python's chat handlers format the messages, tokenise the prompt and then call
    ``create_completion``; catching that call gives the exact prompt tokens, stop strings and
    grammar, so the context can be checked before anything is generated.
    """

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self.kwargs: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        raise _Captured


#: The sampling parameters llama-cpp-python's ``create_chat_completion`` takes (same names;
#: ``repeat_penalty`` replaces forge's `REPEAT_PENALTY`); it has no parallel tool calls, user or
#: service tier, and the context is the one the model was loaded with (no ``num_ctx``).
_GGUF_FIELDS = {
    name: name
    for name in (
        "repeat_penalty",
        "top_p",
        "top_k",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
    )
}


class _GgufGeneration:
    """One request on one ``Llama``: prompt, context check, grammar, and the chunks out."""

    def __init__(self, llama: Any, request: ChatRequest, model: str) -> None:
        self.llama = llama
        self.request = request
        self.model = model
        self.output_tokens = 0
        self.tools = _ToolPlan.of(request, model)

    def _completion_kwargs(self) -> dict[str, Any]:
        llama = self.llama
        request = self.request
        arguments: dict[str, Any] = {
            "messages": _wire_messages(request, llama.chat_format, self.tools),
            "stream": True,
            "max_tokens": request.max_tokens,
            "stop": list(request.stop or []),
            "repeat_penalty": REPEAT_PENALTY,
        }
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        carry_parameters(request, arguments, _GGUF_FIELDS, provider="huggingface (GGUF)")
        if self.tools.grammar is not None:
            arguments["grammar"] = _llama_grammar(self.tools.grammar)
        elif request.response_format:
            arguments["response_format"] = _response_format(request.response_format)
        merge_extra_body(request, arguments)
        capture = _PromptCapture(llama)
        problem = "its handler generated without a single prompt"
        try:
            # Through `create_chat_completion` itself, so every sampling setting forge does not
            # set has llama-cpp-python's default for a chat call, as a direct caller gets it.
            type(llama).create_chat_completion(capture, **arguments)
        except _Captured:
            pass
        except Exception as exc:  # a handler's own checks: assertions, missing tokenizers …
            problem = f"{type(exc).__name__}: {exc}"
        if capture.kwargs is None:
            raise CapabilityMismatch(
                f"huggingface: {self.model}: chat format {llama.chat_format!r} cannot be used "
                f"in process ({problem})",
                provider=_PROVIDER,
                model=self.model,
            )
        return capture.kwargs

    def chunks(self, timeouts: AttemptTimeouts) -> Iterator[ChatChunk]:
        kwargs = self._completion_kwargs()
        prompt_tokens = len(kwargs["prompt"])
        kwargs["max_tokens"] = _context_check(
            prompt_tokens, self.request, self.llama.n_ctx(), self.model
        )
        cached = _kept_prefix(self.llama, kwargs["prompt"])
        finish_reason: str | None = None
        text: list[str] = []
        # "text" streams as it comes; "call" holds a tool call until it is whole. With
        # tool_choice auto the answer starts unconstrained (grammar sampling over a large
        # vocabulary is slow) and is "undecided" until its first visible character: "{" stops
        # it, and the call is generated anew under the tool-call grammar (the prompt is cached).
        mode = "text" if self.tools.grammar is None else "call"
        if self.tools.may_answer_in_text:
            mode = "undecided"
            pieces = self._pieces({**kwargs, "grammar": None}, timeouts)
            try:
                for piece, reason in pieces:
                    finish_reason = reason or finish_reason
                    if mode == "undecided":
                        text.append(piece)
                        opening = "".join(text).lstrip()
                        if not opening:
                            continue
                        mode = "call" if opening.startswith("{") else "text"
                        if mode == "call":
                            break
                        piece = "".join(text)
                    if piece:
                        yield _chunk(self.model, content=piece)
            finally:
                pieces.close()
            mode = "text" if mode == "undecided" else mode
            text = []
        elif mode == "text":
            for piece, reason in self._pieces(kwargs, timeouts):
                finish_reason = reason or finish_reason
                if piece:
                    yield _chunk(self.model, content=piece)
        if mode == "call":
            for piece, reason in self._pieces(kwargs, timeouts):
                finish_reason = reason or finish_reason
                text.append(piece)
        usage = Usage(
            input_tokens=prompt_tokens,
            output_tokens=self.output_tokens,
            cached_input_tokens=cached,
        )
        if mode == "call":
            calls = self.tools.parse("".join(text), finish_reason, self.model)
            yield _chunk(
                self.model,
                deltas=[
                    ToolCallDelta(
                        index=index,
                        id=call.id,
                        name=call.name,
                        arguments=json.dumps(call.arguments),
                    )
                    for index, call in enumerate(calls)
                ],
                finish_reason="tool_calls",
                usage=usage,
            )
        else:
            yield _chunk(self.model, finish_reason=finish_reason or "stop", usage=usage)

    def _pieces(
        self, kwargs: dict[str, Any], timeouts: AttemptTimeouts
    ) -> Generator[tuple[str, str | None], None, None]:
        """``(text, finish_reason)`` per streamed completion chunk, counting tokens."""
        for data in self.llama.create_completion(**kwargs):
            choice = data["choices"][0]
            piece = choice.get("text") or ""
            if piece:
                self.output_tokens += 1
            yield piece, choice.get("finish_reason")
            timeouts.remaining()


def _kept_prefix(llama: Any, prompt: list[int]) -> int:
    """How many leading tokens of ``prompt`` llama-cpp-python will not evaluate again: the
    common prefix with the tokens its context holds from the last call (`Llama.generate`
    keeps those in the KV cache), less one when that is the whole prompt (it replays the last
    token for fresh logits). Reported as the usage's ``cached_input_tokens``."""
    try:
        held = llama.input_ids[: llama.n_tokens].tolist()
    except AttributeError:  # not a llama_cpp.Llama (a test double)
        return 0
    kept = 0
    for have, want in zip(held, prompt, strict=False):
        if have != want:
            break
        kept += 1
    return min(kept, len(prompt) - 1) if prompt else 0


@dataclass(frozen=True)
class _ToolPlan:
    """How a request's tools constrain the answer.

    ``forced`` names the one tool whose arguments are the whole answer (``tool_choice`` naming a
    function); otherwise the answer is ``{"name": ..., "arguments": {...}}`` for one of the
    tools, or (``auto``) free text that does not start with ``{``.
    """

    grammar: str | None
    forced: str | None
    may_answer_in_text: bool
    instructions: str | None

    @classmethod
    def none(cls) -> _ToolPlan:
        return cls(None, None, False, None)

    @classmethod
    def of(cls, request: ChatRequest, model: str) -> _ToolPlan:
        tools = [tool["function"] for tool in request.tools or [] if tool.get("function")]
        choice = request.tool_choice
        if not tools or choice == "none":
            return cls.none()
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            tool = next((tool for tool in tools if tool.get("name") == name), None)
            if tool is None:
                raise BadRequest(
                    f"huggingface: tool_choice names {name!r}, which is not among the tools",
                    provider=_PROVIDER,
                    model=model,
                )
            schema = tool.get("parameters") or {"type": "object"}
            return cls(
                json_schema_to_gbnf(json.dumps(schema)),
                name,
                False,
                _describe_tools([tool])
                + f"\nCall {name} now: answer with its arguments as one JSON object.",
            )
        call_schema = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": tool["name"]},
                        "arguments": tool.get("parameters") or {"type": "object"},
                    },
                    "required": ["name", "arguments"],
                }
                for tool in tools
            ]
        }
        grammar = json_schema_to_gbnf(json.dumps(call_schema))
        if choice == "required":
            ask = 'Answer only with JSON: {"name": <tool name>, "arguments": {...}}.'
            return cls(grammar, None, False, _describe_tools(tools) + "\n" + ask)
        ask = (
            'To call a tool, answer only with JSON: {"name": <tool name>, "arguments": {...}}. '
            "Otherwise answer in plain text."
        )
        return cls(grammar, None, True, _describe_tools(tools) + "\n" + ask)

    def parse(self, text: str, finish_reason: str | None, model: str) -> list[ToolCall]:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            reason = "it was cut off by max_tokens" if finish_reason == "length" else "bad JSON"
            raise BadRequest(
                f"huggingface: {model}: the tool call is incomplete ({reason}); "
                "allow more max_tokens",
                provider=_PROVIDER,
                model=model,
            ) from None
        call_id = "call_" + uuid.uuid4().hex[:24]
        if self.forced is not None:
            return [ToolCall(id=call_id, name=self.forced, arguments=data)]
        return [ToolCall(id=call_id, name=data["name"], arguments=data.get("arguments") or {})]


def _describe_tools(tools: list[dict[str, Any]]) -> str:
    lines = ["You can call these tools:"]
    for tool in tools:
        parameters = json.dumps(tool.get("parameters") or {})
        lines.append(f"- {tool['name']}: {tool.get('description', '')} Arguments: {parameters}")
    return "\n".join(lines)


def _wire_messages(request: ChatRequest, chat_format: str | None, tools: _ToolPlan) -> list[Any]:
    """The conversation as chat-handler messages, with tool turns spelt out as text.

    Generic chat templates have no tool turns: a tool call becomes the assistant's JSON, a
    tool result a user turn naming the tool. Templates with no system turn get the system text
    (and the tool instructions) at the head of the first user turn.
    """
    require_text_only(request.messages, _PROVIDER)
    names = {call.id: call.name for message in request.messages for call in message.tool_calls}
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            system.append(message.text or "")
        elif message.role == "tool":
            name = names.get(message.tool_call_id or "", message.name or "the tool")
            out.append({"role": "user", "content": f"Result of {name}: {message.text or ''}"})
        elif message.role == "assistant" and message.tool_calls:
            calls = [
                {"name": call.name, "arguments": call.arguments} for call in message.tool_calls
            ]
            out.append(
                {"role": "assistant", "content": json.dumps(calls[0] if len(calls) == 1 else calls)}
            )
        else:
            wire = message_to_wire(Message(role=message.role, content=message.text or ""))
            out.append(wire)
    if tools.instructions:
        system.append(tools.instructions)
    if system:
        text = "\n\n".join(part for part in system if part)
        if chat_format in _SYSTEMLESS_FORMATS:
            first_user = next((m for m in out if m["role"] == "user"), None)
            if first_user is None:
                out.insert(0, {"role": "user", "content": text})
            else:
                first_user["content"] = f"{text}\n\n{first_user['content']}"
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


def _llama_grammar(gbnf: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(gbnf, verbose=False)


def _response_format(response_format: dict[str, Any]) -> dict[str, Any]:
    # llama-cpp-python constrains output with a grammar built from a schema given as
    # {"type": "json_object", "schema": ...}; it has no "json_schema" type.
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema}
    return response_format


def _chunk(
    model: str,
    *,
    content: str = "",
    deltas: list[ToolCallDelta] | None = None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> ChatChunk:
    return ChatChunk(
        content=content,
        tool_call_deltas=deltas or [],
        finish_reason=finish_reason,
        usage=usage,
        provider=Provider.HUGGINGFACE,
        model=model,
    )


# -- ONNX generation ------------------------------------------------------------------------------


#: What an ONNX model takes beyond temperature: nothing.
_NO_FIELDS: dict[str, str] = {}


class _OnnxGeneration:
    """One request on one `OnnxCausalLM`: text in, text out (no tools, no grammar)."""

    def __init__(self, engine: Any, request: ChatRequest, model: str) -> None:
        if request.tools or request.response_format:
            raise CapabilityMismatch(
                f"huggingface: {model} is an ONNX model: no tool calls or constrained JSON",
                provider=_PROVIDER,
                model=model,
            )
        self.engine = engine
        self.request = request
        self.model = model
        self.output_tokens = 0
        carry_parameters(request, {}, _NO_FIELDS, provider="huggingface (ONNX)")
        leave_out_extra_body(request, provider="huggingface (ONNX)")

    def chunks(self, timeouts: AttemptTimeouts) -> Iterator[ChatChunk]:
        from forge_core.backends.local.onnx import render_chat

        require_text_only(self.request.messages, _PROVIDER)
        messages = [message_to_wire(message) for message in self.request.messages]
        prompt = self.engine.tokenize(render_chat(messages, self.engine.chat_template))
        window = self.engine.context_window
        max_tokens = (
            _context_check(len(prompt), self.request, window, self.model)
            if window
            else self.request.max_tokens or DEFAULT_MAX_TOKENS
        )
        finish_reason = "stop"
        pieces = self.engine.generate(
            prompt,
            max_tokens=max_tokens,
            temperature=self.request.temperature,
            stop=self.request.stop or (),
        )
        for piece, _token in pieces:
            self.output_tokens += 1
            if piece:
                yield _chunk(self.model, content=piece)
            timeouts.remaining()
        if self.output_tokens >= max_tokens:
            finish_reason = "length"
        usage = Usage(input_tokens=len(prompt), output_tokens=self.output_tokens)
        yield _chunk(self.model, finish_reason=finish_reason, usage=usage)
