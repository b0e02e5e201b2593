"""ForgeChat and ForgeEmbeddings across event loops and after their shared `Forge` is closed
(issue #30): one ``asyncio.run`` per call keeps no socket, and `close_shared_forges` closes
the connections while the models go on working with a fresh `Forge`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import forge_core
import pytest
from fault_server import FaultServer, ok
from forge_test_support import config_for
from held_resources import Held, client_sockets
from langchain_forge import ForgeChat, ForgeEmbeddings

#: Loops run: enough that a per-loop leak shows, bounded so the test stays quick.
LOOPS = 40


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forge_core.close_shared_forges()
    yield
    forge_core.close_shared_forges()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(default=ok("answer")) as running:
        yield running


def _config(server: FaultServer) -> forge_core.ForgeConfig:
    return config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})


def test_ainvoke_in_a_fresh_event_loop_each_time_keeps_no_socket(server: FaultServer) -> None:
    llm = ForgeChat(config=_config(server), max_tokens=8)
    assert asyncio.run(llm.ainvoke("hi")).content == "answer"
    before = Held.now(server.port)
    for _ in range(LOOPS):
        assert asyncio.run(llm.ainvoke("hi")).content == "answer"
        assert client_sockets(server.port) == 0
    assert Held.now(server.port) == before


def test_after_close_shared_forges_a_chat_model_goes_on_with_a_fresh_forge(
    server: FaultServer,
) -> None:
    llm = ForgeChat(config=_config(server), max_tokens=8)
    assert llm.invoke("hi").content == "answer"
    forge = llm.shared_forge()
    assert client_sockets(server.port) == 1
    forge_core.close_shared_forges()
    assert forge.closed
    assert client_sockets(server.port) == 0
    assert llm.invoke("hi").content == "answer"
    assert llm.shared_forge() is not forge


def test_after_close_shared_forges_embeddings_keep_their_model(server: FaultServer) -> None:
    embeddings = ForgeEmbeddings(config=_config(server))
    first = embeddings.embed_query("a")
    served = embeddings.served
    forge_core.close_shared_forges()
    assert client_sockets(server.port) == 0
    assert embeddings.embed_query("b") == first
    assert embeddings.served == served
    assert not embeddings.embedder.forge.closed
