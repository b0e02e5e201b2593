"""`shared_forge`: one `Forge` per distinct set of options, without a network call.

Building a `Forge` loads its configuration and makes backends; nothing here sends a request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import forge_core
import pytest
from forge_core import ConfigError, Forge, ForgeConfig, shared_forge
from forge_core import shared as _shared
from forge_test_support import closed_port_url, config_for

SECRET = "sk-test-do-not-print-4f2a9c"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forge_core.clear_shared_forges()
    yield
    forge_core.clear_shared_forges()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "forge.yaml"
    path.write_text(
        f"providers:\n  local:\n    ollama:\n      base_url: {closed_port_url()}\n"
        "  fallback:\n    order: [ollama]\n",
        encoding="utf-8",
    )
    return path


def _config() -> ForgeConfig:
    return config_for({"name": "ollama", "base_url": closed_port_url()})


def test_the_same_options_give_the_same_forge() -> None:
    config = _config()
    overrides = {"model_preferences": {"local_only": True}, "routing": {"max_retries": 0}}
    env = {"OPENAI_API_KEY": SECRET}
    forge = shared_forge(config, overrides=overrides, env=env)
    assert isinstance(forge, Forge)
    # Equal but different mapping objects, keys in another order.
    same = shared_forge(
        config,
        overrides={"routing": {"max_retries": 0}, "model_preferences": {"local_only": True}},
        env=dict(env),
    )
    assert same is forge


def test_no_overrides_and_empty_overrides_agree_and_keep_the_config_object() -> None:
    config = _config()
    forge = shared_forge(config)
    assert shared_forge(config, overrides={}) is forge
    assert forge.config is config


def test_a_config_object_counts_by_identity_not_by_equality() -> None:
    first, second = _config(), _config()
    second.providers.local.ollama.base_url = first.providers.local.ollama.base_url
    assert first == second
    assert shared_forge(first) is not shared_forge(second)


@pytest.mark.parametrize(
    "overrides",
    [
        {"model_preferences": {"local_only": True}},
        {"model_preferences": {"local_only": False}},
        {"routing": {"max_retries": 1}},
        {"providers": {"fallback": {"order": ["ollama", "openai"]}}},
    ],
)
def test_different_overrides_give_another_forge(overrides: dict[str, Any]) -> None:
    config = _config()
    assert shared_forge(config, overrides=overrides) is not shared_forge(config)


def test_different_env_gives_another_forge() -> None:
    config = _config()
    with_key = shared_forge(config, env={"OPENAI_API_KEY": SECRET})
    assert shared_forge(config, env={"OPENAI_API_KEY": SECRET + "x"}) is not with_key
    assert shared_forge(config, env={}) is not with_key
    assert shared_forge(config) is not with_key
    assert shared_forge(config, env={}) is not shared_forge(config)


def test_a_path_counts_by_the_file_it_resolves_to(config_file: Path) -> None:
    forge = shared_forge(config_file)
    assert forge.config.source == str(config_file)
    assert shared_forge(str(config_file)) is forge
    assert shared_forge(config_file.parent / "." / config_file.name) is forge


def test_an_edited_config_file_gives_a_new_forge(config_file: Path) -> None:
    forge = shared_forge(config_file)
    config_file.write_text(
        config_file.read_text(encoding="utf-8") + "model_preferences:\n  local_only: true\n",
        encoding="utf-8",
    )
    edited = shared_forge(config_file)
    assert edited is not forge
    assert edited.config.model_preferences.local_only is True
    assert shared_forge(config_file) is edited


def test_a_touched_config_file_gives_a_new_forge(config_file: Path) -> None:
    forge = shared_forge(config_file)
    stat = config_file.stat()
    os.utime(config_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert shared_forge(config_file) is not forge


def test_default_discovery_follows_the_file_it_finds(
    tmp_path: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGE_CONFIG", str(config_file))
    forge = shared_forge()
    assert forge.config.source == str(config_file)
    assert shared_forge(None) is forge
    other = tmp_path / "other.yaml"
    other.write_text("model_preferences:\n  local_only: true\n", encoding="utf-8")
    monkeypatch.setenv("FORGE_CONFIG", str(other))
    assert shared_forge() is not forge


def test_forge_environment_variables_count_for_a_loaded_config(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORGE_LOCAL_ONLY", raising=False)
    forge = shared_forge(config_file)
    monkeypatch.setenv("FORGE_LOCAL_ONLY", "true")
    local_only = shared_forge(config_file)
    assert local_only is not forge
    assert local_only.config.model_preferences.local_only is True


def test_a_missing_file_raises_and_caches_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        shared_forge(tmp_path / "absent.yaml")
    assert not _shared._forges


def test_a_bad_override_raises_and_caches_nothing() -> None:
    with pytest.raises(ConfigError):
        shared_forge(_config(), overrides={"providers": {"fallback": {"order": ["nope"]}}})
    assert not _shared._forges


def test_clear_gives_fresh_forges() -> None:
    config = _config()
    forge = shared_forge(config)
    forge_core.clear_shared_forges()
    assert shared_forge(config) is not forge


def test_close_shared_forges_closes_them_and_the_next_call_gets_a_fresh_one() -> None:
    config = _config()
    forges = [shared_forge(config), shared_forge(config, overrides={"routing": {"max_retries": 0}})]
    forge_core.close_shared_forges()
    assert all(forge.closed for forge in forges)
    assert not _shared._forges
    fresh = shared_forge(config)
    assert fresh is not forges[0] and not fresh.closed


def test_a_shared_forge_closed_by_its_user_is_replaced() -> None:
    config = _config()
    forge = shared_forge(config)
    forge.close()
    fresh = shared_forge(config)
    assert fresh is not forge and not fresh.closed
    assert shared_forge(config) is fresh


def test_a_source_whose_forge_was_closed_gets_a_fresh_one(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting(monkeypatch)
    source = forge_core.ForgeSource()
    first = source.get(str(config_file))
    forge_core.close_shared_forges()
    fresh = source.get(str(config_file))
    assert fresh is not first and not fresh.closed
    assert source.get(str(config_file)) is fresh
    assert len(calls) == 2


def test_the_cache_is_bounded_and_an_evicted_forge_still_works() -> None:
    config = _config()
    first = shared_forge(config, overrides={"routing": {"max_retries": 0}})
    for retries in range(1, _shared.MAX_SHARED_FORGES + 1):
        shared_forge(config, overrides={"routing": {"max_retries": retries}})
    assert len(_shared._forges) == _shared.MAX_SHARED_FORGES
    assert shared_forge(config, overrides={"routing": {"max_retries": 0}}) is not first
    # Dropped from the cache, not closed: whoever holds it can still use it.
    assert first.capabilities() is not None


def test_a_recently_used_forge_is_kept() -> None:
    config = _config()
    first = shared_forge(config, overrides={"routing": {"max_retries": 0}})
    for retries in range(1, _shared.MAX_SHARED_FORGES + 1):
        assert shared_forge(config, overrides={"routing": {"max_retries": 0}}) is first
        shared_forge(config, overrides={"routing": {"max_retries": retries}})
    assert shared_forge(config, overrides={"routing": {"max_retries": 0}}) is first


def test_racing_threads_get_one_forge_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Forge] = []

    class CountingForge(Forge):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(_shared, "Forge", CountingForge)
    config = _config()
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[Forge] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(20):
                results.append(shared_forge(config, overrides={"routing": {"max_retries": 0}}))
                shared_forge(config, env={"K": str(threading.get_ident())})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(results) == threads_count * 20
    assert len({id(forge) for forge in results}) == 1
    # One for the shared options, one per thread for its own env.
    assert len(built) == 1 + threads_count


def test_no_repr_shows_an_env_secret(config_file: Path) -> None:
    shared_forge(_config(), env={"OPENAI_API_KEY": SECRET})
    url = f"https://user:{SECRET}@proxy.invalid/v1"
    overrides = {"providers": {"cloud": {"openai": {"base_url": url}}}}
    shared_forge(config_file, overrides=overrides, env={"ANTHROPIC_API_KEY": SECRET})
    keys = list(_shared._forges)
    assert len(keys) == 2
    for text in (repr(_shared._forges), str(_shared._forges), *map(repr, keys), *map(str, keys)):
        assert SECRET not in text
    assert "<hidden>" in repr(keys[0])
    assert str(config_file) in repr(keys[1])


# -- ForgeSource: a wrapper's handle, one shared_forge look-up per change of options ------------


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = _shared.shared_forge

    def counted(*args: Any, **kwargs: Any) -> Forge:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(_shared, "shared_forge", counted)
    return calls


def test_a_source_looks_the_forge_up_once_while_the_options_stay_the_same(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting(monkeypatch)
    source = forge_core.ForgeSource()
    overrides = {"routing": {"max_retries": 1}}
    first = source.get(str(config_file), overrides=overrides, api_keys={"K": SECRET})
    again = [
        source.get(str(config_file), overrides=dict(overrides), api_keys={"K": SECRET})
        for _ in range(3)
    ]
    assert all(forge is first for forge in again)
    assert len(calls) == 1


def test_a_source_asks_again_when_an_option_changes(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting(monkeypatch)
    source = forge_core.ForgeSource()
    base = source.get(str(config_file))
    other_overrides = source.get(str(config_file), overrides={"routing": {"max_retries": 0}})
    other_key = source.get(str(config_file), api_keys={"K": SECRET})
    assert len({id(base), id(other_overrides), id(other_key)}) == 3
    assert len(calls) == 3
    # Back to the first options: the shared cache still has that Forge.
    assert source.get(str(config_file)) is base


def test_a_source_keys_a_config_object_by_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    source = forge_core.ForgeSource()
    config = _config()
    assert source.get(config) is source.get(config)
    equal_but_other = config.model_copy(deep=True)
    assert source.get(equal_but_other) is not source.get(config)
    assert len(calls) == 3


def test_api_keys_reach_the_forge_env_over_os_environ_and_never_the_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORGE_TEST_VISIBLE", "from-os-environ")
    calls = _counting(monkeypatch)
    source = forge_core.ForgeSource()
    source.get(_config(), api_keys={"FORGECHAT_API_KEY": SECRET})
    [(_, kwargs)] = calls
    env = kwargs["env"]
    assert env["FORGECHAT_API_KEY"] == SECRET
    assert env["FORGE_TEST_VISIBLE"] == "from-os-environ"
    assert "FORGECHAT_API_KEY" not in os.environ
    assert SECRET not in repr(source)
    assert SECRET not in repr(_shared._forges)


def test_a_copied_source_starts_empty_and_compares_equal(config_file: Path) -> None:
    import copy

    source = forge_core.ForgeSource()
    forge = source.get(str(config_file))
    clone = copy.deepcopy(source)
    assert clone == source
    assert repr(clone) == "ForgeSource(ready=False)"
    assert clone.get(str(config_file)) is forge
