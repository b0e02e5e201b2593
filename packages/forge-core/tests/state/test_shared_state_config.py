"""``routing.state``: validated with the key path, memory by default, secrets never shown.

No Redis here: these tests need only the config and, for the masking, the URL helpers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from forge_core import ConfigError, Forge, ForgeConfig, load_config
from forge_core.state import mask_url, shared_state_for


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forge.yaml"
    path.write_text(text)
    return path


def test_memory_is_the_default_and_shares_nothing() -> None:
    config = ForgeConfig()
    assert config.routing.state.backend == "memory"
    assert shared_state_for(config.routing.state) is None
    forge = Forge(config, env={})
    assert forge.router.shared is None
    assert "state" not in forge.stats()


def test_a_bare_backend_name_is_accepted(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "routing:\n  state: memory\n"), env={})
    assert config.routing.state.backend == "memory"


@pytest.mark.parametrize(
    ("text", "key_path", "expected"),
    [
        ("routing:\n  state: {backend: redis}\n", "routing.state", "needs a url"),
        ("routing:\n  state: {backend: etcd}\n", "routing.state.backend", "'memory' or 'redis'"),
        (
            "routing:\n  state: {backend: redis, url: 'redis://h', timeout_seconds: 0}\n",
            "routing.state.timeout_seconds",
            "greater than 0",
        ),
    ],
)
def test_a_bad_state_section_names_the_file_the_key_and_what_was_expected(
    tmp_path: Path, text: str, key_path: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert str(path) in message
    assert caught.value.key_path == key_path
    assert expected in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@cache.internal:6380/2", "redis://:***@cache.internal:6380/2"),
        ("rediss://app:s3cret@cache.internal/0", "rediss://app:***@cache.internal/0"),
        ("redis://s3cret@cache.internal", "redis://***@cache.internal"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_a_redis_password_never_shows_in_the_url_forge_reports(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_the_store_repr_and_url_never_show_the_password() -> None:
    pytest.importorskip("redis")
    config = ForgeConfig.model_validate(
        {
            "routing": {
                "state": {"backend": "redis", "url": "redis://:s3cret@127.0.0.1:1/0"},
            }
        }
    )
    store = shared_state_for(config.routing.state)
    assert store is not None
    assert "s3cret" not in repr(store) and "s3cret" not in store.url
    # One store (one connection pool) per URL and prefix in a process.
    assert shared_state_for(config.routing.state) is store


def test_config_check_and_the_config_repr_never_show_the_redis_password(tmp_path: Path) -> None:
    pytest.importorskip("redis")  # config check builds the Redis store (forge-core[redis])
    from forge_cli_runner import invoke

    path = _write(
        tmp_path,
        "routing:\n  state: {backend: redis, url: 'redis://:s3cret@127.0.0.1:1/0'}\n",
    )
    shown = invoke("config", "check", str(path), "--json")
    assert "redis://:***@127.0.0.1:1/0" in shown.stdout
    assert "s3cret" not in shown.output
    assert "s3cret" not in repr(load_config(path, env={}))
