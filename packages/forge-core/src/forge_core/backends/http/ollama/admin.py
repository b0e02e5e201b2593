"""Ollama's admin API: `OllamaAdmin`, one per Ollama deployment, shared by both chat clients.

What a server says about its models and what it does with them: the pulled models
(``/api/tags``), version and health (``/api/version``), ``/api/show`` (whose answers feed the
clients' capabilities), the loaded models (``/api/ps``), preloading (an empty
``/api/generate``) and pulling (``/api/pull``); and the models of those answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, Field

from forge_core.backends import profiles
from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, ModelInfo
from forge_core.backends.http.ollama.wire import (
    json_object,
    malformed,
    ollama_headers,
    ollama_status_error,
    stream_failure,
)
from forge_core.backends.http.pool import ClientPool
from forge_core.backends.http.transport import Call, Transport
from forge_core.errors import OllamaUnavailable, ProviderError
from forge_core.types import Capabilities, Provider

__all__ = [
    "SHOW_RETRY_SECONDS",
    "OllamaAdmin",
    "OllamaModel",
    "OllamaModelDetails",
    "OllamaModelInfo",
    "OllamaRunningModel",
    "PullProgress",
    "ollama_admin",
]

_VERSION = Call("GET", "/api/version")
_V1_MODELS = Call("GET", "/v1/models")
_TAGS = Call("GET", "/api/tags")
_PS = Call("GET", "/api/ps")

#: How long a failed ``/api/show`` (refused, 404, timeout, malformed answer) keeps routing on
#: the defaults before the model is asked about again (`OllamaAdmin.described`).
SHOW_RETRY_SECONDS = 60.0

_log = logging.getLogger(__name__)


class OllamaModelDetails(BaseModel):
    """``details`` of a pulled model (``/api/tags``, ``/api/show``, ``/api/ps``)."""

    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class OllamaModel(ModelInfo):
    """A pulled model, as ``/api/tags`` lists it.

    ``name`` is the model's full tag (``llama3.2:latest``), also its ``id``.
    """

    name: str
    size: int = 0
    modified_at: str = ""
    digest: str = ""
    details: OllamaModelDetails = Field(default_factory=OllamaModelDetails)


class OllamaModelInfo(BaseModel):
    """What ``/api/show`` says about one model."""

    name: str
    context_length: int | None = None
    capabilities: list[str] = Field(default_factory=list)
    details: OllamaModelDetails = Field(default_factory=OllamaModelDetails)


class OllamaRunningModel(BaseModel):
    """A model loaded in memory right now (``/api/ps``)."""

    name: str
    size: int = 0
    size_vram: int = 0
    digest: str = ""
    expires_at: str | None = None
    context_length: int | None = None
    details: OllamaModelDetails = Field(default_factory=OllamaModelDetails)


class PullProgress(BaseModel):
    """One ``/api/pull`` progress line; ``total``/``completed`` are bytes of one layer."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class OllamaAdmin:
    """What an Ollama server says about its models, and what it does with them: the pulled
    models, version and health, ``show``, the loaded models, preloading and pulling.

    Shared by `OllamaClient` and `OllamaOpenAIClient` (their ``admin``); ``v1_health`` makes a
    server without the native API healthy when its ``/v1/models`` answers (forge is often
    pointed at other servers with that surface).

    Example:
        ```python
        admin = OllamaAdmin("http://localhost:11434")
        if admin.health_check():
            print([model.name for model in admin.pulled_models()])
        ```
    """

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        keep_alive: str | int | None = None,
        v1_health: bool = False,
        pool: ClientPool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._health_check_timeout = health_check_timeout
        self._keep_alive = keep_alive
        self._v1_health = v1_health
        #: What the last ``/api/show`` of each model said it can do.
        self.model_capabilities: dict[str, Capabilities] = {}
        #: When (``time.monotonic``) ``/api/show`` of each model last failed, for `described`.
        self._show_failed: dict[str, float] = {}
        #: The names the last ``/api/tags`` listed, and when (``time.monotonic``).
        self.pulled: tuple[float, frozenset[str]] | None = None
        #: Whether the server has Ollama's native API: True once a native call answered,
        #: False once ``/api/version`` answered 404 (a server with only the ``/v1`` surface),
        #: None until either.
        self.native_api: bool | None = None
        self.transport = Transport(
            Provider.OLLAMA,
            self.base_url,
            headers=ollama_headers,
            status_error=ollama_status_error,
            unavailable=OllamaUnavailable,
            timeout_seconds=timeout_seconds,
            pool=pool,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def pulled_models(self) -> list[OllamaModel]:
        """The pulled models (``GET /api/tags``); remembered in `pulled`."""
        return self._note_pulled(_tags_from(self.transport.send(_TAGS)))

    async def apulled_models(self) -> list[OllamaModel]:
        """Async `pulled_models`."""
        return self._note_pulled(_tags_from(await self.transport.asend(_TAGS)))

    def _note_pulled(self, models: list[OllamaModel]) -> list[OllamaModel]:
        self.pulled = (time.monotonic(), frozenset(model.id for model in models))
        self.native_api = True
        return models

    def _note_version_status(self, status: int | None) -> None:
        if status == 200:
            self.native_api = True
        elif status == 404:
            self.native_api = False

    def has_native_api(self) -> bool:
        """Whether the server has Ollama's native API (`native_api`), asking ``/api/version``
        once (within the health-check timeout) when nothing has told yet; False when the
        server did not answer."""
        if self.native_api is None:
            self._note_version_status(self.transport.probe(_VERSION, self._health_check_timeout))
        return self.native_api is True

    async def ahas_native_api(self) -> bool:
        """Async `has_native_api`."""
        if self.native_api is None:
            status = await self.transport.aprobe(_VERSION, self._health_check_timeout)
            self._note_version_status(status)
        return self.native_api is True

    def version(self, timeout: float | None = None) -> str:
        """The server's version (``GET /api/version``)."""
        response = self.transport.send(_VERSION, timeout or self._health_check_timeout)
        return str(json_object(response, "").get("version"))

    @property
    def health_check_timeout(self) -> float:
        """Seconds a health probe (and the listing of loaded models for routing) may take."""
        return self._health_check_timeout

    def health_check(self, timeout: float | None = None) -> bool:
        """True when ``/api/version`` (or, with ``v1_health``, ``/v1/models`` on a server
        without the native API) answers 200 within the health-check timeout. Never raises."""
        seconds = timeout or self._health_check_timeout
        status = self.transport.probe(_VERSION, seconds)
        self._note_version_status(status)
        if status == 404 and self._v1_health:
            status = self.transport.probe(_V1_MODELS, seconds)
        return status == 200

    async def ahealth_check(self, timeout: float | None = None) -> bool:
        """Async `health_check`."""
        seconds = timeout or self._health_check_timeout
        status = await self.transport.aprobe(_VERSION, seconds)
        self._note_version_status(status)
        if status == 404 and self._v1_health:
            status = await self.transport.aprobe(_V1_MODELS, seconds)
        return status == 200

    def show(self, model: str, timeout: float | None = None) -> OllamaModelInfo:
        """Context length and capabilities of ``model`` (``POST /api/show``), within
        ``timeout`` seconds (default: the client's timeout); 404 -> `ModelNotFound`. The answer
        feeds the clients' `capabilities`."""
        call = Call("POST", "/api/show", model, {"model": model})
        return self._note_shown(model, self.transport.send(call, timeout))

    async def ashow(self, model: str, timeout: float | None = None) -> OllamaModelInfo:
        """Async `show`."""
        call = Call("POST", "/api/show", model, {"model": model})
        return self._note_shown(model, await self.transport.asend(call, timeout))

    def _note_shown(self, model: str, response: httpx.Response) -> OllamaModelInfo:
        data = json_object(response, model)
        try:
            model_info = data.get("model_info") or {}
            architecture = model_info.get("general.architecture")
            context = model_info.get(f"{architecture}.context_length") if architecture else None
            listed = data.get("capabilities")
            if listed is not None and not (
                isinstance(listed, list) and all(isinstance(name, str) for name in listed)
            ):
                raise TypeError("capabilities is not a list of names")
            info = OllamaModelInfo(
                name=model,
                context_length=int(context) if context else None,
                capabilities=list(listed or []),
                details=OllamaModelDetails.model_validate(data.get("details") or {}),
            )
        except (AttributeError, ValueError, TypeError) as exc:
            raise malformed("malformed /api/show answer", model) from exc
        self.model_capabilities[model] = profiles.from_ollama_show(
            None if listed is None else info.capabilities, info.context_length
        )
        self._show_failed.pop(model, None)
        self.native_api = True
        return info

    # -- what routing learns from /api/show -----------------------------------------------------

    def described(self, model: str) -> bool:
        """Whether asking ``/api/show`` about ``model`` now would tell routing nothing new: it
        answered already, the server is known to lack the native API, or it failed less than
        `SHOW_RETRY_SECONDS` ago. No network call."""
        if model in self.model_capabilities or self.native_api is False:
            return True
        failed = self._show_failed.get(model)
        return failed is not None and time.monotonic() - failed < SHOW_RETRY_SECONDS

    def describe(self, model: str) -> None:
        """`show` ``model`` within the health-check timeout, for routing: a failure (refused,
        404, timeout, malformed answer) leaves the defaults and is not asked again for
        `SHOW_RETRY_SECONDS`. Never raises."""
        try:
            self.show(model, self._health_check_timeout)
        except ProviderError as exc:
            self._show_failure(model, exc)

    async def adescribe(self, model: str) -> None:
        """Async `describe`."""
        try:
            await self.ashow(model, self._health_check_timeout)
        except ProviderError as exc:
            self._show_failure(model, exc)

    def _show_failure(self, model: str, exc: ProviderError) -> None:
        self._show_failed[model] = time.monotonic()
        _log.debug("ollama /api/show of %s at %s failed, defaults kept: %s", model, self, exc)

    def running_models(self, timeout: float | None = None) -> list[OllamaRunningModel]:
        """The models loaded in memory now (``GET /api/ps``), within ``timeout`` seconds
        (default: the client's timeout)."""
        data = json_object(self.transport.send(_PS, timeout), "")
        try:
            return [OllamaRunningModel.model_validate(entry) for entry in data.get("models") or []]
        except ValueError as exc:
            raise malformed("malformed /api/ps answer", "") from exc

    def preload(self, model: str, keep_alive: str | int | None = None) -> None:
        """Load ``model`` into memory without generating (an empty ``/api/generate``) and keep
        it for ``keep_alive`` (default: the configured one, else the server's)."""
        body: dict[str, Any] = {"model": model}
        keep = keep_alive if keep_alive is not None else self._keep_alive
        if keep is not None:
            body["keep_alive"] = keep
        data = json_object(self.transport.send(Call("POST", "/api/generate", model, body)), model)
        if not data.get("done"):
            raise malformed("preload did not finish", model)

    def pull(self, model: str, progress: Callable[[PullProgress], None] | None = None) -> None:
        """Pull ``model``, passing every ``/api/pull`` progress line to ``progress``.

        An error line in the stream (the status stays 200) raises: `ModelNotFound` when the
        registry has no such model, else `ProviderUnavailable`.
        """
        call = Call("POST", "/api/pull", model, {"model": model, "stream": True}, events="ndjson")
        for data in self.transport.items(call):
            if "error" in data:
                raise stream_failure(str(data["error"]), model)
            try:
                line = PullProgress.model_validate(data)
            except ValueError as exc:
                raise malformed("malformed /api/pull line", model) from exc
            if progress is not None:
                progress(line)


def ollama_admin(backend: object) -> OllamaAdmin | None:
    """The `OllamaAdmin` of an Ollama chat client (either API), else None."""
    admin = getattr(backend, "admin", None)
    return admin if isinstance(admin, OllamaAdmin) else None


def _tags_from(response: httpx.Response) -> list[OllamaModel]:
    data = json_object(response, "")
    try:
        models = [
            OllamaModel(
                id=entry["name"],
                provider=Provider.OLLAMA,
                name=entry["name"],
                size=int(entry.get("size") or 0),
                modified_at=str(entry.get("modified_at") or ""),
                digest=str(entry.get("digest") or ""),
                details=OllamaModelDetails.model_validate(entry.get("details") or {}),
                raw=entry,
            )
            for entry in data.get("models") or []
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed("malformed /api/tags answer", "") from exc
    return models
