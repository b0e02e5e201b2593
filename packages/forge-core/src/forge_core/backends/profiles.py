"""The one capability table: what each kind of backend, and each model a server describes,
can do.

Every backend answers `ChatBackend.capabilities` from here, the planner routes on those
answers, and `forge_core.Forge.capabilities` reports them; nothing else keeps its own list.
What a backend learns at run time narrows an entry (a parameter an endpoint refused:
``dialects.Lessons``; a model's own listing: `from_ollama_show`, `from_openrouter`), it never
widens one, except where a server reports what a model takes: its report replaces the kind's
guess (`with_reported_modalities`).

| kind | tools | tool_choice | JSON schema / JSON mode | images (by URL) | audio | files (by URL) | reasoning | embeddings | context |
|---|---|---|---|---|---|---|---|---|---|
| openai (and servers in its place) | yes | yes | yes | yes (yes) | `*audio*` models | yes (no) | yes | yes | listing |
| openrouter | yes | yes | yes | its /models (yes) | its /models | its /models (no) | its /models | no | its /models |
| anthropic | yes | yes | yes | yes (yes) | no | PDF, text (PDF) | yes | no | 200k |
| ollama (/v1 or native) | yes | no | yes | its /api/show (no) | no | no | its /api/show, else yes | yes | its /api/show |
| huggingface, GGUF | yes (grammar) | yes | yes (grammar) | no | no | no | no | yes | n_ctx |
| huggingface, ONNX | no | no | no | no | no | no | no | no | unknown |
| an OpenAI-compatible server of unknown kind | no | no | no | no | no | no | no | yes | unknown |

An OpenAI-compatible server in OpenAI's place (or an ``openai`` endpoint) that reports what its
model takes (llama.cpp's ``llama-server``: ``/props`` ``modalities``; LM Studio: ``type: vlm`` in
``/api/v0/models``) has its images and audio from that report, asked the first time a request
with an image or audio reaches it; a server that reports nothing keeps the row's.

Audio goes as base64 data only (OpenAI's ``input_audio``); no provider takes it by URL.

``reasoning``: the model returns its thinking apart and takes forge's reasoning fields. A cloud
kind says yes for every model (a model that does not think answers without thinking); Ollama
says what ``/api/show`` lists (``thinking``), which the planner asks before a request needing
more than text reaches a model (`ModelDescriber`); only when that failed does it say yes, and a
model asked to think that cannot answers a 400 that fails over to the next candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forge_core.types import Capabilities, Provider

__all__ = [
    "ANTHROPIC",
    "CLOUD_CHAT",
    "EMBEDS_OVER_HTTP",
    "GGUF",
    "OLLAMA",
    "ONNX",
    "OPENAI",
    "OPENAI_COMPATIBLE",
    "OPENROUTER",
    "for_openai_model",
    "from_ollama_show",
    "from_openrouter",
    "gguf",
    "with_reported_modalities",
]

#: A cloud chat-completions API: tools, tool_choice, JSON schema and JSON mode, images (as
#: data or by URL).
CLOUD_CHAT = Capabilities(
    tools=True,
    tool_choice=True,
    structured_output=True,
    json_mode=True,
    vision=True,
    reasoning=True,
    image_urls=True,
)
#: OpenAI (and servers configured in its place) also serve ``/embeddings`` and read files
#: given as data (``file`` parts); audio is per model (`for_openai_model`).
OPENAI = CLOUD_CHAT.model_copy(update={"embeddings": True, "files": True})
OPENROUTER = CLOUD_CHAT
#: Anthropic's Messages API; every current Claude model reads 200k tokens, and PDF and
#: plain-text documents (PDFs by URL too).
ANTHROPIC = CLOUD_CHAT.model_copy(
    update={"context_window": 200_000, "files": True, "file_urls": True}
)
#: Ollama before ``/api/show`` described the model: tools, JSON output and thinking for
#: models that support them; no ``tool_choice``.
OLLAMA = Capabilities(
    tools=True,
    tool_choice=False,
    structured_output=True,
    json_mode=True,
    reasoning=True,
    embeddings=True,
)
#: A GGUF run in process by llama-cpp-python: grammar-constrained JSON and tool calls.
GGUF = Capabilities(
    tools=True,
    tool_choice=True,
    structured_output=True,
    json_mode=True,
    streaming=True,
    embeddings=True,
)
#: An ONNX model run in process: plain text.
ONNX = Capabilities(streaming=True, context_window=None)
#: An OpenAI-compatible endpoint built without a profile: embeddings only.
OPENAI_COMPATIBLE = Capabilities(embeddings=True)

#: The kinds whose HTTP endpoint embeds (what a wrapper's ``base_url`` can point at).
EMBEDS_OVER_HTTP = frozenset({Provider.OPENAI, Provider.OLLAMA})


def gguf(context_window: int | None) -> Capabilities:
    """`GGUF` with the context window the model is loaded with (``n_ctx``)."""
    return GGUF.model_copy(update={"context_window": context_window})


def for_openai_model(base: Capabilities, model: str) -> Capabilities:
    """``base`` for one model of an OpenAI-shaped endpoint: only OpenAI's audio models
    (``gpt-4o-audio-preview``, ``gpt-4o-mini-audio-preview`` ...) take ``input_audio``."""
    if "audio" in model and not base.audio:
        return base.model_copy(update={"audio": True})
    return base


def from_ollama_show(
    capabilities: Sequence[str] | None, context_length: int | None
) -> Capabilities:
    """A model's capabilities from Ollama's ``/api/show`` (its ``capabilities`` list and
    context length): ``completion`` means it can answer JSON, ``tools``, ``vision`` and
    ``thinking`` mean what they say; Ollama never honours ``tool_choice``. An answer without
    the list (None: servers older than the field) keeps the `OLLAMA` defaults, with the
    context length."""
    if capabilities is None:
        return OLLAMA.model_copy(update={"context_window": context_length})
    return Capabilities(
        tools="tools" in capabilities,
        tool_choice=False,
        embeddings=True,
        structured_output="completion" in capabilities,
        json_mode="completion" in capabilities,
        vision="vision" in capabilities,
        reasoning="thinking" in capabilities,
        streaming=True,
        context_window=context_length,
    )


def from_openrouter(entry: Mapping[str, Any]) -> Capabilities:
    """A model's capabilities from its OpenRouter ``/models`` entry (its supported
    parameters, input modalities and context length)."""
    supported = set(entry.get("supported_parameters") or [])
    modalities = (entry.get("architecture") or {}).get("input_modalities") or []
    context = entry.get("context_length") or (entry.get("top_provider") or {}).get("context_length")
    return Capabilities(
        tools="tools" in supported,
        tool_choice="tool_choice" in supported,
        structured_output="structured_outputs" in supported,
        json_mode="response_format" in supported,
        vision="image" in modalities,
        reasoning="reasoning" in supported,
        image_urls="image" in modalities,
        audio="audio" in modalities,
        files="file" in modalities,
        streaming=True,
        context_window=int(context) if context else None,
    )


def with_reported_modalities(
    base: Capabilities, *, vision: bool | None, audio: bool | None
) -> Capabilities:
    """``base`` with the images and audio a server reports its model takes (None: not
    reported, ``base``'s kept). Images by URL stay ``base``'s when the model sees (no server
    reports them apart)."""
    update: dict[str, bool] = {}
    if vision is not None:
        update["vision"] = vision
        update["image_urls"] = base.image_urls and vision
    if audio is not None:
        update["audio"] = audio
    return base.model_copy(update=update) if update else base
