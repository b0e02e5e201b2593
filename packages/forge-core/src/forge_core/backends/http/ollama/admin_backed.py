"""What both Ollama chat clients take from their `OllamaAdmin` (`AdminBackedClient`).

Capabilities (from ``/api/show``, else the ``OLLAMA`` entry of the capability table), the model order
(``preferred_models``, filtered by the last ``/api/tags`` with ``auto_discovery``), listing,
the loaded models and health; and the model that embeds when a request names none.
"""

from __future__ import annotations

import time

from forge_core.backends import profiles
from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, ModelInfo
from forge_core.backends.http.ollama.admin import OllamaAdmin
from forge_core.types import Capabilities, ModelRequirements

__all__ = ["DEFAULT_OLLAMA_EMBEDDING_MODEL", "OLLAMA_DEFAULT_NUM_CTX", "AdminBackedClient"]

#: The model Ollama embeds with when the request names none.
DEFAULT_OLLAMA_EMBEDDING_MODEL = "nomic-embed-text"
#: The context Ollama loads a model with when a request sets no ``num_ctx`` (current versions;
#: ``OLLAMA_CONTEXT_LENGTH`` on the server changes it). A longer prompt is cut, silently.
OLLAMA_DEFAULT_NUM_CTX = 4096


class AdminBackedClient:
    """Capabilities, model order, listing and health of an Ollama chat client, from its
    `OllamaAdmin` and the configured ``preferred_models``."""

    admin: OllamaAdmin
    _default_model: str
    #: ``preferred_models``, best first; empty: the default model alone.
    preferred_models: tuple[str, ...] = ()
    #: ``auto_discovery``: filter ``preferred_models`` by the last listing of pulled models.
    auto_discovery: bool = True
    #: How long a listing of pulled models is trusted for the order.
    discovery_ttl_seconds: float = 300.0
    #: The context a request runs with unless forge sizes one (the configured ``num_ctx``,
    #: else Ollama's default): past half of it, the model's own length matters (`should_describe`).
    default_context: int = OLLAMA_DEFAULT_NUM_CTX

    def model_order(self) -> tuple[str, ...]:
        """``preferred_models`` in order, less those the last fresh ``/api/tags`` (with
        ``auto_discovery``) did not list; all of them when there is no fresh listing, so a
        missing one costs a 404 (the endpoint is up: the next model is tried, and the planner
        remembers it). No network call."""
        order = self.preferred_models or (self._default_model,)
        pulled = self.admin.pulled
        if not self.auto_discovery or pulled is None:
            return order
        listed_at, names = pulled
        if time.monotonic() - listed_at > self.discovery_ttl_seconds:
            return order
        return tuple(model for model in order if _is_pulled(model, names))

    def capabilities(self, model: str) -> Capabilities:
        """From the last ``/api/show`` of ``model`` when there was one, else the defaults."""
        return self.admin.model_capabilities.get(model, profiles.OLLAMA)

    # -- ModelDescriber: what routing asks /api/show ------------------------------------------

    def should_describe(self, model: str, needs: ModelRequirements) -> bool:
        """Whether ``needs`` asks for what the defaults may get wrong about ``model`` (images,
        audio, files, reasoning, tools, JSON output, or a context past half of
        `default_context`, where sizing ``num_ctx`` starts to need the model's length) and
        ``/api/show`` has not told yet (`OllamaAdmin.described`). No network call."""
        return (
            needs.vision
            or needs.image_urls
            or needs.audio
            or needs.files
            or needs.file_urls
            or needs.reasoning
            or needs.tools
            or needs.structured_output
            or needs.json_mode
            or needs.min_context_tokens > self.default_context // 2
        ) and not self.admin.described(model)

    def describe(self, model: str) -> None:
        """`OllamaAdmin.describe`: ``/api/show`` within the health-check timeout; never raises."""
        self.admin.describe(model)

    async def adescribe(self, model: str) -> None:
        """Async `describe`."""
        await self.admin.adescribe(model)

    def list_models(self) -> list[ModelInfo]:
        """The pulled models (``GET /api/tags``), as `OllamaModel`."""
        return list(self.admin.pulled_models())

    async def alist_models(self) -> list[ModelInfo]:
        """Async `list_models`."""
        return list(await self.admin.apulled_models())

    def loaded_models(self, timeout: float | None = None) -> list[str]:
        """The models the server has loaded now (``GET /api/ps``)."""
        bound = timeout if timeout is not None else self.admin.health_check_timeout
        return [model.name for model in self.admin.running_models(bound)]

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """`OllamaAdmin.health_check`."""
        return self.admin.health_check(timeout)

    async def ahealth(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """Async `health`."""
        return await self.admin.ahealth_check(timeout)


def _is_pulled(model: str, names: frozenset[str]) -> bool:
    """Whether ``model`` is among the pulled ``names`` (a bare name means its ``latest`` tag)."""
    return model in names or (":" not in model and f"{model}:latest" in names)
