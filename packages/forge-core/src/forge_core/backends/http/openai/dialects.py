"""Dialects of the OpenAI chat-completions format: which one a server speaks, and what a server
taught forge by refusing a request.

A `Dialect` says how one kind of server spells what OpenAI's API spells otherwise (structured
output, the token limit, ``tool_choice``, usage in streams). An endpoint configured without a
``dialect:`` key is identified once, from what the server documents about itself (`detect`,
`adetect`: a few unbilled GETs at the server's root, `PROBES`), or from its host
(`dialect_by_host`). What each server says about itself, and each dialect's differences, are
in docs/providers.md.

A request the server refuses for one of its parameters is a `BadRequest` marked with the
parameters its error names (`rejected`, `refusal_of`, `rejected_parameters`). `Lessons` keeps,
per model, the translations that made a refused request acceptable (`TRANSLATIONS`: tried
once, then sent from the start) and the features the endpoint refused even so, which
`Lessons.capabilities` reports as missing, so the planner sends such requests elsewhere.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx

from forge_core.errors import BadRequest
from forge_core.types import SAMPLING_PARAMETERS, Capabilities

if TYPE_CHECKING:
    from forge_core.backends.base import LessonStore

__all__ = [
    "DIALECTS",
    "OPENAI_PARAMETERS",
    "PROBES",
    "TRANSLATIONS",
    "Dialect",
    "DialectName",
    "Lessons",
    "Probe",
    "adetect",
    "detect",
    "dialect_by_host",
    "dialect_named",
    "is_validation_error",
    "refusal_of",
    "rejected",
    "rejected_parameters",
    "server_root",
]

DialectName = Literal[
    "openai",
    "openai-compatible",
    "openrouter",
    "llama-cpp",
    "llama-server",
    "vllm",
    "ollama",
    "lmstudio",
]

ToolChoiceForm = Literal["openai", "llama-cpp", "named-as-required", "named-as-only-tool"]


@dataclass(frozen=True)
class Dialect:
    """How one kind of server spells the parts of a chat-completions request that differ.

    ``max_tokens_field``: the token-limit field, or None for the client's own
    (``max_completion_tokens`` at api.openai.com, ``max_tokens`` elsewhere).
    ``schema_as_json_object``: a JSON schema goes out as ``{"type": "json_object", "schema":
    ...}``; ``json_object_as_schema``: JSON mode goes out as a ``json_schema`` allowing any
    object. ``tool_choice``: how a tool choice is spelled (`build_body`). ``stream_usage``: the
    server reports usage on a stream when ``stream_options.include_usage`` asks for it.
    ``emulate_unforced_tools``: the server constrains a forced call itself but may ignore tools
    otherwise, so ``auto`` and ``required`` of several are emulated (`_tool_emulation`).
    ``leaves_out``: the parameters of OpenAI's API (`OPENAI_PARAMETERS`) the server does not
    document (or refuses); ``takes``: the other `forge_core.SAMPLING_PARAMETERS` it does take,
    by forge's name -> its own (``repeat_penalty`` -> vLLM's ``repetition_penalty``).
    `build_body` leaves out every parameter in neither, with a debug line. ``reasoning_effort``: where the
    server takes a reasoning effort (``reasoning_effort``, or OpenRouter's nested
    ``reasoning.effort``), None when it documents none; ``reasoning_off``: the effort value
    that turns thinking off, where there is one.
    """

    name: DialectName
    max_tokens_field: str | None = "max_tokens"
    schema_as_json_object: bool = False
    json_object_as_schema: bool = False
    tool_choice: ToolChoiceForm = "openai"
    stream_usage: bool = True
    emulate_unforced_tools: bool = False
    leaves_out: frozenset[str] = frozenset()
    reasoning_effort: Literal["reasoning_effort", "reasoning.effort"] | None = "reasoning_effort"
    reasoning_off: str | None = None
    takes: Mapping[str, str] = field(default_factory=dict)
    #: The sampling parameters it takes, by forge's name -> the server's (`build_body`).
    parameter_fields: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = {name: name for name in OPENAI_PARAMETERS - self.leaves_out}
        object.__setattr__(self, "parameter_fields", {**fields, **self.takes})


#: The `forge_core.SAMPLING_PARAMETERS` OpenAI's chat-completions API has (``top_k`` too, which
#: OpenAI itself refuses but the compatible servers take); the others (``repeat_penalty``,
#: Ollama's ``num_ctx`` and ``keep_alive``) only the dialects that take them send.
OPENAI_PARAMETERS: frozenset[str] = SAMPLING_PARAMETERS - {
    "repeat_penalty",
    "num_ctx",
    "keep_alive",
}


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        # OpenAI itself (it refuses top_k).
        Dialect("openai", max_tokens_field=None, leaves_out=frozenset({"top_k"})),
        # A server that did not say which it is: OpenAI's spelling, every parameter sent.
        Dialect("openai-compatible"),
        Dialect(
            "openrouter",
            leaves_out=frozenset({"service_tier"}),
            reasoning_effort="reasoning.effort",
            takes={"repeat_penalty": "repetition_penalty"},
        ),
        # llama-cpp-python's server.
        Dialect(
            "llama-cpp",
            schema_as_json_object=True,
            tool_choice="llama-cpp",
            stream_usage=False,
            emulate_unforced_tools=True,
            leaves_out=frozenset({"parallel_tool_calls", "service_tier"}),
            reasoning_effort=None,
            takes={"repeat_penalty": "repeat_penalty"},
        ),
        # llama.cpp's llama-server.
        Dialect(
            "llama-server",
            tool_choice="named-as-required",
            leaves_out=frozenset({"user", "service_tier"}),
            reasoning_effort=None,
            takes={"repeat_penalty": "repeat_penalty"},
        ),
        Dialect(
            "vllm",
            leaves_out=frozenset({"service_tier"}),
            takes={"repeat_penalty": "repetition_penalty"},
        ),
        # Ollama's /v1 (top_k goes through the native API's options).
        Dialect(
            "ollama",
            tool_choice="named-as-only-tool",
            leaves_out=frozenset(
                {"top_k", "logit_bias", "user", "service_tier", "parallel_tool_calls"}
            ),
            reasoning_off="none",
        ),
        Dialect(
            "lmstudio",
            json_object_as_schema=True,
            leaves_out=frozenset(
                {"logprobs", "top_logprobs", "user", "service_tier", "parallel_tool_calls"}
            ),
            reasoning_effort=None,
            takes={"repeat_penalty": "repeat_penalty"},
        ),
    )
}

_OPENAI_HOST = "api.openai.com"
_OPENROUTER_HOST = "openrouter.ai"


def dialect_named(name: str) -> Dialect:
    """The dialect called ``name``; ``ValueError`` for a name forge does not know."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}: one of {', '.join(DIALECTS)}") from None


def dialect_by_host(base_url: str) -> Dialect | None:
    """The dialect a base URL's host alone decides (OpenAI, OpenRouter), else None."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == _OPENAI_HOST:
        return DIALECTS["openai"]
    if host == _OPENROUTER_HOST or host.endswith("." + _OPENROUTER_HOST):
        return DIALECTS["openrouter"]
    return None


def server_root(base_url: str) -> str:
    """Where a server's own endpoints live: ``base_url`` without a trailing ``/v1``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


# -- detection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One unbilled GET at the server's root and the dialect its documented answer means."""

    path: str
    dialect: DialectName
    #: True when a 200 answer's JSON body is the shape that server documents.
    recognises: Callable[[Any], bool]


def _is_llama_server_props(data: Any) -> bool:
    # llama.cpp's tools/server/README.md: GET /props has default_generation_settings and
    # total_slots (the --parallel slots).
    return (
        isinstance(data, dict)
        and isinstance(data.get("default_generation_settings"), dict)
        and "total_slots" in data
    )


def _is_llama_cpp_python_openapi(data: Any) -> bool:
    # llama-cpp-python's server is a FastAPI app titled "🦙 llama.cpp Python API"; FastAPI
    # publishes its schema at /openapi.json (and the interactive docs at /docs).
    info = data.get("info") if isinstance(data, dict) else None
    title = info.get("title") if isinstance(info, dict) else None
    return isinstance(title, str) and "llama.cpp Python API" in title


def _is_version_only(data: Any) -> bool:
    # vLLM's GET /version and Ollama's GET /api/version both answer {"version": "<x.y.z>"}.
    return isinstance(data, dict) and set(data) == {"version"} and isinstance(data["version"], str)


def _is_lmstudio_models(data: Any) -> bool:
    # LM Studio's REST API (0.3.6+): GET /api/v0/models lists entries with type, publisher,
    # arch, compatibility_type, quantization, state, max_context_length.
    entries = data.get("data") if isinstance(data, dict) else None
    return (
        isinstance(entries, list)
        and bool(entries)
        and all(
            isinstance(entry, dict) and {"compatibility_type", "state", "type"} <= set(entry)
            for entry in entries
        )
    )


#: Tried in order until one recognises its answer; a server without the path answers 404.
PROBES: tuple[Probe, ...] = (
    Probe("/props", "llama-server", _is_llama_server_props),
    Probe("/openapi.json", "llama-cpp", _is_llama_cpp_python_openapi),
    Probe("/version", "vllm", _is_version_only),
    Probe("/api/version", "ollama", _is_version_only),
    Probe("/api/v0/models", "lmstudio", _is_lmstudio_models),
)

#: Seconds before an endpoint that answered no probe at all (not running) is asked again.
DETECTION_RETRY_SECONDS = 60.0


@dataclass
class _Answer:
    status: int | None
    data: Any = None


def _answer_of(response: httpx.Response) -> _Answer:
    try:
        data = response.json()
    except ValueError:
        data = None
    return _Answer(response.status_code, data)


def _decided(probe: Probe, answer: _Answer) -> bool:
    return answer.status == 200 and probe.recognises(answer.data)


def detect(get: Callable[[str], httpx.Response | None], base_url: str) -> Dialect | None:
    """The dialect of the server at ``base_url``, from its answers to `PROBES`.

    ``get`` fetches an absolute URL (None when nothing answered). A reachable server that
    recognisably answers none is ``openai-compatible``; None when no probe got an answer.
    """
    root = server_root(base_url)
    reached = False
    for probe in PROBES:
        response = get(root + probe.path)
        if response is None:
            continue
        reached = True
        if _decided(probe, _answer_of(response)):
            return DIALECTS[probe.dialect]
    return DIALECTS["openai-compatible"] if reached else None


async def adetect(
    get: Callable[[str], Awaitable[httpx.Response | None]], base_url: str
) -> Dialect | None:
    """Async `detect`."""
    root = server_root(base_url)
    reached = False
    for probe in PROBES:
        response = await get(root + probe.path)
        if response is None:
            continue
        reached = True
        if _decided(probe, _answer_of(response)):
            return DIALECTS[probe.dialect]
    return DIALECTS["openai-compatible"] if reached else None


class DetectedDialect:
    """The dialect of one endpoint: fixed, or detected once and kept (thread-safe).

    An endpoint that answered no probe is asked again after `DETECTION_RETRY_SECONDS`; until
    then it is treated as ``openai-compatible``.
    """

    def __init__(self, fixed: Dialect | None) -> None:
        self._dialect = fixed
        self._lock = threading.Lock()
        self._retry_at = 0.0

    @property
    def known(self) -> Dialect | None:
        """The dialect if fixed or already detected, else None (never a network call)."""
        return self._dialect

    def needs_detection(self) -> bool:
        """Whether a request should probe the server now."""
        with self._lock:
            return self._dialect is None and time.monotonic() >= self._retry_at

    def settle(self, detected: Dialect | None) -> Dialect:
        """Keep ``detected`` (None: the server was unreachable) and return the dialect to use."""
        with self._lock:
            if self._dialect is not None:
                return self._dialect
            if detected is None:
                self._retry_at = time.monotonic() + DETECTION_RETRY_SECONDS
                return DIALECTS["openai-compatible"]
            self._dialect = detected
            return detected

    def current(self) -> Dialect:
        """The dialect to use without detecting (``openai-compatible`` until one is known)."""
        return self._dialect or DIALECTS["openai-compatible"]


# -- rejections -----------------------------------------------------------------------------


_REJECTED = "_forge_rejected_parameters"


def rejected(error: BadRequest, parameters: frozenset[str]) -> BadRequest:
    """``error``, marked as the server's refusal of this request (HTTP 400 or 422, or a 500
    whose body is a request-validation error) naming ``parameters``.

    It stays a plain `BadRequest`: not retried as is, and no evidence against the endpoint (the
    request, not the server, was at fault).
    """
    setattr(error, _REJECTED, parameters)
    return error


def refusal_of(error: BaseException) -> frozenset[str] | None:
    """The request fields a refusal names, or None when ``error`` is not a refusal."""
    parameters = getattr(error, _REJECTED, None)
    return parameters if isinstance(parameters, frozenset) else None


#: Request fields a refusal may name that forge knows what to do about.
_KNOWN_PARAMETERS = (
    "response_format",
    "tools",
    "tool_choice",
    "stream_options",
    "max_completion_tokens",
)
_VALIDATION = re.compile(r"\b\d+ validation errors?\b")


def is_validation_error(text: str) -> bool:
    """Whether an error body's text is a request-validation error (pydantic's or FastAPI's
    ``N validation error(s)``, as llama-cpp-python's server sends them with a 500)."""
    return bool(_VALIDATION.search(text))


def rejected_parameters(data: Any, text: str, body: Mapping[str, Any]) -> frozenset[str]:
    """The fields of ``body`` an error answer names: OpenAI's ``error.param``, else the
    field names (or, for ``response_format``, its type) in the error's text."""
    sent = [name for name in _KNOWN_PARAMETERS if name in body]
    named: set[str] = set()
    error = data.get("error") if isinstance(data, dict) else None
    param = error.get("param") if isinstance(error, dict) else None
    if isinstance(param, str) and param:
        head = re.split(r"[.\[]", param, maxsplit=1)[0]
        if head in sent:
            named.add(head)
    for name in sent:
        if re.search(rf"\b{re.escape(name)}\b", text):
            named.add(name)
    response_type = (body.get("response_format") or {}).get("type")
    if response_type in ("json_schema", "json_object") and re.search(rf"\b{response_type}\b", text):
        named.add("response_format")
    return frozenset(named)


# -- what refusals teach --------------------------------------------------------------------

Body = dict[str, Any]


@dataclass(frozen=True)
class Translation:
    """A way to say a refused parameter otherwise: applies when the refusal names
    ``parameter`` and ``applies`` holds for the body; ``apply`` returns the translated body."""

    name: str
    parameter: str
    applies: Callable[[Body], bool]
    apply: Callable[[Body], Body]


def _response_type(body: Body) -> Any:
    return (body.get("response_format") or {}).get("type")


def _schema_as_json_object(body: Body) -> Body:
    schema = (body["response_format"].get("json_schema") or {}).get("schema")
    fmt: dict[str, Any] = {"type": "json_object"}
    if schema:
        fmt["schema"] = schema
    return {**body, "response_format": fmt}


def _json_object_as_schema(body: Body) -> Body:
    fmt = {"type": "json_schema", "json_schema": {"name": "json_object", "schema": any_object()}}
    return {**body, "response_format": fmt}


def _without_stream_options(body: Body) -> Body:
    return {key: value for key, value in body.items() if key != "stream_options"}


def _max_tokens(body: Body) -> Body:
    out = {key: value for key, value in body.items() if key != "max_completion_tokens"}
    out["max_tokens"] = body["max_completion_tokens"]
    return out


def _required_as_named(body: Body) -> Body:
    name = body["tools"][0]["function"]["name"]
    return {**body, "tool_choice": {"type": "function", "function": {"name": name}}}


def any_object() -> dict[str, Any]:
    """The JSON schema of JSON mode: any object."""
    return {"type": "object"}


#: Every translation forge knows, by name; each is tried at most once per request.
TRANSLATIONS: dict[str, Translation] = {
    translation.name: translation
    for translation in (
        Translation(
            "json_schema as json_object + schema",
            "response_format",
            lambda body: _response_type(body) == "json_schema",
            _schema_as_json_object,
        ),
        Translation(
            "json_object as json_schema",
            "response_format",
            lambda body: (
                _response_type(body) == "json_object"
                and "schema" not in body.get("response_format", {})
            ),
            _json_object_as_schema,
        ),
        Translation(
            "stream without stream_options",
            "stream_options",
            lambda body: "stream_options" in body,
            _without_stream_options,
        ),
        Translation(
            "max_completion_tokens as max_tokens",
            "max_completion_tokens",
            lambda body: "max_completion_tokens" in body,
            _max_tokens,
        ),
        Translation(
            "required as the one tool named",
            "tool_choice",
            lambda body: (
                body.get("tool_choice") == "required" and len(body.get("tools") or []) == 1
            ),
            _required_as_named,
        ),
    )
}


def _feature_of(parameter: str, body: Body) -> str | None:
    """The `Capabilities` field a refused ``parameter`` of ``body`` stands for, if any."""
    if parameter == "response_format":
        kind = _response_type(body)
        if kind == "json_schema" or (kind == "json_object" and "schema" in body["response_format"]):
            return "structured_output"
        return "json_mode" if kind == "json_object" else None
    if parameter in ("tools", "tool_choice"):
        return parameter
    return None


@dataclass
class _Learned:
    translations: list[str] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)


class Lessons:
    """What one endpoint's refusals taught forge, per model; safe from threads and tasks.

    `translated` applies what was learned to a new request body; `retry_body` picks the one
    translation to try after a refusal (or records the refused feature when there is none);
    `succeeded` / `refused_again` record how the retry went; `capabilities` lowers a model's
    capabilities by what it refused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_model: dict[str, _Learned] = {}
        self._shared: LessonStore | None = None
        self._endpoint = ""

    def share(self, shared: LessonStore, endpoint: str) -> None:
        """Learn from, and teach, every process on ``shared`` (``routing.state: redis``)."""
        self._shared = shared
        self._endpoint = endpoint

    def translated(self, model: str, body: Body) -> Body:
        """``body`` with every translation learned for ``model`` that applies to it."""
        with self._lock:
            names = list(self._by_model[model].translations) if model in self._by_model else []
        if self._shared is not None:
            fleet, _ = self._shared.lessons(self._endpoint, model)
            names += sorted(fleet.difference(names))
        for name in names:
            if name not in TRANSLATIONS:
                continue  # taught by a newer forge in the fleet
            translation = TRANSLATIONS[name]
            if translation.applies(body):
                body = translation.apply(body)
        return body

    def retry_body(
        self, model: str, body: Body, parameters: frozenset[str]
    ) -> tuple[str, Body] | None:
        """The translation to try once after a refusal naming ``parameters``, and the body it
        gives; None when none applies, after recording the refused features as unsupported."""
        for translation in TRANSLATIONS.values():
            if translation.parameter in parameters and translation.applies(body):
                return translation.name, translation.apply(copy.deepcopy(body))
        self._unsupported(model, body, parameters)
        return None

    def succeeded(self, model: str, translation: str) -> None:
        """The body translated by ``translation`` was accepted: send it that way from now on."""
        with self._lock:
            learned = self._by_model.setdefault(model, _Learned())
            if translation not in learned.translations:
                learned.translations.append(translation)
        if self._shared is not None:
            self._shared.save_lesson(self._endpoint, model, "translation", translation)

    def refused_again(self, model: str, body: Body, parameters: frozenset[str]) -> None:
        """The translated body was refused too: what the first refusal named is unsupported."""
        self._unsupported(model, body, parameters)

    def capabilities(self, model: str, base: Capabilities) -> Capabilities:
        """``base`` without what ``model`` refused here."""
        with self._lock:
            learned = self._by_model.get(model)
            unsupported = set(learned.unsupported) if learned else set()
        if self._shared is not None:
            _, fleet = self._shared.lessons(self._endpoint, model)
            unsupported |= fleet & set(Capabilities.model_fields)
        if not unsupported:
            return base
        return base.model_copy(update=dict.fromkeys(unsupported, False))

    def _unsupported(self, model: str, body: Body, parameters: frozenset[str]) -> None:
        features = {f for p in parameters if (f := _feature_of(p, body)) is not None}
        if features:
            with self._lock:
                self._by_model.setdefault(model, _Learned()).unsupported.update(features)
            if self._shared is not None:
                for feature in sorted(features):
                    self._shared.save_lesson(self._endpoint, model, "unsupported", feature)


def error_text(response: httpx.Response) -> str:
    """The whole text of an error answer (for finding what it names; never shown as is)."""
    try:
        return json.dumps(response.json())
    except ValueError:
        return response.text
