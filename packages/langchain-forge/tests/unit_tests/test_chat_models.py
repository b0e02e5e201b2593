"""ForgeChat without a model or a network: fields -> forge config, requests, tracing params.

Every config here points at refused ports or cloud providers that ``local_only`` drops, so no
test can reach a server.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import pytest
from forge_core import (
    ChatRequest,
    ConfigError,
    FallbackFailed,
    ForgeConfig,
    Message,
    Provider,
)
from forge_test_support import closed_port_url, config_for
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_forge import ForgeChat


def _refused_config() -> ForgeConfig:
    """ollama then openai, both on refused ports."""
    return config_for(
        {"name": "ollama", "base_url": closed_port_url(), "preferred_models": ["gemma-3-270m"]},
        {"name": "openai", "base_url": closed_port_url() + "/v1", "default_model": "gpt-x"},
    )


def _cloud_only_config() -> ForgeConfig:
    return config_for({"name": "openai", "base_url": closed_port_url() + "/v1"})


def test_llm_type() -> None:
    assert ForgeChat()._llm_type == "forge"


def test_construction_is_lazy_and_stores_compatibility_fields() -> None:
    chat = ForgeChat(config="/nonexistent/forge.yaml", max_retries=3, timeout=9)
    assert chat.max_retries == 3
    assert chat.timeout == 9
    with pytest.raises(ConfigError, match="config file not found"):
        chat.invoke("hi")


def test_unset_routing_fields_leave_the_config_untouched() -> None:
    config = _refused_config()
    chat = ForgeChat(config=config)
    assert chat.forge_overrides() == {}
    assert chat.shared_forge().config == config


def test_routing_fields_become_forge_overrides() -> None:
    chat = ForgeChat(
        config=_refused_config(),
        fallback_order=["openai", "ollama"],
        local_first=True,
        local_only=False,
        timeout=7,
        max_retries=0,
    )
    assert chat.forge_overrides() == {
        "providers": {"fallback": {"order": ["openai", "ollama"]}},
        "model_preferences": {"local_first": True, "local_only": False},
        "routing": {"total_timeout_seconds": 7, "max_retries": 0},
    }
    built = chat.shared_forge().config
    assert built.providers.fallback.order == [Provider.OPENAI, Provider.OLLAMA]
    assert built.model_preferences.local_first is True
    assert built.routing.max_retries == 0
    assert built.routing.total_timeout_seconds == 7


def test_fallback_order_and_local_first_reach_forges_plan() -> None:
    request = ChatRequest(messages=[Message(role="user", content="hi")])
    cloud_first = ForgeChat(config=_refused_config(), fallback_order=["openai", "ollama"])
    candidates, _ = cloud_first.shared_forge().router.plan(request)
    assert [c.provider for c in candidates] == [Provider.OPENAI, Provider.OLLAMA]

    local_first = cloud_first.model_copy(update={"local_first": True})
    candidates, _ = local_first.shared_forge().router.plan(request)
    assert [c.provider for c in candidates] == [Provider.OLLAMA, Provider.OPENAI]


def test_forge_is_built_once_and_rebuilt_when_a_routing_field_changes() -> None:
    chat = ForgeChat(config=_refused_config())
    forge = chat.shared_forge()
    assert chat.shared_forge() is forge
    chat.local_only = True
    rebuilt = chat.shared_forge()
    assert rebuilt is not forge
    assert rebuilt.config.model_preferences.local_only is True


def test_copies_work_after_the_forge_was_built() -> None:
    chat = ForgeChat(config=_refused_config())
    chat.shared_forge()
    clone = copy.deepcopy(chat)
    assert clone == chat
    other = chat.model_copy(update={"fallback_order": ["openai"]})
    assert other.shared_forge().config.providers.fallback.order == [Provider.OPENAI]
    assert chat.shared_forge().config.providers.fallback.order == [Provider.OLLAMA, Provider.OPENAI]


def test_config_may_be_a_path_to_forge_yaml(tmp_path: Path) -> None:
    path = tmp_path / "forge.yaml"
    path.write_text(
        "providers:\n  fallback:\n    order: [huggingface, ollama]\n"
        "model_preferences:\n  local_only: true\n",
        encoding="utf-8",
    )
    chat = ForgeChat(config=path, local_only=False)
    built = chat.shared_forge().config
    assert built.source == str(path)
    assert built.providers.fallback.order == [Provider.HUGGINGFACE, Provider.OLLAMA]
    assert built.model_preferences.local_only is False  # the field wins over the file
    assert ForgeChat(config=str(path)).shared_forge().config.model_preferences.local_only is True


def test_invalid_override_raises_forges_config_error() -> None:
    chat = ForgeChat(config=_refused_config(), fallback_order=["ollama", "carrier-pigeon"])
    with pytest.raises(ConfigError):
        chat.invoke("hi")


def test_request_uses_fields_then_per_call_overrides() -> None:
    chat = ForgeChat(model="ollama:a", temperature=0.1, max_tokens=5, stop=["\n"])
    messages = [SystemMessage(content="s"), HumanMessage(content="u")]
    request = chat._request(messages, None, {})
    assert (request.model, request.temperature, request.max_tokens, request.stop) == (
        "ollama:a",
        0.1,
        5,
        ["\n"],
    )
    assert [m.role for m in request.messages] == ["system", "user"]

    request = chat._request(
        messages,
        ["END"],
        {
            "model": "huggingface:gemma-3-270m",
            "temperature": 0.7,
            "max_tokens": 9,
            "local_only": True,
        },
    )
    assert (request.model, request.temperature, request.max_tokens, request.stop) == (
        "huggingface:gemma-3-270m",
        0.7,
        9,
        ["END"],
    )
    assert request.local_only is True


def test_request_leaves_unset_values_to_forge() -> None:
    request = ForgeChat(model="ollama:a")._request(
        [HumanMessage(content="u")], None, {"model": None}
    )
    assert request.model is None  # the call asked for the config's choice
    assert request.temperature is None and request.max_tokens is None and request.stop is None


def test_unknown_call_kwargs_raise_before_any_request_naming_the_closest() -> None:
    chat = ForgeChat(config=_refused_config())
    with pytest.raises(TypeError, match="'temprature' \\(did you mean 'temperature'\\?\\)"):
        chat.invoke("hi", temprature=0.5)


def test_local_only_field_drops_cloud_providers_and_forge_error_propagates() -> None:
    chat = ForgeChat(config=_cloud_only_config(), local_only=True)
    with pytest.raises(FallbackFailed) as caught:
        chat.invoke("hi")
    assert caught.value.route.attempts == []
    assert [(d.provider, d.reason) for d in caught.value.route.drops] == [
        (Provider.OPENAI, "local_only: cloud not allowed")
    ]


def test_local_only_per_call_drops_cloud_providers_when_streaming() -> None:
    chat = ForgeChat(config=_cloud_only_config())
    with pytest.raises(FallbackFailed) as caught:
        list(chat.stream("hi", local_only=True))
    assert [d.provider for d in caught.value.route.drops] == [Provider.OPENAI]


async def test_forge_errors_propagate_unchanged_from_async_calls() -> None:
    chat = ForgeChat(config=_cloud_only_config(), local_only=True)
    with pytest.raises(FallbackFailed):
        await chat.ainvoke("hi")
    with pytest.raises(FallbackFailed):
        [chunk async for chunk in chat.astream("hi")]


def test_ls_params_default_to_auto_when_the_config_picks_the_model() -> None:
    assert ForgeChat()._get_ls_params() == {
        "ls_provider": "forge",
        "ls_model_name": "auto",
        "ls_model_type": "chat",
    }


def test_ls_params_report_fields_and_per_call_overrides() -> None:
    chat = ForgeChat(model="ollama:a", temperature=0.2, max_tokens=7, stop=["x"])
    assert chat._get_ls_params() == {
        "ls_provider": "forge",
        "ls_model_name": "ollama:a",
        "ls_model_type": "chat",
        "ls_temperature": 0.2,
        "ls_max_tokens": 7,
        "ls_stop": ["x"],
    }
    params = chat._get_ls_params(stop=["y"], model="openai:b", temperature=0.9, max_tokens=3)
    assert params["ls_model_name"] == "openai:b"
    assert params["ls_temperature"] == 0.9
    assert params["ls_max_tokens"] == 3
    assert params["ls_stop"] == ["y"]


def test_identifying_params_distinguish_configs() -> None:
    first, second = _refused_config(), _refused_config()
    a = ForgeChat(config=first, model="ollama:a")
    b = ForgeChat(config=second, model="ollama:a")
    assert a._identifying_params["model"] == "ollama:a"
    assert a._identifying_params["config"] == first.model_dump(mode="json")
    assert a._get_llm_string() != b._get_llm_string()  # different ports: no shared cache entry
    assert ForgeChat(config="forge.yaml")._identifying_params["config"] == "forge.yaml"


def test_langchains_stop_argument_wins_over_a_stop_keyword() -> None:
    chat = ForgeChat(stop=["default"])
    messages = [HumanMessage(content="u")]
    assert chat._request(messages, None, {}).stop == ["default"]
    assert chat._request(messages, None, {"stop": ["kw"]}).stop == ["kw"]
    assert chat._request(messages, ["arg"], {"stop": ["kw"]}).stop == ["arg"]


def test_the_generate_methods_keep_their_own_signature_for_langchains_per_call_check() -> None:
    chat = ForgeChat()
    for method in (chat._generate, chat._agenerate):
        code = method.__func__.__code__
        names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
        assert list(inspect.signature(method).parameters)[: len(names)] == list(names)
        assert "run_manager" in inspect.signature(method).parameters
    copied = copy.copy(chat)
    assert inspect.signature(copied._generate) == inspect.signature(chat._generate)
