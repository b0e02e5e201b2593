"""One transport table (`providers._common.transport_error`): the router and the retry policy
read the timeout phase and "refused" from attributes set here, never from message text."""

from __future__ import annotations

import httpx
import pytest
from forge_core import (
    ChatRequest,
    Embedder,
    FallbackFailed,
    ForgeTimeout,
    Message,
    Provider,
    ProviderUnavailable,
)
from forge_core.backends import OpenAICompatibleClient
from forge_core.backends.common import transport_error
from forge_core.routing.retry import RetryPolicy
from forge_test_support import attempt_timeouts, closed_port_url, config_for

ARGS = {"where": "x at http://h", "provider": "openai", "model": "m"}


def test_a_connect_timeout_carries_its_phase_and_a_read_timeout_is_left_to_the_router() -> None:
    connect = transport_error(httpx.ConnectTimeout("t"), connect_seconds=2, read_seconds=9, **ARGS)
    read = transport_error(httpx.ReadTimeout("t"), connect_seconds=2, read_seconds=9, **ARGS)
    assert isinstance(connect, ForgeTimeout) and connect.phase == "connect"
    assert connect.timeout_seconds == 2
    assert isinstance(read, ForgeTimeout) and read.phase is None and read.timeout_seconds == 9


def test_a_connection_that_cannot_be_made_is_refused_and_never_retried_at_once() -> None:
    error = transport_error(httpx.ConnectError("nope"), connect_seconds=2, read_seconds=9, **ARGS)
    assert isinstance(error, ProviderUnavailable) and error.refused
    assert not RetryPolicy().should_retry(error, has_fallback=False)
    dropped = transport_error(httpx.ReadError("reset"), connect_seconds=2, read_seconds=9, **ARGS)
    assert isinstance(dropped, ProviderUnavailable) and not dropped.refused
    assert RetryPolicy().should_retry(dropped, has_fallback=False)


def test_chat_and_embeddings_both_mark_a_closed_port_refused() -> None:
    url = closed_port_url() + "/v1"
    client = OpenAICompatibleClient(Provider.OPENAI, url, default_model="m", api_key_env=None)
    request = ChatRequest(messages=[Message(role="user", content="hi")])
    with pytest.raises(ProviderUnavailable) as chat:
        client.chat(request, "m", attempt_timeouts(5))
    assert chat.value.refused
    config = config_for({"name": "openai", "base_url": url, "default_model": "m"})
    with pytest.raises(FallbackFailed) as embed:
        Embedder(config, model="openai:m").embed(["hi"])
    assert embed.value.attempts[0].error_kind == chat.value.kind == "unavailable"
