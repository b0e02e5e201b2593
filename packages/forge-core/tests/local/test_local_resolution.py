"""Where local models come from: local_path, the Hugging Face cache layout, packaged models."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from forge_core import ChatRequest, HuggingFaceConfig, Message, ModelNotFound
from forge_core.backends.base import AttemptTimeouts
from forge_core.backends.local.backend import HuggingFaceBackend
from forge_core.config.local_models import resolve_local_model

pytestmark = pytest.mark.local_model


def config(**settings: object) -> HuggingFaceConfig:
    return HuggingFaceConfig.model_validate(settings)


def hub_snapshot(root: Path, repo: str, revision: str = "0123abcd") -> Path:
    snapshot = root / ("models--" + repo.replace("/", "--")) / "snapshots" / revision
    snapshot.mkdir(parents=True)
    return snapshot


def test_local_path_to_a_gguf_file(embedded_model: Path, tmp_path: Path) -> None:
    resolved = resolve_local_model(
        "mine",
        config(
            cache_dir=str(tmp_path), models=[{"name": "mine", "local_path": str(embedded_model)}]
        ),
    )
    assert resolved.path == embedded_model and resolved.format == "gguf"


def test_local_path_to_a_folder_takes_its_gguf(embedded_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "model.gguf").symlink_to(embedded_model)
    resolved = resolve_local_model(
        "mine",
        config(cache_dir=str(tmp_path), models=[{"name": "mine", "local_path": str(folder)}]),
    )
    assert resolved.path == folder / "model.gguf"


def test_hub_cache_layout_with_home_expanded(
    embedded_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    snapshot = hub_snapshot(tmp_path / "hf" / "hub", "acme/tiny-gemma")
    (snapshot / "tiny-gemma.Q4_K_M.gguf").symlink_to(embedded_model)
    resolved = resolve_local_model("acme/tiny-gemma", config(cache_dir="~/hf"))
    assert resolved.path == snapshot / "tiny-gemma.Q4_K_M.gguf"
    assert resolved.format == "gguf"


def test_local_path_wins_over_the_cache(embedded_model: Path, tmp_path: Path) -> None:
    snapshot = hub_snapshot(tmp_path, "acme/tiny")
    (snapshot / "cached.gguf").symlink_to(embedded_model)
    explicit = tmp_path / "explicit.gguf"
    explicit.symlink_to(embedded_model)
    settings = config(
        cache_dir=str(tmp_path), models=[{"name": "acme/tiny", "local_path": str(explicit)}]
    )
    assert resolve_local_model("acme/tiny", settings).path == explicit
    assert resolve_local_model("acme/tiny", config(cache_dir=str(tmp_path))).path == (
        snapshot / "cached.gguf"
    )


def test_packaged_model_is_the_last_resort(embedded_model: Path, tmp_path: Path) -> None:
    resolved = resolve_local_model("gemma-3-270m", config(cache_dir=str(tmp_path)))
    assert resolved.path == embedded_model and resolved.chat_format == "gemma"


def test_missing_model_lists_every_place_searched(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ModelNotFound) as caught:
        resolve_local_model(
            "acme/missing",
            config(
                cache_dir=str(tmp_path),
                models=[{"name": "acme/missing", "local_path": str(missing)}],
            ),
        )
    message = str(caught.value)
    assert f"local_path {missing}" in message
    assert str(tmp_path / "models--acme--missing") in message
    assert str(tmp_path / "hub" / "models--acme--missing") in message
    assert "packaged models" in message and "gemma-3-270m" in message
    assert f"hf download acme/missing --cache-dir {tmp_path}" in message
    assert caught.value.model == "acme/missing" and caught.value.provider == "huggingface"


def test_snapshot_without_a_model_file_is_not_a_match(tmp_path: Path) -> None:
    snapshot = hub_snapshot(tmp_path, "acme/empty")
    (snapshot / "README.md").write_text("no weights here", encoding="utf-8")
    with pytest.raises(ModelNotFound):
        resolve_local_model("acme/empty", config(cache_dir=str(tmp_path)))


def test_model_found_in_the_cache_answers(embedded_model: Path, tmp_path: Path) -> None:
    snapshot = hub_snapshot(tmp_path / "hub", "acme/tiny-gemma")
    (snapshot / "model.gguf").symlink_to(embedded_model)
    backend = HuggingFaceBackend(
        config(
            cache_dir=str(tmp_path), models=[{"name": "acme/tiny-gemma", "chat_format": "gemma"}]
        )
    )
    backend.check_ready("acme/tiny-gemma")
    answer = backend.chat(
        ChatRequest(messages=[Message(role="user", content="Hi")], max_tokens=3),
        "acme/tiny-gemma",
        AttemptTimeouts(connect=1, read=60, total_deadline=time.monotonic() + 60),
    )
    assert answer.content and answer.model == "acme/tiny-gemma"
    [model] = backend.stats()["models"]
    assert model["path"] == str(snapshot / "model.gguf")
