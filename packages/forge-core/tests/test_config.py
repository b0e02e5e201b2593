from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from forge_core import EMBEDDED_MODEL, ConfigError, ForgeConfig, Provider, load_config

REPO = Path(__file__).resolve().parents[3]

EXAMPLE_YAML = """\
providers:
  local:
    ollama:
      base_url: "http://localhost:11434"
      timeout_seconds: 30
      preferred_models: ["llama3.1:8b", "codellama:7b", "mistral:7b"]
      auto_discovery: true
    huggingface:
      cache_dir: "~/.cache/huggingface"
      device: "auto"  # auto, cpu, cuda
      models:
        - name: "microsoft/DialoGPT-medium"
          local_path: null
  fallback:
    enabled: true
    order: ["ollama", "huggingface", "openai", "anthropic"]
model_preferences:
  default_provider: "ollama"
  local_first: true
"""


def write(tmp_path: Path, text: str, name: str = "forge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_documented_example_configuration_is_accepted_as_written(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EXAMPLE_YAML), env={})
    ollama = config.providers.local.ollama
    assert ollama.base_url == "http://localhost:11434"
    assert ollama.timeout_seconds == 30
    assert ollama.preferred_models == ["llama3.1:8b", "codellama:7b", "mistral:7b"]
    assert config.providers.local.huggingface.models[0].name == "microsoft/DialoGPT-medium"
    assert config.providers.local.huggingface.models[0].local_path is None
    assert config.providers.fallback.order == [
        Provider.OLLAMA,
        Provider.HUGGINGFACE,
        Provider.OPENAI,
        Provider.ANTHROPIC,
    ]
    assert config.model_preferences.default_provider is Provider.OLLAMA
    assert config.model_preferences.local_first is True


def test_shipped_forge_yaml_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(REPO / "forge.yaml", env={})
    assert config.providers.local.huggingface.models[0].name == EMBEDDED_MODEL
    assert config.source == str(REPO / "forge.yaml")


def test_no_file_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORGE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = load_config(env={})
    assert config.source is None
    assert config == ForgeConfig()


def test_wrong_type_names_file_key_path_value_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE_YAML.replace("timeout_seconds: 30", "timeout_seconds: soon"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert str(path) in message
    assert "providers.local.ollama.timeout_seconds" in message
    assert "'soon'" in message
    assert "number" in message
    assert caught.value.path == str(path)
    assert caught.value.key_path == "providers.local.ollama.timeout_seconds"


def test_unknown_provider_name_in_order_names_the_list_index(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE_YAML.replace('"anthropic"]', '"gemini"]'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert str(path) in message
    assert "providers.fallback.order[3]" in message
    assert "'gemini'" in message
    assert "known: anthropic, huggingface, ollama" in message  # the expected values are listed


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  local: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(path) in str(caught.value)
    assert "malformed YAML" in str(caught.value)
    assert "line" in str(caught.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path, env={})


def test_unknown_key_is_reported_without_its_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        providers:
          cloud:
            openai:
              api_key: sk-live-do-not-print-me
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert "providers.cloud.openai.api_key: unknown key" in message
    assert "sk-live-do-not-print-me" not in message
    assert "sk-live-do-not-print-me" not in repr(caught.value)


def test_missing_explicit_file_is_an_error_not_a_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_precedence_kwargs_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE_YAML)
    env = {"FORGE_LOCAL_FIRST": "false", "FORGE_FALLBACK_ORDER": "huggingface, openai"}
    from_env = load_config(path, env=env)
    assert from_env.model_preferences.local_first is False
    assert from_env.providers.fallback.order == [Provider.HUGGINGFACE, Provider.OPENAI]
    assert from_env.providers.local.ollama.timeout_seconds == 30  # the file still applies

    from_kwargs = load_config(path, env=env, overrides={"model_preferences": {"local_first": True}})
    assert from_kwargs.model_preferences.local_first is True
    assert from_kwargs.providers.fallback.order == [Provider.HUGGINGFACE, Provider.OPENAI]


def test_bad_env_value_names_the_env_var(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE_YAML)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"FORGE_LOCAL_ONLY": "perhaps"})
    assert "FORGE_LOCAL_ONLY" in str(caught.value)
    assert "model_preferences.local_only" in str(caught.value)


def test_forge_config_env_var_finds_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, EXAMPLE_YAML, name="elsewhere.yaml")
    monkeypatch.setenv("FORGE_CONFIG", str(path))
    assert load_config(env={}).source == str(path)


def test_env_interpolation_and_unset_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        providers:
          local:
            ollama:
              base_url: "http://${OLLAMA_HOST_FOR_TEST}:11434"
        """,
    )
    config = load_config(path, env={"OLLAMA_HOST_FOR_TEST": "gpu-box"})
    assert config.providers.local.ollama.base_url == "http://gpu-box:11434"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "OLLAMA_HOST_FOR_TEST" in str(caught.value)
    assert "providers.local.ollama.base_url" in str(caught.value)


def test_duplicate_provider_in_order_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE_YAML.replace('"anthropic"]', '"ollama"]'))
    with pytest.raises(ConfigError, match=r"providers\.fallback\.order.*listed twice"):
        load_config(path, env={})


def test_overrides_on_a_config_object_name_the_source_and_key_path(tmp_path: Path) -> None:
    from forge_core import Forge

    config = load_config(write(tmp_path, EXAMPLE_YAML), env={})
    forge = Forge(config, overrides={"model_preferences": {"local_only": True}})
    assert forge.config.model_preferences.local_only is True
    assert forge.config.source == config.source
    with pytest.raises(ConfigError) as caught:
        Forge(config, overrides={"providers": {"fallback": {"order": ["nope"]}}})
    assert caught.value.key_path == "providers.fallback.order[0]"
    assert str(caught.value).startswith("arguments: providers.fallback.order[0]")
