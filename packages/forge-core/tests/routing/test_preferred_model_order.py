"""``preferred_models`` is an order: each is tried in turn until one is there (#15, item 3).

A 404 ("model not found") means the endpoint is up: the next preferred model is tried on it at
once, the breaker counts no failure, and the planner remembers the miss so later requests go
straight to a model the endpoint has. With ``auto_discovery`` a listing of the pulled models
(``/api/tags``) filters the order without any failed call.
"""

from __future__ import annotations

from fake_clock import FakeClock
from fault_server import FaultServer, ok, status
from forge_core import ChatRequest, Forge, Message, Provider
from forge_test_support import closed_port_url, config_for

PREFERRED = ["llama3.1:8b", "codellama:7b", "mistral:7b"]


def _not_found(model: str) -> object:
    # Ollama's /v1 answer for a model that is not pulled.
    return status(404, f'model "{model}" not found, try pulling it first')


def _forge(server: FaultServer, clock: FakeClock, **ollama: object) -> Forge:
    config = config_for(
        {"name": "ollama", "base_url": server.root_url, "preferred_models": PREFERRED, **ollama},
        routing={"health_ttl_seconds": 30},
    )
    return Forge(config, clock=clock)


def test_each_preferred_model_is_tried_in_order_until_one_is_pulled() -> None:
    clock = FakeClock()
    script = [_not_found("llama3.1:8b"), _not_found("codellama:7b"), ok("mistral here")]
    with FaultServer(script, models=["mistral:7b"]) as server:  # type: ignore[arg-type]
        forge = _forge(server, clock, auto_discovery=False)
        answer = forge.chat("hi")
        asked = [seen.body["model"] for seen in server.requests]
    assert answer.content == "mistral here"
    assert asked == PREFERRED
    assert [(a.model, a.error_kind) for a in answer.route.attempts] == [
        ("llama3.1:8b", "model_not_found"),
        ("codellama:7b", "model_not_found"),
        ("mistral:7b", None),
    ]
    assert clock.sleeps == []
    circuit = forge.stats()["circuits"][server.root_url]
    assert circuit["state"] == "closed" and circuit["consecutive_failures"] == 0


def test_a_model_the_endpoint_lacks_is_skipped_without_a_call_until_the_ttl() -> None:
    clock = FakeClock()
    script = [_not_found("llama3.1:8b"), _not_found("codellama:7b"), ok("first"), ok("second")]
    with FaultServer(script) as server:  # type: ignore[arg-type]
        forge = _forge(server, clock, auto_discovery=False)
        forge.chat("hi")
        second = forge.chat("hi again")
        clock.advance(31)
        after_ttl, _ = forge.router.plan(forge_request())
        asked = [seen.body["model"] for seen in server.requests]
    assert asked == [*PREFERRED, "mistral:7b"]
    assert second.route.attempts[0].model == "mistral:7b"
    assert [d.model for d in second.route.drops] == ["llama3.1:8b", "codellama:7b"]
    assert all("model not found at" in d.reason for d in second.route.drops)
    # After the TTL the endpoint is asked again in the preferred order.
    assert [c.model for c in after_ttl] == PREFERRED


def test_with_auto_discovery_the_pulled_models_filter_the_order() -> None:
    clock = FakeClock()
    with FaultServer([ok("from mistral")], models=["mistral:7b", "phi3:mini"]) as server:
        forge = _forge(server, clock)
        backend = forge.router.backends[Provider.OLLAMA]
        listed = [model.id for model in backend.list_models()]  # type: ignore[attr-defined]
        answer = forge.chat("hi")
        asked = [seen.body["model"] for seen in server.requests]
    assert listed == ["mistral:7b", "phi3:mini"]
    assert asked == ["mistral:7b"]
    assert [(a.model, a.ok) for a in answer.route.attempts] == [("mistral:7b", True)]


def test_a_request_that_names_a_model_gets_that_model_only() -> None:
    clock = FakeClock()
    with FaultServer([_not_found("codellama:7b")]) as server:  # type: ignore[list-item]
        forge = _forge(server, clock, auto_discovery=False)
        candidates, _ = forge.router.plan(forge_request(model="ollama:codellama:7b"))
    assert [c.model for c in candidates] == ["codellama:7b"]


def forge_request(model: str | None = None) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")], model=model)


def test_an_endpoint_that_does_not_answer_is_not_asked_for_its_next_model() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("from the cloud")) as cloud:
        config = config_for(
            {"name": "ollama", "base_url": closed_port_url(), "preferred_models": PREFERRED},
            {"name": "openai", "base_url": cloud.base_url, "default_model": "m"},
        )
        answer = Forge(config, clock=clock).chat("hi")
    assert [(a.provider, a.model) for a in answer.route.attempts] == [
        (Provider.OLLAMA, "llama3.1:8b"),
        (Provider.OPENAI, "m"),
    ]
    skipped = [d.model for d in answer.route.drops if "gave no answer" in d.reason]
    assert skipped == ["codellama:7b", "mistral:7b"]
