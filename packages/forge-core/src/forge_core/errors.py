"""forge's exceptions, one hierarchy.

```
ForgeError
├── ConfigError                 a forge.yaml / env / kwargs value is wrong
├── ProviderError               one provider call failed
│   ├── ProviderUnavailable     refused, unreachable, 5xx, overloaded
│   │   ├── OllamaUnavailable
│   │   ├── MalformedResponse   a body or stream that does not parse
│   │   └── WorkerCrashed       a local model's worker process died (carries the signal)
│   ├── ModelNotFound           the model is not served / not pulled / not on disk
│   ├── ForgeTimeout            connect, first-token or total timeout
│   ├── RateLimited             429 (carries retry_after)
│   ├── AuthenticationFailed    401/403, or the API key env var is unset
│   ├── BadRequest              400: the request itself is wrong
│   ├── CapabilityMismatch      the candidate cannot do what the request needs
│   └── MissingDependency       an optional extra is not installed
├── FallbackFailed              every candidate failed or was dropped (carries the route)
│   └── NoCapableCandidate      none could take what the request holds (also a CapabilityMismatch)
└── StreamInterrupted           a stream died after tokens were yielded (carries the partial text)
```

Lower-level errors (httpx, llama-cpp-python) are translated into these in exactly one place
per backend, always with `raise ... from exc`. No message carries a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forge_core.types import Attempt, RouteTrail

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "CapabilityMismatch",
    "ConfigError",
    "FallbackFailed",
    "ForgeError",
    "ForgeTimeout",
    "MalformedResponse",
    "MissingDependency",
    "ModelNotFound",
    "NoCapableCandidate",
    "OllamaUnavailable",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "StreamInterrupted",
    "WorkerCrashed",
]


class ForgeError(Exception):
    """Base class of every error forge raises."""


class ConfigError(ForgeError):
    """A configuration value is invalid.

    The message names the file (when there is one), the key path, the bad value and what was
    expected, e.g. ``forge.yaml: providers.local.ollama.timeout_seconds: expected a number,
    got 'soon'``.
    """

    def __init__(self, message: str, *, path: str | None = None, key_path: str | None = None):
        super().__init__(message)
        self.path = path
        self.key_path = key_path


class ProviderError(ForgeError):
    """A call to one provider failed.

    ``kind`` is a short stable name for the failure, used in route trails and metrics: one of
    ``unavailable``, ``malformed_response``, ``crashed``, ``model_not_found``, ``timeout``,
    ``rate_limited``, ``auth``, ``bad_request``, ``capability``, ``missing_dependency`` (the
    subclasses' own), or ``provider_error`` for this base class.
    """

    kind = "provider_error"
    #: Whether the same candidate may be tried again after this error.
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status_code = status_code


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or answered with a server error.

    ``refused`` is True when no connection could be made at all (nothing listens there): the
    circuit breaker, not a backoff, waits for such an endpoint to come back.
    """

    kind = "unavailable"
    retryable = True

    def __init__(self, message: str, *, refused: bool = False, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.refused = refused


class OllamaUnavailable(ProviderUnavailable):
    """The Ollama server is not running or not reachable at its base URL."""


class MalformedResponse(ProviderUnavailable):
    """The provider answered with a body or stream that is not what its format says."""

    kind = "malformed_response"


class WorkerCrashed(ProviderUnavailable):
    """A local model's worker process died (``isolation: process``): a signal such as
    ``SIGSEGV`` or ``SIGABRT`` from native code, or ``SIGKILL`` from the OOM killer.

    ``signal`` names how it ended (``SIGSEGV``, or ``exit code 1``); ``returncode`` is the
    process's. The application lives on, and the next request starts a fresh worker.
    """

    kind = "crashed"

    def __init__(
        self,
        message: str,
        *,
        signal: str | None = None,
        returncode: int | None = None,
        **kwargs: object,
    ):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.signal = signal
        self.returncode = returncode


class ModelNotFound(ProviderError):
    """The requested model is not served, not pulled, or not found on disk."""

    kind = "model_not_found"


class ForgeTimeout(ProviderError):
    """A connect, first-token, idle or total deadline passed.

    ``phase`` says which one (``connect``, ``first_token``, ``idle``, ``total``) when known.
    """

    kind = "timeout"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        timeout_seconds: float | None = None,
        phase: str | None = None,
        **kwargs: object,
    ):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.timeout_seconds = timeout_seconds
        self.phase = phase


class RateLimited(ProviderError):
    """The provider answered 429 (or 529 overloaded); ``retry_after`` is in seconds."""

    kind = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AuthenticationFailed(ProviderError):
    """The API key is missing or was rejected (401/403)."""

    kind = "auth"


class BadRequest(ProviderError):
    """The provider rejected the request itself (400)."""

    kind = "bad_request"


class CapabilityMismatch(ProviderError):
    """The candidate cannot serve this request (tools, structured output, context size …)."""

    kind = "capability"


class MissingDependency(ProviderError):
    """An optional dependency is needed; the message names the pip extra to install."""

    kind = "missing_dependency"


class FallbackFailed(ForgeError):
    """Every candidate failed or was dropped.

    ``route`` holds every attempt and every drop; the message lists them one per line.
    """

    def __init__(self, message: str, *, route: RouteTrail):
        super().__init__(message)
        self.route = route

    @property
    def attempts(self) -> list[Attempt]:
        """The attempts made, in order."""
        return list(self.route.attempts)


class NoCapableCandidate(FallbackFailed, CapabilityMismatch):
    """No deployment was tried because none can take what the request needs (``needs``:
    "images", "images by URL", "audio", "files", "tool calling" ...). A `FallbackFailed` with
    the route (every drop and its reason) and a `CapabilityMismatch` naming the needs."""

    def __init__(self, message: str, *, route: RouteTrail, needs: list[str]):
        FallbackFailed.__init__(self, message, route=route)
        self.provider: str | None = None
        self.model: str | None = None
        self.status_code: int | None = None
        self.needs = needs


class StreamInterrupted(ForgeError):
    """A stream failed after content had been yielded; ``partial`` is the text received."""

    def __init__(
        self,
        message: str,
        *,
        partial: str,
        provider: str,
        model: str,
        cause: BaseException | None = None,
        route: RouteTrail | None = None,
    ):
        super().__init__(message)
        self.route = route
        self.partial = partial
        self.provider = provider
        self.model = model
        self.cause = cause
