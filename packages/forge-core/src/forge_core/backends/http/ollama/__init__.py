"""The ``ollama`` provider: two chat clients over one `OllamaAdmin`.

`OllamaClient` (`native`) chats through Ollama's native ``/api/chat`` (NDJSON streaming, and
the options only the native API has: ``num_ctx``, ``keep_alive``, ``think``) and embeds
through ``/api/embed``; `OllamaOpenAIClient` (`openai`) chats through the OpenAI-compatible
``/v1`` surface (``api: openai``, the default, which other servers with that surface also
answer) and embeds through ``/v1/embeddings``; a request ``/v1`` would cut (it has no
``num_ctx``) or that sets a native-only option goes through its `OllamaClient` instead. Both list, probe, show, preload and pull
through the same `OllamaAdmin` (`admin`: ``/api/tags``, ``/api/version``, ``/api/show``,
``/api/ps``, ``/api/generate``, ``/api/pull``), whose ``/api/show`` answers feed both
clients' capabilities (`admin_backed`). Error bodies are ``{"error": "<message>"}``; statuses
map through the one table, NDJSON error lines through `stream_failure` (`wire`). Wire notes:
docs/providers.md.

Fields of Ollama's documented API that forge does not carry yet: streamed ``thinking`` text (``think``
is sent, the thoughts are dropped), ``logprobs``,
``/api/generate`` as a chat path, ``/api/create``/``copy``/``delete``/``push``, embedding
``truncate``/``dimensions``, and the timing stats of the final chunk. ``tool_choice`` does not
exist in Ollama: it is ignored, except ``"none"``, which leaves the tools out of a native request.
"""

from forge_core.backends.http.ollama.admin import (
    OllamaAdmin,
    OllamaModel,
    OllamaModelDetails,
    OllamaModelInfo,
    OllamaRunningModel,
    PullProgress,
    ollama_admin,
)
from forge_core.backends.http.ollama.admin_backed import DEFAULT_OLLAMA_EMBEDDING_MODEL
from forge_core.backends.http.ollama.native import OllamaClient
from forge_core.backends.http.ollama.openai import OllamaOpenAIClient

__all__ = [
    "DEFAULT_OLLAMA_EMBEDDING_MODEL",
    "OllamaAdmin",
    "OllamaClient",
    "OllamaModel",
    "OllamaModelDetails",
    "OllamaModelInfo",
    "OllamaOpenAIClient",
    "OllamaRunningModel",
    "PullProgress",
    "ollama_admin",
]
