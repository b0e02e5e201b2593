"""ForgeLLM's options, metadata, Forge construction and error paths (no model is called)."""

from __future__ import annotations

from pathlib import Path

import forge_core
import pytest
from forge_core import Capabilities
from forge_core.testing import ScriptedBackend
from forge_test_support import closed_port_url, config_for
from llama_index.core.base.llms.types import ChatMessage, MessageRole, VideoBlock
from llama_index.core.bridge.pydantic import ValidationError
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS
from llamaindex_forge import ForgeLLM

USER = [ChatMessage(role=MessageRole.USER, content="hi")]


def cloud_only_config() -> forge_core.ForgeConfig:
    """Only an OpenAI-compatible provider, on a port nothing listens on."""
    return config_for({"name": "openai", "base_url": closed_port_url(), "default_model": "m"})


# -- options and metadata ----------------------------------------------------------------------


def test_defaults() -> None:
    llm = ForgeLLM()
    assert llm.model is None
    assert llm.temperature is None
    assert llm.max_tokens is None
    assert llm.timeout is None
    assert llm.config is None
    assert llm.fallback_order is None
    assert llm.local_first is None
    assert llm.local_only is None
    assert llm.context_window == 2048
    assert llm.forge_overrides() == {}


def test_metadata_defaults() -> None:
    metadata = ForgeLLM(config=cloud_only_config(), local_only=True).metadata
    assert metadata.context_window == 2048
    assert metadata.num_output == DEFAULT_NUM_OUTPUTS
    assert metadata.is_chat_model is True
    # No provider is allowed, so none can call tools.
    assert metadata.is_function_calling_model is False
    assert metadata.model_name == "forge"


def test_metadata_says_function_calling_when_a_candidate_can_call_tools() -> None:
    # Planning needs no network: the OpenAI-compatible endpoint declares tool calling.
    assert ForgeLLM(config=cloud_only_config()).metadata.is_function_calling_model is True


def test_route_without_a_usable_provider_is_not_function_calling() -> None:
    # Only a cloud provider, and local_only forbids it: no candidate can call tools.
    config = config_for({"name": "openai", "base_url": closed_port_url(), "default_model": "m"})
    assert ForgeLLM(config=config).metadata.is_function_calling_model is True
    assert ForgeLLM(config=config, local_only=True).metadata.is_function_calling_model is False


def test_metadata_raises_the_error_of_a_broken_config(tmp_path: Path) -> None:
    # A config that does not load is an error to see, not "not a function-calling model".
    llm = ForgeLLM(config=str(tmp_path / "absent.yaml"))
    with pytest.raises(forge_core.ConfigError, match=r"absent\.yaml"):
        _ = llm.metadata


def test_metadata_follows_options() -> None:
    llm = ForgeLLM(model="huggingface:gemma-3-270m", max_tokens=24, context_window=4096)
    metadata = llm.metadata
    assert metadata.model_name == "huggingface:gemma-3-270m"
    assert metadata.num_output == 24
    assert metadata.context_window == 4096


@pytest.mark.parametrize(
    "options",
    [{"max_tokens": 0}, {"temperature": -0.5}, {"timeout": 0}, {"context_window": 0}],
)
def test_invalid_option_values_are_rejected(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ForgeLLM(**options)


def test_config_object_is_kept_as_is() -> None:
    config = cloud_only_config()
    assert ForgeLLM(config=config).config is config


def test_config_path_is_accepted_as_str_or_pathlike(tmp_path: Path) -> None:
    path = tmp_path / "forge.yaml"
    assert ForgeLLM(config=str(path)).config == str(path)
    assert ForgeLLM(config=path).config == str(path)


def test_config_of_another_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ForgeLLM(config=42)


def test_overrides_are_built_from_the_options_that_are_set() -> None:
    llm = ForgeLLM(fallback_order=["openai", "ollama"], local_only=True, timeout=30)
    assert llm.forge_overrides() == {
        "providers": {"fallback": {"order": ["openai", "ollama"]}},
        "model_preferences": {"local_only": True},
        "routing": {"total_timeout_seconds": 30},
    }
    assert ForgeLLM(local_first=False).forge_overrides() == {
        "model_preferences": {"local_first": False}
    }


# -- the Forge behind it -----------------------------------------------------------------------


def test_forge_is_built_from_config_and_overrides() -> None:
    config = cloud_only_config()
    llm = ForgeLLM(config=config, fallback_order=["openai", "ollama"], local_first=True, timeout=9)
    forge = llm.forge
    assert isinstance(forge, forge_core.Forge)
    assert forge.config.providers.fallback.order == [
        forge_core.Provider.OPENAI,
        forge_core.Provider.OLLAMA,
    ]
    assert forge.config.model_preferences.local_first is True
    assert forge.config.routing.total_timeout_seconds == 9
    # Everything not overridden comes from the given config.
    assert forge.config.providers.cloud.openai.base_url == config.providers.cloud.openai.base_url
    assert forge.config.model_preferences.local_only is False


def test_forge_without_overrides_uses_the_config_object() -> None:
    config = cloud_only_config()
    assert ForgeLLM(config=config).forge.config is config


def test_forge_is_reused_until_an_option_changes() -> None:
    llm = ForgeLLM(config=cloud_only_config())
    first = llm.forge
    assert llm.forge is first
    llm.local_only = True
    rebuilt = llm.forge
    assert rebuilt is not first
    assert rebuilt.config.model_preferences.local_only is True
    llm.config = cloud_only_config()
    assert llm.forge is not rebuilt


def test_forge_reads_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "forge.yaml"
    path.write_text(
        "providers:\n  local:\n    ollama:\n      base_url: http://127.0.0.1:9\n"
        "model_preferences:\n  local_only: true\n",
        encoding="utf-8",
    )
    forge = ForgeLLM(config=str(path), local_first=False).forge
    assert forge.config.source == str(path)
    assert forge.config.providers.local.ollama.base_url == "http://127.0.0.1:9"
    assert forge.config.model_preferences.local_only is True
    assert forge.config.model_preferences.local_first is False


def test_missing_config_file_raises_forge_config_error(tmp_path: Path) -> None:
    llm = ForgeLLM(config=str(tmp_path / "absent.yaml"))
    with pytest.raises(forge_core.ConfigError, match="config file not found"):
        llm.chat(USER)


def test_bad_fallback_order_raises_forge_config_error() -> None:
    llm = ForgeLLM(config=cloud_only_config(), fallback_order=["ollama", "nope"])
    with pytest.raises(forge_core.ConfigError, match="nope"):
        llm.chat(USER)


# -- errors before or instead of any model call ------------------------------------------------


def test_local_only_override_keeps_requests_off_cloud_providers() -> None:
    llm = ForgeLLM(config=cloud_only_config(), local_only=True)
    with pytest.raises(forge_core.FallbackFailed) as caught:
        llm.chat(USER)
    route = caught.value.route
    assert route.attempts == []
    assert [(drop.provider, drop.reason) for drop in route.drops] == [
        (forge_core.Provider.OPENAI, "local_only: cloud not allowed")
    ]


def test_per_call_local_only_is_passed_to_forge() -> None:
    llm = ForgeLLM(config=cloud_only_config())
    with pytest.raises(forge_core.FallbackFailed) as caught:
        llm.chat(USER, local_only=True)
    assert caught.value.route.attempts == []


def test_stream_chat_errors_propagate_unchanged() -> None:
    llm = ForgeLLM(config=cloud_only_config(), local_only=True)
    with pytest.raises(forge_core.FallbackFailed):
        list(llm.stream_chat(USER))


async def test_achat_errors_propagate_unchanged() -> None:
    llm = ForgeLLM(config=cloud_only_config(), local_only=True)
    with pytest.raises(forge_core.FallbackFailed):
        await llm.achat(USER)


async def test_astream_chat_errors_propagate_unchanged() -> None:
    llm = ForgeLLM(config=cloud_only_config(), local_only=True)
    with pytest.raises(forge_core.FallbackFailed):
        async for _ in await llm.astream_chat(USER):
            pass


def test_complete_errors_propagate_unchanged() -> None:
    llm = ForgeLLM(config=cloud_only_config(), local_only=True)
    with pytest.raises(forge_core.FallbackFailed):
        llm.complete("hi")


def test_refused_provider_fails_with_the_route() -> None:
    refused = forge_core.ProviderUnavailable("ollama: connection refused", refused=True)
    backend = ScriptedBackend(refused, provider="ollama")
    llm = ForgeLLM(config=config_for({"name": "ollama"}), backends={"ollama": backend})
    with pytest.raises(forge_core.FallbackFailed) as caught:
        llm.chat(USER)
    # A refused connection is not retried: one attempt, the refused provider's.
    [attempt] = caught.value.route.attempts
    assert attempt.provider == forge_core.Provider.OLLAMA
    assert attempt.ok is False
    assert attempt.error_kind == "unavailable"
    assert attempt.message == "ollama: connection refused"
    assert [call.kind for call in backend.calls] == ["chat"]


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(TypeError, match="frobnicate"):
        ForgeLLM(config=cloud_only_config()).chat(USER, frobnicate=1)


def test_unsupported_message_is_rejected_before_routing() -> None:
    message = ChatMessage(
        role=MessageRole.USER, blocks=[VideoBlock(url="https://example.com/a.mp4")]
    )
    with pytest.raises(ValueError, match="'video' content blocks are not supported"):
        ForgeLLM(config=cloud_only_config()).chat([message])


def test_metadata_context_window_comes_from_the_first_candidate() -> None:
    config = config_for(
        {"name": "huggingface", "models": [{"name": "gemma-3-270m"}], "n_ctx": 1024}
    )
    local = {
        "huggingface": ScriptedBackend(
            provider="huggingface", capabilities=Capabilities(context_window=1024)
        )
    }
    assert ForgeLLM(config=config, backends=local).metadata.context_window == 1024
    # An explicit option wins.
    window = ForgeLLM(config=config, backends=local, context_window=512).metadata.context_window
    assert window == 512
    # An endpoint that does not know its window leaves the default.
    assert ForgeLLM(config=cloud_only_config()).metadata.context_window == 2048


def test_endpoint_options_configure_the_pinned_provider_as_forgechat_does() -> None:
    from pydantic import SecretStr

    llm = ForgeLLM(model="openai:gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="sk-x")
    overrides = llm.forge_overrides()
    assert overrides["providers"]["cloud"]["openai"] == {
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": forge_core.options.API_KEY_ENV,
    }
    assert isinstance(llm.api_key, SecretStr)
    assert "sk-x" not in repr(llm)
    # The key reaches the client through the private layer, never os.environ.
    client = llm.forge.router.backends["openai"]
    assert client.key_fingerprint() is not None  # type: ignore[attr-defined]


def test_endpoint_options_are_refused_for_an_in_process_model() -> None:
    with pytest.raises(ValidationError, match="in process"):
        ForgeLLM(model="huggingface:gemma-3-270m", base_url="http://127.0.0.1:9")


def test_max_retries_reaches_the_router() -> None:
    assert ForgeLLM(max_retries=0).forge.config.routing.max_retries == 0
