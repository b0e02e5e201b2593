"""`Forge`: the one object users (and the framework packages) talk to."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import Any

from forge_core._config import ForgeConfig, apply_overrides, load_config
from forge_core._http import ClientPool
from forge_core._router import Router
from forge_core._types import ChatChunk, ChatRequest, ChatResponse, Message
from forge_core.providers import build_backends

__all__ = ["Forge", "MessagesInput"]

#: What `Forge.chat` accepts as the conversation: a prompt, or messages (objects or dicts).
MessagesInput = str | Sequence[Message | Mapping[str, Any]]


class Forge:
    """A local-first router over every configured provider.

    ``config`` is a `ForgeConfig`, a path to a ``forge.yaml``, or None (``$FORGE_CONFIG``,
    ``./forge.yaml``, the user config dir, then built-in defaults). ``overrides`` has the file's
    shape and wins over the file and the ``FORGE_*`` env vars.

    Example:
        ```python
        forge = Forge()
        answer = forge.chat("Why is the sky blue?", max_tokens=64)
        print(answer.content, answer.provider, answer.route.attempts)
        ```
    """

    def __init__(
        self,
        config: ForgeConfig | str | os.PathLike[str] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        pool: ClientPool | None = None,
    ) -> None:
        if isinstance(config, ForgeConfig):
            self.config = apply_overrides(config, overrides) if overrides else config
        else:
            self.config = load_config(config, overrides=overrides)
        self._router = Router(self.config, build_backends(self.config, pool=pool))

    @property
    def router(self) -> Router:
        """The router (candidate planning and fallback)."""
        return self._router

    def chat(self, messages: MessagesInput | ChatRequest, **params: Any) -> ChatResponse:
        """Route one chat request and return the first successful answer.

        ``params`` are `ChatRequest` fields: ``model``, ``temperature``, ``max_tokens``,
        ``stop``, ``tools``, ``tool_choice``, ``response_format``, ``local_only``.
        """
        return self._router.chat(_request(messages, params))

    async def achat(self, messages: MessagesInput | ChatRequest, **params: Any) -> ChatResponse:
        """Async `chat`."""
        return await self._router.achat(_request(messages, params))

    def stream(
        self, messages: MessagesInput | ChatRequest, **params: Any
    ) -> Generator[ChatChunk, None, None]:
        """Route a request and stream the answer; the last chunk carries usage and the route."""
        return self._router.stream(_request(messages, params))

    def astream(
        self, messages: MessagesInput | ChatRequest, **params: Any
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        return self._router.astream(_request(messages, params))


def _request(messages: MessagesInput | ChatRequest, params: Mapping[str, Any]) -> ChatRequest:
    unknown = sorted(set(params) - set(ChatRequest.model_fields) - {"messages"})
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    if isinstance(messages, ChatRequest):
        return messages.model_copy(update=dict(params)) if params else messages
    if isinstance(messages, str):
        conversation = [Message(role="user", content=messages)]
    else:
        conversation = [
            item if isinstance(item, Message) else Message.model_validate(item) for item in messages
        ]
    return ChatRequest(messages=conversation, **params)
