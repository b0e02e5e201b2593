"""A deployment (kind + endpoint + model) is the unit of routing (#15, items 1, 2, 4).

Several Ollama hosts (``providers.local.ollama.hosts``) and named OpenAI-compatible servers
(``providers.endpoints``) are each a deployment with their own breaker, health and metrics;
``fallback.order`` entries name a kind (all its deployments), a deployment, or either with a
model, so model-level chains work. Every host here is a real socket server on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from fault_server import FaultServer, ok, status
from forge_core import ConfigError, Forge, ForgeConfig, Provider, load_config
from forge_test_support import closed_port_url

PREFERRED = ["llama3.1:8b", "codellama:7b", "mistral:7b"]


def _config(**providers: Any) -> ForgeConfig:
    data: dict[str, Any] = {"model_preferences": {"local_first": False}, "providers": providers}
    return ForgeConfig.model_validate(data)


def _hosts(*hosts: tuple[str, str], **ollama: Any) -> dict[str, Any]:
    return {"ollama": {"hosts": [{"name": n, "base_url": u} for n, u in hosts], **ollama}}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forge.yaml"
    path.write_text(text)
    return path


# -- config -----------------------------------------------------------------------------------


def test_an_existing_config_has_one_deployment_per_provider_named_after_it() -> None:
    config = ForgeConfig()
    assert [(d.name, d.kind, d.local) for d in config.providers.deployments.values()] == [
        ("ollama", Provider.OLLAMA, True),
        ("huggingface", Provider.HUGGINGFACE, True),
        ("openai", Provider.OPENAI, False),
        ("anthropic", Provider.ANTHROPIC, False),
        ("openrouter", Provider.OPENROUTER, False),
    ]
    assert config.providers.fallback.order[0] is Provider.OLLAMA


def test_hosts_and_endpoints_are_named_deployments_and_order_entries_resolve() -> None:
    config = _config(
        local=_hosts(("laptop", "http://127.0.0.1:11434"), ("gpu-box", "http://10.0.0.5:11434")),
        endpoints=[
            {"name": "vllm", "kind": "openai", "base_url": "http://10.0.0.7:8000/v1"},
            {"name": "hosted", "kind": "openai", "base_url": "https://llm.example.com/v1"},
        ],
        fallback={"order": ["ollama", "vllm:qwen", "openai:gpt-4o", "openai:gpt-4o-mini"]},
    )
    deployments = config.providers.deployments
    assert deployments["gpu-box"].kind is Provider.OLLAMA
    assert deployments["gpu-box"].section.base_url == "http://10.0.0.5:11434"  # type: ignore[union-attr]
    # A private or loopback address counts as local; a public host does not.
    assert deployments["vllm"].local and not deployments["hosted"].local
    resolve = config.providers.resolve
    assert resolve("ollama") == [("laptop", None), ("gpu-box", None)]
    assert resolve("vllm:qwen") == [("vllm", "qwen")]
    # kind:model means the kind's own deployment, not every server of that kind.
    assert resolve("openai:gpt-4o") == [("openai", "gpt-4o")]
    assert resolve("openai") == [("openai", None), ("vllm", None), ("hosted", None)]
    # Only the text before the first ':' names the deployment: Ollama tags stay whole.
    assert resolve("gpu-box:llama3.1:8b") == [("gpu-box", "llama3.1:8b")]


def test_balancing_and_load_timeouts_default_and_a_host_may_set_its_own() -> None:
    assert ForgeConfig().routing.balance == "warm-first"
    assert ForgeConfig().providers.deployments["ollama"].load_timeout_seconds == 120
    override = ForgeConfig.model_validate(
        {
            "providers": {
                "local": {
                    "ollama": {
                        "load_timeout_seconds": 60,
                        "hosts": [
                            {"name": "laptop", "base_url": "http://127.0.0.1:11434"},
                            {
                                "name": "big-box",
                                "base_url": "http://10.0.0.5:11434",
                                "load_timeout_seconds": 600,
                            },
                        ],
                    }
                }
            }
        }
    )
    deployments = override.providers.deployments
    assert deployments["laptop"].load_timeout_seconds == 60
    assert deployments["big-box"].load_timeout_seconds == 600
    assert deployments["openai"].load_timeout_seconds == 0


@pytest.mark.parametrize(
    ("yaml_text", "key_path", "detail"),
    [
        (
            "providers:\n  fallback:\n    order: [ollama, nowhere]\n",
            "providers.fallback.order[1]",
            "'nowhere' is neither a provider kind nor a deployment name",
        ),
        (
            "providers:\n  endpoints:\n    - {name: openai, kind: openai, base_url: 'http://h/v1'}\n",
            "providers.endpoints[0].name",
            "is a provider kind",
        ),
        (
            "providers:\n  local:\n    ollama:\n      hosts:\n"
            "        - {name: a, base_url: 'http://h1'}\n        - {name: a, base_url: 'http://h2'}\n",
            "providers.local.ollama.hosts[1].name",
            "'a' names two deployments",
        ),
        (
            "providers:\n  endpoints:\n    - {name: vllm, kind: openai}\n",
            "providers.endpoints[0].base_url",
            "missing key",
        ),
        (
            "providers:\n  local:\n    ollama:\n      base_url: 'http://h'\n"
            "      hosts: [{name: a, base_url: 'http://h1'}]\n",
            "providers.local.ollama",
            "set base_url or hosts, not both",
        ),
        (
            "model_preferences:\n  default_provider: gpu\n",
            "model_preferences.default_provider",
            "'gpu' is neither a provider kind nor a deployment name",
        ),
    ],
)
def test_a_bad_deployment_config_names_the_file_the_key_and_the_problem(
    tmp_path: Path, yaml_text: str, key_path: str, detail: str
) -> None:
    path = _write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert message.startswith(f"{path}: {key_path}: "), message
    assert detail in message


# -- routing ----------------------------------------------------------------------------------


def test_the_first_pulled_preferred_model_wins_across_hosts() -> None:
    with (
        FaultServer([ok("from a")], models=["mistral:7b"]) as host_a,
        FaultServer(
            [ok("from b")], models=["codellama:7b", "mistral:7b"], loaded=["codellama:7b"]
        ) as host_b,
    ):
        config = _config(
            local=_hosts(
                ("host-a", host_a.root_url),
                ("host-b", host_b.root_url),
                preferred_models=PREFERRED,
            ),
            fallback={"order": ["ollama"]},
        )
        forge = Forge(config, clock=FakeClock())
        # Discovery lists each host's pulled models (/api/tags, cached); planning reads it.
        where = forge.router.discovery.where_available()
        candidates, _ = forge.router.plan(forge_request())
        answer = forge.chat("hi")
        asked_a = [seen.body["model"] for seen in host_a.requests]
        asked_b = [seen.body["model"] for seen in host_b.requests]
    # codellama (preferred over mistral) is only on host-b: it goes first, then mistral on each.
    assert [c.key for c in candidates] == [
        "host-b:codellama:7b",
        "host-a:mistral:7b",
        "host-b:mistral:7b",
    ]
    assert where == {
        "mistral:7b": {"pulled": ["host-a", "host-b"], "loaded": []},
        "codellama:7b": {"pulled": ["host-b"], "loaded": ["host-b"]},  # /api/ps
    }
    assert answer.content == "from b"
    assert [(a.deployment, a.model) for a in answer.route.attempts] == [("host-b", "codellama:7b")]
    assert asked_b == ["codellama:7b"] and asked_a == []


def test_a_dead_host_fails_over_to_the_next_its_breaker_alone_opens_and_metrics_are_per_host() -> (
    None
):
    dead = closed_port_url()
    with FaultServer(default=ok("alive"), models=["m"]) as alive:
        config = _config(
            local=_hosts(
                ("dead-box", dead),
                ("live-box", alive.root_url),
                preferred_models=["m"],
                auto_discovery=False,
            ),
            fallback={"order": ["ollama"]},
            **{},
        )
        config = config.model_copy(
            update={"routing": config.routing.model_copy(update={"breaker_failure_threshold": 1})}
        )
        forge = Forge(config, clock=FakeClock())
        first = forge.chat("one")
        second = forge.chat("two")
        stats = forge.stats()
    assert first.content == second.content == "alive"
    assert [(a.deployment, a.ok) for a in first.route.attempts] == [
        ("dead-box", False),
        ("live-box", True),
    ]
    # The dead host's circuit is open: the second request skips it without a connection.
    assert [a.deployment for a in second.route.attempts] == ["live-box"]
    assert [(d.deployment, "circuit open" in d.reason) for d in second.route.drops] == [
        ("dead-box", True)
    ]
    assert stats["circuits"][dead]["state"] == "open"
    assert stats["circuits"][alive.root_url]["state"] == "closed"
    assert stats["models"]["live-box:m"]["successes"] == 2
    assert stats["models"]["dead-box:m"]["successes"] == 0


def test_a_model_level_chain_falls_back_from_one_model_to_the_next_on_the_same_endpoint() -> None:
    script = [status(404, "The model `gpt-4o` does not exist"), ok("from mini")]
    with FaultServer(script, models=["gpt-4o-mini"]) as server:
        config = _config(
            cloud={"openai": {"base_url": server.base_url, "api_key_env": None}},
            fallback={"order": ["openai:gpt-4o", "openai:gpt-4o-mini"]},
        )
        forge = Forge(config, clock=FakeClock())
        answer = forge.chat("hi")
        asked = [seen.body["model"] for seen in server.requests]
    assert asked == ["gpt-4o", "gpt-4o-mini"]
    assert answer.content == "from mini"
    assert [(a.model, a.error_kind) for a in answer.route.attempts] == [
        ("gpt-4o", "model_not_found"),
        ("gpt-4o-mini", None),
    ]


def test_named_openai_compatible_servers_are_routed_by_name_and_pinned_by_name() -> None:
    with (
        FaultServer(default=ok("from first")) as first,
        FaultServer(default=ok("from second")) as second,
    ):
        config = _config(
            endpoints=[
                {"name": "first", "kind": "openai", "base_url": first.base_url},
                {"name": "second", "kind": "openai", "base_url": second.base_url},
            ],
            fallback={"order": ["first", "second"]},
        )
        forge = Forge(config, clock=FakeClock())
        routed = forge.chat("hi")
        pinned = forge.chat("hi", model="second:m")
    assert (routed.content, routed.route.deployment) == ("from first", "first")
    assert (pinned.content, pinned.route.deployment) == ("from second", "second")
    assert [(a.deployment, a.model) for a in pinned.route.attempts] == [("second", "m")]
    assert routed.provider is Provider.OPENAI


def test_local_first_and_local_only_follow_each_deployments_locality() -> None:
    config = _config(
        endpoints=[
            {"name": "cloud-llm", "kind": "openai", "base_url": "https://llm.example.com/v1"},
            {"name": "lan-vllm", "kind": "openai", "base_url": "http://192.168.1.20:8000/v1"},
        ],
        fallback={"order": ["cloud-llm", "lan-vllm"]},
    )
    config = config.model_copy(
        update={
            "model_preferences": config.model_preferences.model_copy(
                update={"local_first": True, "local_only": True}
            )
        }
    )
    forge = Forge(config, clock=FakeClock())
    candidates, drops = forge.router.plan(forge_request())
    assert [c.deployment for c in candidates] == ["lan-vllm"]
    assert [(d.deployment, d.reason) for d in drops] == [
        ("cloud-llm", "local_only: cloud not allowed")
    ]


def forge_request() -> Any:
    from forge_core import ChatRequest, Message

    return ChatRequest(messages=[Message(role="user", content="hi")])
