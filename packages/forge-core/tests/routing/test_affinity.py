"""Prefix affinity among balanced deployments (#32, ``routing.affinity``).

A conversation goes back to the deployment that served its previous turn (it holds the
prompt's KV cache there); a new conversation with the same system prompt goes where that is
warm; load still wins; a conversation key pins by rendezvous hashing, the same in every
process. Every deployment is a `ScriptedBackend` under one order entry (``openai``: all the
OpenAI-compatible endpoints), so the route says which one served; in-flight load is set with
the `DeploymentLoad` API.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fake_clock import FakeClock
from forge_core import (
    ChatRequest,
    Forge,
    ForgeConfig,
    Message,
    ProviderUnavailable,
    prometheus_text,
)
from forge_core.routing.affinity import (
    AffinityIndex,
    RequestAffinity,
    prefix_digests,
    rendezvous,
)
from forge_core.routing.load import Busy
from forge_core.testing import ScriptedBackend
from forge_test_support import balanced_endpoints

SYSTEM = "You are a careful assistant. " * 40


def _forge(count: int = 2, *replies: Any, **routing: Any) -> tuple[Forge, list[ScriptedBackend]]:
    backends = [
        ScriptedBackend(*(replies or (f"from ep{i}",)), endpoint=f"http://ep{i}.test/v1")
        for i in range(count)
    ]
    forge = Forge(
        balanced_endpoints(count, **routing),
        backends={f"ep{i}": backend for i, backend in enumerate(backends)},
        clock=FakeClock(),
        env={},
    )
    return forge, backends


def _conversation(topic: str, turns: int, system: str = SYSTEM) -> list[Message]:
    messages = [Message(role="system", content=system)]
    for turn in range(turns):
        messages.append(Message(role="user", content=f"{topic}: question {turn}"))
        if turn < turns - 1:
            messages.append(Message(role="assistant", content=f"{topic}: answer {turn}"))
    return messages


def _busy(forge: Forge, endpoint: str, count: int) -> list[Busy]:
    return [forge.router.load.started(endpoint, "scripted") for _ in range(count)]


def test_the_next_turns_of_two_conversations_go_back_to_their_first_servers() -> None:
    forge, _ = _forge(2)
    systems = {"cats": "You know cats. " * 40, "dogs": "You know dogs. " * 40}
    first = {
        topic: forge.chat(_conversation(topic, 1, system)).route.deployment
        for topic, system in systems.items()
    }
    # Equal hosts take turns: the two conversations start on the two hosts.
    assert sorted(first.values()) == ["ep0", "ep1"]
    for turns in range(2, 6):
        for topic in ("dogs", "cats"):
            route = forge.chat(_conversation(topic, turns, systems[topic])).route
            assert route.deployment == first[topic]
            # The previous request was the first 2 * turns - 2 messages, the system prompt one.
            assert route.attempts[-1].affinity == f"prefix:{2 * turns - 2}"
    assert forge.stats()["affinity"] == {"hits": 8, "misses": 2, "load_overrides": 0}
    text = prometheus_text(forge.stats())
    assert 'forge_affinity_requests_total{outcome="hits"} 8' in text


def test_a_new_conversation_with_the_same_system_prompt_goes_where_it_is_warm() -> None:
    forge, _ = _forge(3)
    warm = forge.chat(_conversation("cats", 1)).route.deployment
    other = forge.chat(_conversation("dogs", 1)).route
    assert other.deployment == warm
    assert other.attempts[-1].affinity == "prefix:1"


def _measured(forge: Forge, seconds: dict[str, float]) -> None:
    """Give each host a recent latency (one first-token sample each)."""
    for host, value in seconds.items():
        forge.router.load.started(f"http://{host}.test/v1", "scripted").ended(value)


def test_new_conversations_spread_over_equally_fast_hosts_and_then_stay() -> None:
    """A cold prompt's time differs between equal servers by more than one latency band (45 s
    and 40 s here): new conversations still fill the two hosts evenly instead of piling on the
    one that looks faster, and each conversation's next turn goes back to its host."""
    forge, _ = _forge(2)
    _measured(forge, {"ep0": 45.0, "ep1": 40.0})
    topics = ["cats", "owls", "tea", "maps"]
    systems = {topic: f"You know {topic}. " * 40 for topic in topics}
    routes = {topic: forge.chat(_conversation(topic, 1, systems[topic])).route for topic in topics}
    homes = {topic: route.deployment for topic, route in routes.items()}
    assert sorted(homes.values()) == ["ep0", "ep0", "ep1", "ep1"]
    assert {route.attempts[-1].affinity for route in routes.values()} == {"spread"}
    for topic in topics:
        route = forge.chat(_conversation(topic, 2, systems[topic])).route
        assert route.deployment == homes[topic]
        assert route.attempts[-1].affinity == "prefix:2"


def test_a_new_conversation_goes_to_the_least_busy_host_however_full_its_cache() -> None:
    forge, _ = _forge(2)
    for topic in ("cats", "owls", "tea"):
        forge.chat(_conversation(topic, 1, f"You know {topic}. " * 40), model="ep1:scripted")
    held = _busy(forge, "http://ep0.test/v1", 1)
    route = forge.chat(_conversation("maps", 1, "You know maps. " * 40)).route
    for busy in held:
        busy.ended()
    # ep0 holds nothing but has an attempt in flight: the fuller, idle ep1 takes it.
    assert (route.deployment, route.attempts[-1].affinity) == ("ep1", "load")


def test_a_host_more_than_twice_as_fast_keeps_taking_new_conversations() -> None:
    forge, _ = _forge(2)
    _measured(forge, {"ep0": 5.0, "ep1": 0.1})
    routes = [
        forge.chat(_conversation(topic, 1, f"You know {topic}. " * 40)).route
        for topic in ("cats", "owls", "tea")
    ]
    assert [(route.deployment, route.attempts[-1].affinity) for route in routes] == [
        ("ep1", "load")
    ] * 3


def test_an_overloaded_host_is_never_held_and_the_conversation_moves_with_the_request() -> None:
    forge, _ = _forge(2, affinity_imbalance=2)
    home = forge.chat(_conversation("cats", 1)).route.deployment
    away = "ep1" if home == "ep0" else "ep0"
    home_url = f"http://{home}.test/v1"
    # Two above the other host: still within the threshold, the conversation stays.
    held = _busy(forge, home_url, 2)
    assert forge.chat(_conversation("cats", 2)).route.deployment == home
    # Three above: passed over; the request and its prefix move to the other host.
    held += _busy(forge, home_url, 1)
    moved = forge.chat(_conversation("cats", 3)).route
    assert moved.deployment == away
    assert moved.attempts[-1].affinity == "load"
    for busy in held:
        busy.ended()
    # The other host served the longest prefix last: the conversation stays there now.
    assert forge.chat(_conversation("cats", 4)).route.deployment == away
    assert forge.stats()["affinity"]["load_overrides"] == 1


def test_a_key_pins_a_conversation_identically_in_two_processes() -> None:
    keys = [f"thread-{i}" for i in range(20)]
    placed = []
    for _ in range(2):  # two "processes": two forges over the same deployments
        forge, _ = _forge(4)
        placed.append([forge.chat("hi", prompt_cache_key=key).route.deployment for key in keys])
    assert placed[0] == placed[1]
    assert len(set(placed[0])) > 1  # the keys spread over the hosts
    forge, _ = _forge(4)
    route = forge.chat("hello", prompt_cache_key=keys[0]).route
    assert route.deployment == placed[0][0]
    assert route.attempts[-1].affinity == "key"


def test_a_host_leaving_moves_only_its_own_keys() -> None:
    keys = [f"session-{i}" for i in range(40)]
    forge, _ = _forge(4)
    before = {key: forge.chat("hi", prompt_cache_key=key).route.deployment for key in keys}
    gone = before[keys[0]]
    forge.router.health.mark(f"http://{gone}.test/v1", _down())
    after = {key: forge.chat("hi", prompt_cache_key=key).route.deployment for key in keys}
    moved = {key for key in keys if after[key] != before[key]}
    assert moved == {key for key in keys if before[key] == gone}


def _down() -> Any:
    from forge_core.routing.health import HealthStatus

    return HealthStatus.DOWN


def test_a_key_on_an_overloaded_host_is_passed_over() -> None:
    forge, _ = _forge(2)
    target = forge.chat("hi", prompt_cache_key="k").route.deployment
    held = _busy(forge, f"http://{target}.test/v1", 3)
    route = forge.chat("hi", prompt_cache_key="k").route
    for busy in held:
        busy.ended()
    assert route.deployment != target
    assert route.attempts[-1].affinity == "load"


def test_affinity_off_restores_load_balancing_alone() -> None:
    forge, _ = _forge(2, affinity="off")
    served = [forge.chat(_conversation("cats", turns)).route for turns in range(1, 5)]
    # Load alone: the second turn goes to the host not measured yet, not back to the first.
    assert [route.deployment for route in served][:2] == ["ep0", "ep1"]
    assert all(route.attempts[-1].affinity is None for route in served)
    assert forge.stats()["affinity"] == {"hits": 0, "misses": 0, "load_overrides": 0}


def test_key_mode_ignores_prefixes_but_pins_keys() -> None:
    forge, _ = _forge(2, affinity="key")
    served = [forge.chat(_conversation("cats", turns)).route.deployment for turns in (1, 2)]
    assert served == ["ep0", "ep1"]
    keyed = {forge.chat("hi", prompt_cache_key="k").route.deployment for _ in range(4)}
    assert len(keyed) == 1


def test_a_failed_holder_fails_over_and_the_prefix_moves() -> None:
    forge, _ = _forge(2, "first answer", ProviderUnavailable("down"))
    home = forge.chat(_conversation("cats", 1)).route.deployment
    index = int(home[2:])
    route = forge.chat(_conversation("cats", 2)).route
    assert [(a.deployment, a.ok, a.affinity) for a in route.attempts] == [
        (home, False, "prefix:2"),
        (f"ep{1 - index}", True, "load"),
    ]


def test_an_unbalanced_fallback_of_the_same_model_has_no_affinity_reason() -> None:
    config = balanced_endpoints(2).model_dump()
    config["providers"]["fallback"]["order"] = ["openai", "anthropic"]
    down = ProviderUnavailable("down")
    backends = {f"ep{i}": ScriptedBackend(down, endpoint=f"http://ep{i}.test/v1") for i in range(2)}
    backends["anthropic"] = ScriptedBackend("from anthropic", provider="anthropic")
    forge = Forge(ForgeConfig.model_validate(config), backends=backends, clock=FakeClock(), env={})
    route = forge.chat(_conversation("cats", 1)).route
    assert [(a.deployment, a.affinity) for a in route.attempts][-1] == ("anthropic", None)
    # A new conversation: the balanced pair's first was placed by spreading, the other by load.
    assert [a.affinity for a in route.attempts[:-1]] == ["spread", "load"]


def test_the_index_is_bounded_per_deployment() -> None:
    index = AffinityIndex(per_deployment=100)
    for i in range(1000):
        request = ChatRequest(messages=[Message(role="user", content=f"q{i}")])
        index.served("http://a", "m", prefix_digests(request))
    assert index.size("http://a") == 100
    assert len(index._holders["m"]) == 100
    recent = prefix_digests(ChatRequest(messages=[Message(role="user", content="q999")]))
    old = prefix_digests(ChatRequest(messages=[Message(role="user", content="q0")]))
    assert index.longest("m", recent, {"http://a": 0}) == (0, 1)
    assert index.longest("m", old, {"http://a": 0}) is None


def test_digests_are_cumulative_and_the_system_prompt_and_tools_are_the_first() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    base = [Message(role="system", content="s"), Message(role="user", content="u")]
    a = prefix_digests(ChatRequest(messages=base, tools=tools))
    b = prefix_digests(
        ChatRequest(messages=[*base, Message(role="assistant", content="x")], tools=tools)
    )
    c = prefix_digests(ChatRequest(messages=base))
    assert len(a) == 2 and b[:2] == a and len(b) == 3
    assert c[0] != a[0]  # the tools are part of the first "message"
    assert prefix_digests(ChatRequest(messages=[])) == ()


def test_rendezvous_moves_only_the_keys_of_a_removed_endpoint() -> None:
    endpoints = [f"http://h{i}" for i in range(5)]
    keys = [f"k{i}" for i in range(200)]
    before = {key: endpoints[rendezvous(key, endpoints)] for key in keys}
    rest = endpoints[1:]
    after = {key: rest[rendezvous(key, rest)] for key in keys}
    assert {k for k in keys if before[k] != after[k]} == {
        k for k in keys if before[k] == endpoints[0]
    }


def test_a_request_is_hashed_once_and_looked_up_once_a_message_whatever_the_deployments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cost model behind the issue's 20 us with 50 deployments and 10k prefixes (timed by
    the benchmarks, never asserted here): one pass over the messages, one dict read per
    message, none per deployment."""
    from forge_core.routing import affinity as module

    forge, _ = _forge(50)
    index = forge.router.affinity
    for i in range(10_000):
        request = ChatRequest(
            messages=[Message(role="system", content=SYSTEM), Message(role="user", content=str(i))]
        )
        index.served(f"http://ep{i % 50}.test/v1", "scripted", prefix_digests(request))
    hashed: list[int] = []
    original = module.prefix_digests

    def counting(request: ChatRequest) -> tuple[int, ...]:
        hashed.append(1)
        return original(request)

    monkeypatch.setattr(module, "prefix_digests", counting)
    reads: list[object] = []
    holders = index._holders["scripted"]

    class Counting(dict):  # type: ignore[type-arg]
        def get(self, key: object, default: object = None) -> object:
            reads.append(key)
            return holders.get(key, default)

    monkeypatch.setattr(index, "_holders", {"scripted": Counting()})
    request = ChatRequest(messages=_conversation("cats", 4))  # 8 messages, none held but 1
    affinity = RequestAffinity(request, use_prefix=True)
    first = forge.router.planner.lazy(request, affinity=affinity).first()
    assert hashed == [1]
    assert len(reads) == 8
    # ep49 served the system prompt last.
    assert first is not None and first.deployment == "ep49"
    assert affinity.reason(first.endpoint, first.model) == "prefix:1"


@pytest.mark.parametrize("mode", ["prefix", "key", "off"])
def test_the_config_takes_the_modes_and_refuses_others(mode: str) -> None:
    assert balanced_endpoints(2, affinity=mode).routing.affinity == mode
    with pytest.raises(ValueError):
        balanced_endpoints(2, affinity="sticky")
    with pytest.raises(ValueError):
        balanced_endpoints(2, affinity_imbalance=-1)


@pytest.mark.parametrize(
    ("dialect", "sent"),
    [("openai", True), ("openai-compatible", False), ("llama-cpp", False), ("ollama", False)],
)
def test_prompt_cache_key_goes_on_the_wire_to_openai_only(dialect: str, sent: bool) -> None:
    from forge_core.backends.http.openai.wire import build_body

    request = ChatRequest(messages=[Message(role="user", content="hi")], prompt_cache_key="c-1")
    body = build_body(request, "m", stream=False, dialect=dialect)
    assert body.get("prompt_cache_key") == ("c-1" if sent else None)
    assert "prompt_cache_key" not in build_body(
        ChatRequest(messages=[]), "m", stream=False, dialect=dialect
    )


def test_warm_first_stays_first_over_a_held_prefix() -> None:
    """Two real Ollama-shaped hosts (``/api/ps``): the conversation's host unloads the model;
    the next turn goes to the host that has it loaded, however warm the prompt was."""
    from fault_server import FaultServer, ok, ollama_hosts_on

    clock = FakeClock()
    with (
        FaultServer(default=ok("from a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
    ):
        forge = Forge(ForgeConfig.model_validate(ollama_hosts_on(host_a, host_b)), clock=clock)
        first = forge.chat(_conversation("cats", 1)).route.deployment
        second = forge.chat(_conversation("cats", 2)).route
        home, away = (host_a, host_b) if first == "host-a" else (host_b, host_a)
        home.loaded = []
        clock.advance(10.0)  # past the listings' trust: both hosts are asked again
        third = forge.chat(_conversation("cats", 3)).route
    assert second.deployment == first and second.attempts[-1].affinity == "prefix:2"
    assert third.deployment != first and third.attempts[-1].affinity == "load"
    assert away.requests and forge.stats()["affinity"]["load_overrides"] == 1


def test_affinity_outcomes_are_counted_in_opentelemetry() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from otel_support import in_memory_telemetry

    with in_memory_telemetry() as otel:
        forge, _ = _forge(2)
        for turns in (1, 2, 3):
            forge.chat(_conversation("cats", turns))
        points = {
            dict(point.attributes)["forge.affinity.outcome"]: point.value
            for point in otel.points("forge.router.affinity")
        }
    assert points == {"miss": 1, "hit": 2}


def test_what_the_fleet_served_counts_by_when_it_was_served() -> None:
    """Learned entries (`AffinityIndex.learned`, from Redis) carry their age: the latest
    serving wins whichever process recorded it, and one older than the TTL is not learned."""
    clock = FakeClock()
    index = AffinityIndex(clock=clock.monotonic, ttl=60.0)
    positions = {"http://a": 0, "http://b": 1, "http://c": 2}
    digests = prefix_digests(ChatRequest(messages=_conversation("cats", 1)))
    clock.advance(100)
    index.served("http://a", "m", digests)
    index.learned([("http://b", "m", digests, 5.0)])  # b served it 5 s ago: a is later
    assert index.longest("m", digests, positions) == (0, 2)
    index.learned([("http://c", "m", digests, 0.0)])  # c just now: c is the latest
    assert index.longest("m", digests, positions) == (2, 2)
    # Load passes c over: the latest of the others (a, not the older b).
    assert index.longest("m", digests, positions, lambda i: i != 2) == (0, 2)
    index.learned(
        [
            (
                "http://b",
                "m",
                prefix_digests(ChatRequest(messages=_conversation("owls", 1, "Owls."))),
                61.0,
            )
        ]
    )
    owls = prefix_digests(ChatRequest(messages=_conversation("owls", 1, "Owls.")))
    assert index.longest("m", owls, positions) is None
    clock.advance(61)  # now all of them are past the TTL
    assert index.longest("m", digests, positions) is None


def test_a_next_turn_records_its_new_messages_and_its_latest_prefix_stays_fresh() -> None:
    """A turn that found its conversation's prefix at a deployment (`RequestAffinity.known`)
    records only its new messages there; the prefix the next turn looks up is the newest, so
    a conversation taking a turn every 400 s outlives a 600 s TTL."""
    clock = FakeClock()
    index = AffinityIndex(ttl=600.0, clock=clock.monotonic)
    positions = {"e0": 0, "e1": 1}
    turns = [prefix_digests(ChatRequest(messages=_conversation("cats", n))) for n in range(1, 5)]
    index.served("e0", "m", turns[0])
    for before, turn in itertools.pairwise(turns):
        clock.advance(400)
        found = index.longest("m", turn, positions)
        assert found == (0, len(before))
        index.served("e0", "m", turn, known=found[1])
        assert index.size("e0") == len(turn)  # every prefix once, none twice
    # An identical request again re-stamps its whole prompt, nothing more.
    index.served("e0", "m", turns[-1], known=len(turns[-1]))
    assert index.size("e0") == len(turns[-1])
    assert index.longest("m", turns[-1], positions) == (0, len(turns[-1]))


def test_the_emptiest_deployment_wins_and_equals_take_turns_from_the_start_given() -> None:
    index = AffinityIndex()
    index.served("b", "m", prefix_digests(ChatRequest(messages=_conversation("cats", 2))))
    assert [index.emptiest(["a", "b", "c"], start) for start in range(4)] == [0, 2, 2, 0]
