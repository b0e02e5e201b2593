"""Chat and embeddings read an HTTP error status through the one table in
``providers/_common.py`` (`error_class_for_status`): the same status, the same error."""

from __future__ import annotations

import pytest
from fault_server import FaultServer, status
from forge_core import Embedder, FallbackFailed, Forge
from forge_test_support import config_for

STATUSES = [400, 401, 402, 403, 404, 408, 422, 429, 500, 503, 529]


def _config(server: FaultServer):  # type: ignore[no-untyped-def]
    return config_for(
        {"name": "openai", "base_url": server.base_url, "default_model": "m"},
        routing={"max_retries": 0},
    )


@pytest.mark.parametrize("code", STATUSES)
def test_a_status_is_the_same_error_for_chat_and_embeddings(code: int) -> None:
    with FaultServer(default=status(code)) as server:
        with pytest.raises(FallbackFailed) as chat:
            Forge(_config(server)).chat("hi", max_tokens=2)
        with pytest.raises(FallbackFailed) as embed:
            Embedder(_config(server), model="openai:m").embed(["hi"])
    [chat_attempt] = chat.value.attempts
    [embed_attempt] = embed.value.attempts
    assert chat_attempt.error_kind == embed_attempt.error_kind
    assert {path for path in (seen.path for seen in server.requests)} == {
        "/v1/chat/completions",
        "/v1/embeddings",
    }


def test_402_is_an_authentication_failure_in_both() -> None:
    with FaultServer(default=status(402)) as server, pytest.raises(FallbackFailed) as embed:
        Embedder(_config(server), model="openai:m").embed(["hi"])
    assert embed.value.attempts[0].error_kind == "auth"
