"""forge_core imports without the heavy extras and names the extra when one is needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_LLAMA = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "llama_cpp" or name.startswith("llama_cpp."):
                raise ImportError("blocked for the test")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_LLAMA + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_forge_core_does_not_import_heavy_dependencies() -> None:
    result = run(
        """
        import sys
        import forge_core
        heavy = {"llama_cpp", "onnxruntime", "numpy", "redis"} & set(sys.modules)
        print(sorted(heavy))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_local_model_without_the_extra_names_the_extra() -> None:
    result = run(
        """
        import importlib.util
        from unittest import mock
        import forge_core
        from forge_core import FallbackFailed, Forge, ForgeConfig

        config = ForgeConfig.model_validate(
            {"providers": {"fallback": {"order": ["huggingface"]}}}
        )
        real_find_spec = importlib.util.find_spec
        def find_spec(name, *args):
            return None if name == "llama_cpp" else real_find_spec(name, *args)
        with mock.patch("importlib.util.find_spec", find_spec):
            try:
                Forge(config).chat("hi")
            except FallbackFailed as exc:
                print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'forge-core[llama]'" in result.stdout
    assert "huggingface" in result.stdout
