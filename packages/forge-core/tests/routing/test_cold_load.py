"""A cold load is not a failure (#15 item 5).

A request to an Ollama host where the model is not loaded (its ``/api/ps`` does not list it)
gets the host's ``load_timeout_seconds`` added to its first-token limit, and a timeout before
the first token of such a request is no circuit-breaker failure: the request fails over, the
circuit stays closed. While it waits, the deployment's health is ``warming``. Every host is a
real socket server on 127.0.0.1; the delays are the fake server's, bounded, and only ever
longer than the first-token limit the test sets.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fake_clock import FakeClock
from fault_server import FaultServer, hang, held, ok, slow
from forge_core import ChatRequest, FallbackFailed, Forge, ForgeConfig, ForgeTimeout
from forge_core.routing.health import HealthStatus
from forge_core.routing.load import RESIDENT_TTL_SECONDS
from forge_core.routing.selector import ProviderSelector

FIRST_TOKEN = 1.0
#: Longer than `FIRST_TOKEN`, well inside `FIRST_TOKEN` + a 10 s load allowance.
LOAD_DELAY = 2.0


def _one_host(
    host: FaultServer, *, load_timeout: float = 10.0, spare: FaultServer | None = None
) -> ForgeConfig:
    providers: dict[str, Any] = {
        "local": {
            "ollama": {
                "hosts": [
                    {
                        "name": "cold-box",
                        "base_url": host.root_url,
                        "load_timeout_seconds": load_timeout,
                    }
                ],
                "preferred_models": ["m"],
                "load_timeout_seconds": 999.0,  # the host's own value wins
            }
        },
        "fallback": {"order": ["ollama"]},
    }
    if spare is not None:
        providers["endpoints"] = [
            {"name": "spare", "kind": "openai", "base_url": spare.base_url, "default_model": "m"}
        ]
        providers["fallback"]["order"].append("spare")
    return ForgeConfig.model_validate(
        {
            "model_preferences": {"local_first": False},
            "providers": providers,
            "routing": {"first_token_timeout_seconds": FIRST_TOKEN, "max_retries": 0},
        }
    )


def _stream(forge: Forge) -> str:
    return "".join(chunk.content for chunk in forge.stream("hi"))


async def _achat(forge: Forge) -> str:
    return str((await forge.achat("hi")).content)


@pytest.mark.parametrize("how", ["chat", "stream", "achat"])
async def test_a_cold_start_gets_the_load_allowance_and_is_answered(how: str) -> None:
    with FaultServer(default=slow(LOAD_DELAY, "loaded and answered"), loaded=[]) as host:
        forge = Forge(_one_host(host), clock=FakeClock())
        if how == "chat":
            text = forge.chat("hi").content
        elif how == "stream":
            text = _stream(forge)
        else:
            text = await _achat(forge)
        circuit = forge.stats()["circuits"][host.root_url]["state"]
    assert text == "loaded and answered"
    assert circuit == "closed"


@pytest.mark.parametrize("listing", [["m"], None], ids=["model loaded", "no /api/ps"])
def test_without_a_known_cold_start_the_same_delay_is_a_first_token_timeout(
    listing: list[str] | None,
) -> None:
    # The control for the test above. A host whose /api/ps does not answer gets no
    # allowance: a stalled host would otherwise hide behind it.
    with FaultServer(default=slow(LOAD_DELAY), loaded=listing) as host:
        forge = Forge(_one_host(host), clock=FakeClock())
        with pytest.raises(FallbackFailed) as caught:
            forge.chat("hi")
        circuit = forge.stats()["circuits"][host.root_url]["state"]
    [attempt] = caught.value.route.attempts
    assert attempt.error_kind == ForgeTimeout.kind and "first-token" in attempt.message
    assert circuit == "open"  # breaker_open_on_timeout


@pytest.mark.parametrize("how", ["chat", "stream"])
def test_a_load_that_times_out_anyway_fails_over_and_leaves_the_circuit_closed(how: str) -> None:
    with (
        FaultServer(default=hang(), loaded=[]) as host,
        FaultServer(default=ok("from the spare")) as spare,
    ):
        forge = Forge(_one_host(host, load_timeout=0.2, spare=spare), clock=FakeClock())
        if how == "chat":
            answer = forge.chat("hi")
            text, route = answer.content, answer.route
        else:
            chunks = list(forge.stream("hi"))
            text, route = "".join(c.content for c in chunks), chunks[-1].route
        stats = forge.stats()
    assert text == "from the spare"
    assert route is not None
    failed = route.attempts[0]
    assert (failed.deployment, failed.error_kind) == ("cold-box", ForgeTimeout.kind)
    assert "to load the model" in failed.message
    assert stats["circuits"][host.root_url]["state"] == "closed"
    assert stats["circuits"][host.root_url]["consecutive_failures"] == 0
    assert stats["deployments"]["cold-box"] == {
        "endpoint": host.root_url,
        "in_flight": 0,
        "loading": [],
        "latency_ms": {},
    }


def test_health_is_warming_while_a_request_waits_for_its_model_to_load() -> None:
    release = threading.Event()
    with (
        FaultServer([held(release, "warm now")], loaded=[]) as host,
        ThreadPoolExecutor(1) as pool,
    ):
        forge = Forge(_one_host(host), clock=FakeClock())
        before = forge.check_health()
        pending = pool.submit(forge.chat, "hi")
        assert host.wait_for_requests(1)
        during = forge.check_health(refresh=True)
        selected = ProviderSelector(forge.router, ["ollama"]).check_health()
        loading = forge.stats()["deployments"]["cold-box"]["loading"]
        release.set()
        answer = pending.result(timeout=10)
        after = forge.check_health()
        candidates, _ = forge.router.plan(ChatRequest(messages=[]))
    assert answer.content == "warm now"
    assert (before, during, after) == (
        {"cold-box": "up"},
        {"cold-box": "warming"},
        {"cold-box": "up"},
    )
    assert selected == {"cold-box": HealthStatus.WARMING}
    assert loading == ["m"]
    # The answer says the model is loaded there now, before the next /api/ps.
    assert [c.loaded for c in candidates] == [True]


def test_a_second_load_timeout_before_the_model_answers_opens_the_circuit() -> None:
    # A host that never finishes loading (a model too big for it, a stuck load) must not make
    # every request wait out the allowance: forgiven once, then a timeout like any other.
    with (
        FaultServer(default=hang(), loaded=[]) as host,
        FaultServer(default=ok("from the spare")) as spare,
    ):
        forge = Forge(_one_host(host, load_timeout=0.2, spare=spare), clock=FakeClock())
        first = forge.chat("hi")
        after_first = forge.stats()["circuits"][host.root_url]["state"]
        second = forge.chat("hi")
        after_second = forge.stats()["circuits"][host.root_url]["state"]
        third = forge.chat("hi")
    assert [a.content for a in (first, second, third)] == ["from the spare"] * 3
    assert (after_first, after_second) == ("closed", "open")  # breaker_open_on_timeout
    assert [a.deployment for a in third.route.attempts] == ["spare"]
    assert third.route.drops[0].reason.startswith("circuit open at")


def test_a_model_that_answered_after_a_load_is_forgiven_again_on_its_next_cold_start() -> None:
    script = [hang(), slow(LOAD_DELAY, "loaded"), hang()]
    with (
        FaultServer(script, default=ok(), loaded=[]) as host,
        FaultServer(default=ok("from the spare")) as spare,
    ):
        config = _one_host(host, load_timeout=LOAD_DELAY + 1.0, spare=spare)
        routing = config.routing.model_copy(update={"first_token_timeout_seconds": 0.3})
        clock = FakeClock()
        forge = Forge(config.model_copy(update={"routing": routing}), clock=clock)
        answers = []
        for _ in range(3):
            answers.append(forge.chat("hi"))
            # The host unloads the model between requests: its /api/ps, asked again once the
            # last answer expired, keeps saying not loaded.
            clock.advance(RESIDENT_TTL_SECONDS + 1.0)
        circuit = forge.stats()["circuits"][host.root_url]["state"]
    assert [a.content for a in answers] == ["from the spare", "loaded", "from the spare"]
    assert circuit == "closed"
