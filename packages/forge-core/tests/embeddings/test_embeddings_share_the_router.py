"""Embeddings go through the chat router: one endpoint has one breaker, one health entry, one
retry policy and one metrics table, whichever kind of call found it failing."""

from __future__ import annotations

import pytest
from fake_clock import FakeClock
from fault_server import FaultServer, status
from forge_core import Embedder, FallbackFailed, Forge, Provider
from forge_test_support import config_for


def _two_endpoints(broken: FaultServer, healthy: FaultServer, **routing: object) -> Forge:
    return Forge(
        config_for(
            {"name": "ollama", "base_url": broken.root_url},
            {"name": "openai", "base_url": healthy.base_url, "default_model": "m"},
            routing={"max_retries": 0, "breaker_failure_threshold": 2, **routing},
        )
    )


def test_embeddings_skip_an_endpoint_whose_circuit_chat_opened() -> None:
    with FaultServer(default=status(503)) as broken, FaultServer() as healthy:
        forge = _two_endpoints(broken, healthy)
        for _ in range(2):
            assert forge.chat("hi", max_tokens=2).provider is Provider.OPENAI
        chat_calls = len(broken.requests)

        response = forge.embed(["hello"])

    assert chat_calls == 2
    assert len(broken.requests) == chat_calls, "the open circuit kept embeddings away"
    [drop] = response.route.drops
    assert drop.provider is Provider.OLLAMA
    assert drop.reason.startswith("circuit open at")
    assert response.provider is Provider.OPENAI
    assert response.vectors == [[0.6, 0.8]]


def test_an_embedding_failure_counts_towards_the_circuit_chat_uses() -> None:
    with FaultServer(default=status(503)) as broken, FaultServer() as healthy:
        forge = _two_endpoints(broken, healthy)
        for _ in range(2):
            with pytest.raises(FallbackFailed):
                forge.embed(["hello"], fallback=False)
        answer = forge.chat("hi", max_tokens=2)

    assert answer.provider is Provider.OPENAI
    assert answer.route.drops[0].reason.startswith("circuit open at")
    assert [request.path for request in broken.requests] == ["/v1/embeddings"] * 2


def test_embeddings_are_retried_like_chat() -> None:
    with FaultServer([status(503)]) as server:
        forge = Forge(
            config_for(
                {"name": "openai", "base_url": server.base_url, "default_model": "m"},
                routing={"max_retries": 1},
            ),
            clock=FakeClock(),
        )
        response = forge.embed(["hello"], model="openai:e")
    assert response.vectors == [[0.6, 0.8]]
    assert [(a.ok, a.error_kind) for a in response.route.attempts] == [
        (False, "unavailable"),
        (True, None),
    ]
    assert forge.stats()["models"]["openai:e"]["requests"] == 2


def test_an_endpoint_that_embedded_is_up_for_chat_too() -> None:
    with FaultServer() as server:
        forge = Forge(config_for({"name": "ollama", "base_url": server.root_url}))
        forge.embed(["hello"])
        assert forge.check_health() == {"ollama": "up"}
    # The embedding's success is the cached health: no probe (GET /api/version) was sent.
    assert [request.path for request in server.requests] == ["/v1/embeddings"]


def test_embedder_routes_through_the_forge_it_is_given() -> None:
    with FaultServer(default=status(503)) as broken, FaultServer() as healthy:
        forge = _two_endpoints(broken, healthy)
        for _ in range(2):
            forge.chat("hi", max_tokens=2)
        embedder = Embedder(forge=forge)
        _, drops = embedder.plan()
    assert embedder.forge is forge
    assert any(d.provider is Provider.OLLAMA and "circuit open" in d.reason for d in drops)
