"""What counts as evidence against an endpoint: an endpoint's circuit opens on failures of
distinct requests (the retries of one request count once), and never on an error that says the
request itself was bad, so one kind of request cannot take the endpoint from the others.
"""

from __future__ import annotations

from typing import Any

import pytest
from dialect_servers import (
    LLAMA_CPP_PYTHON_JSON_SCHEMA_ERROR,
    SelfDescribingServer,
    refuse,
    response_type,
)
from fake_clock import FakeClock
from fault_server import Fault, FaultServer, forge_on, status
from forge_core import FallbackFailed, Provider

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}


def _circuit(forge: Any, server: FaultServer) -> dict[str, Any]:
    circuit: dict[str, Any] = forge.stats()["circuits"][server.base_url]
    return circuit


def test_the_retries_of_one_request_count_once() -> None:
    with FaultServer(default=status(503)) as server:
        forge = forge_on(server, clock=FakeClock(), max_retries=2, breaker_failure_threshold=3)
        for failed_requests in (1, 2):
            with pytest.raises(FallbackFailed):
                forge.chat("hi")
            assert len(server.requests) == 3 * failed_requests  # every retry was made
            circuit = _circuit(forge, server)
            assert circuit["state"] == "closed"
            assert circuit["consecutive_failures"] == failed_requests
        with pytest.raises(FallbackFailed):
            forge.chat("hi")
        # The third distinct request's first failure opens it, which ends that request too.
        assert _circuit(forge, server)["state"] == "open"
        assert len(server.requests) == 7
        with pytest.raises(FallbackFailed) as caught:
            forge.chat("hi")
        assert len(server.requests) == 7  # the open circuit kept the fourth away
    assert "circuit open" in caught.value.route.drops[0].reason


def test_a_request_answered_on_its_last_retry_is_not_turned_away_by_its_own_retries() -> None:
    with FaultServer([status(503), status(503)]) as server:
        forge = forge_on(server, clock=FakeClock(), max_retries=2, breaker_failure_threshold=2)
        # Counting each attempt, its second 503 would open the circuit and end its retries.
        assert forge.chat("hi").provider is Provider.OPENAI
        assert len(server.requests) == 3
        circuit = _circuit(forge, server)
    assert circuit["state"] == "closed" and circuit["times_opened"] == 0


def _poison_json(fault: Fault) -> Any:
    def judge(body: dict[str, Any]) -> Fault | None:
        return fault if response_type(body) in ("json_schema", "json_object") else None

    return judge


@pytest.mark.parametrize(
    "poison",
    [
        # Refused in every form, as a request-validation error: a bad request, learned.
        refuse(500, LLAMA_CPP_PYTHON_JSON_SCHEMA_ERROR),
        # A server error only this kind of request meets: retried, but each counts once.
        status(500, "CUDA error: out of memory"),
    ],
    ids=["refused", "server-error"],
)
def test_a_poisoned_request_sent_ten_times_among_plain_ones_never_takes_the_endpoint(
    poison: Fault,
) -> None:
    with SelfDescribingServer(refuses=_poison_json(poison)) as server:
        forge = forge_on(server, clock=FakeClock(), max_retries=2, breaker_failure_threshold=3)
        for _ in range(10):
            with pytest.raises(FallbackFailed):
                forge.chat("JSON please", response_format=SCHEMA_FORMAT)
            plain = forge.chat("Say hello.")
            assert plain.provider is Provider.OPENAI
            assert [attempt.ok for attempt in plain.route.attempts] == [True]
        circuit = _circuit(forge, server)
    assert circuit["state"] == "closed" and circuit["times_opened"] == 0
    plain_served = [seen for seen in server.requests if "response_format" not in seen.body]
    assert len(plain_served) == 10


def test_errors_that_say_the_request_was_bad_are_never_evidence() -> None:
    with FaultServer(default=status(400, "messages: must not be empty")) as server:
        forge = forge_on(server, clock=FakeClock(), max_retries=2, breaker_failure_threshold=1)
        for _ in range(5):
            with pytest.raises(FallbackFailed):
                forge.chat("hi")
        assert len(server.requests) == 5  # not retried, and never turned away
    assert _circuit(forge, server)["state"] == "closed"
