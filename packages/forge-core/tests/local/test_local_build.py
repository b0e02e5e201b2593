"""The llama.cpp that forge runs is the portable build the workspace declares.

A native build (``-march=native``) compiles ggml's AVX-512 and AMX kernels on CPUs that have
them, and the AMX ones crash on Q4 GGUFs (docs/local-runtime.md). The workspace's
``[tool.uv] config-settings-package`` builds one fixed x86-64 set instead; this test fails when
the loaded library reports anything outside it, so the crash cannot come back unseen.
"""

from __future__ import annotations

import platform
import re

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

#: What the portable build may report as enabled on x86-64 (ggml's names).
PORTABLE_X86 = {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}
#: Not instruction sets: ggml's optional code paths, independent of the CPU.
NOT_INSTRUCTION_SETS = {"LLAMAFILE", "OPENMP", "REPACK", "ACCELERATE", "KLEIDIAI"}


def _enabled(system_info: str) -> set[str]:
    return {name for name, value in re.findall(r"(\w+) = (\d+)", system_info) if value != "0"}


def test_system_info_parsing_sees_what_a_native_build_reports() -> None:
    native = "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | "
    assert _enabled(native) - NOT_INSTRUCTION_SETS - PORTABLE_X86 == {"AVX512", "AMX_INT8"}


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 build only")
def test_loaded_llama_cpp_uses_only_the_portable_instruction_sets() -> None:
    info = llama_cpp.llama_print_system_info().decode()
    enabled = _enabled(info) - NOT_INSTRUCTION_SETS
    assert enabled, f"no instruction set reported: {info!r}"
    assert enabled <= PORTABLE_X86, (
        f"llama.cpp was built with {sorted(enabled - PORTABLE_X86)} (system info: {info!r}); "
        "rebuild it portably (docs/local-runtime.md)"
    )
    assert "AVX2" in enabled, f"the portable build lost AVX2: {info!r}"
