"""ForgeEmbeddings without a model: LangChain's standard unit tests, then batching, the
one-vector-space pin, routing options and the endpoint fields, against scripted servers on
127.0.0.1 (`fault_server.FaultServer`, or a key-checking one here) where the HTTP request matters,
else scripted backends (`forge_core.testing.ScriptedBackend`).

The embeddings of the real model (in process) are in
integration_tests/test_embeddings_local_model.py.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import forge_core
import pytest
from fault_server import FaultServer, status
from forge_core.testing import ScriptedBackend
from forge_test_support import closed_port_url, config_for
from langchain_core.embeddings import Embeddings
from langchain_forge import ForgeChat, ForgeEmbeddings
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import SecretStr, ValidationError

UNIT_CONFIG = Path(__file__).with_name("forge_unit.yaml")
KEY = "sk-embeddings-unit-key-0123456789"
#: What openai embeds with when nothing names an embedding model (not its chat default_model).
OPENAI_DEFAULT = "openai:text-embedding-3-small"


class TestForgeEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return ForgeEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        # The only provider is a refused port: a unit test that reached the network would fail.
        return {"config": config_for({"name": "ollama", "base_url": closed_port_url()})}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"FORGE_CONFIG": str(UNIT_CONFIG)}, {}, {"config": str(UNIT_CONFIG)}


def _ollama_then_openai(first: FaultServer, second: FaultServer) -> forge_core.ForgeConfig:
    return config_for(
        {"name": "ollama", "base_url": first.root_url},
        {"name": "openai", "base_url": second.base_url, "default_model": "m"},
        routing={"max_retries": 0},
    )


def _inputs(server: FaultServer) -> list[list[str]]:
    return [request.body["input"] for request in server.requests]


# -- batching ---------------------------------------------------------------------------------


def test_documents_are_sent_in_batches_of_batch_size_in_order() -> None:
    with FaultServer() as server:
        config = config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})
        embeddings = ForgeEmbeddings(config=config, batch_size=2)
        vectors = embeddings.embed_documents(["a", "b", "c", "d", "e"])
    assert _inputs(server) == [["a", "b"], ["c", "d"], ["e"]]
    assert vectors == [[0.6, 0.8]] * 5
    assert embeddings.served == OPENAI_DEFAULT


async def test_async_documents_are_sent_in_batches_too() -> None:
    with FaultServer() as server:
        config = config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})
        embeddings = ForgeEmbeddings(config=config, batch_size=2)
        vectors = await embeddings.aembed_documents(["a", "b", "c"])
        query = await embeddings.aembed_query("q")
    assert _inputs(server) == [["a", "b"], ["c"], ["q"]]
    assert (len(vectors), query) == (3, [0.6, 0.8])


def test_no_documents_make_no_call() -> None:
    with FaultServer() as server:
        config = config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})
        assert ForgeEmbeddings(config=config).embed_documents([]) == []
    assert server.requests == []


def test_a_string_is_not_taken_for_a_list_of_characters() -> None:
    embeddings = ForgeEmbeddings(config=config_for({"name": "ollama", "base_url": "x"}))
    with pytest.raises(TypeError, match="list of texts"):
        embeddings.embed_documents("abc")


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        ForgeEmbeddings(batch_size=0)


# -- one vector space -------------------------------------------------------------------------


def _scripted_ollama_then_openai(
    ollama: ScriptedBackend, openai: ScriptedBackend, **fields: Any
) -> ForgeEmbeddings:
    """`ForgeEmbeddings` over scripted ``ollama`` then ``openai`` deployments, no retries."""
    config = config_for({"name": "ollama"}, {"name": "openai"}, routing={"max_retries": 0})
    return ForgeEmbeddings(config=config, backends={"ollama": ollama, "openai": openai}, **fields)


def _texts(backend: ScriptedBackend) -> list[list[str]]:
    return [call.texts for call in backend.calls]


def test_a_later_batch_fails_instead_of_switching_to_another_model() -> None:
    down = forge_core.ProviderUnavailable("ollama: HTTP 503", status_code=503)
    first = ScriptedBackend("serves", down, provider="ollama")
    second = ScriptedBackend()
    embeddings = _scripted_ollama_then_openai(first, second, models={"ollama": "m"}, batch_size=1)
    with pytest.raises(forge_core.ForgeError):
        embeddings.embed_documents(["served by ollama", "ollama is down now"])
    assert embeddings.served == "ollama:m"
    assert _texts(first) == [["served by ollama"], ["ollama is down now"]]
    assert second.calls == [], "the second batch must not be embedded by another model"
    route = embeddings.route
    assert route is not None
    assert [(attempt.provider.value, attempt.ok) for attempt in route.attempts] == [
        ("ollama", False)
    ]


def test_without_the_pin_a_later_call_falls_back() -> None:
    down = forge_core.ProviderUnavailable("ollama: HTTP 503", status_code=503)
    first = ScriptedBackend("serves", down, provider="ollama")
    second = ScriptedBackend()
    embeddings = _scripted_ollama_then_openai(
        first, second, models={"ollama": "m"}, pin_after_first=False
    )
    embeddings.embed_query("served by ollama")
    embeddings.embed_query("served by openai")
    assert _texts(second) == [["served by openai"]]


def test_the_first_call_falls_back_and_then_stays_on_the_model_that_served() -> None:
    with FaultServer([status(503)]) as first, FaultServer() as second:
        embeddings = ForgeEmbeddings(config=_ollama_then_openai(first, second))
        embeddings.embed_query("ollama fails, openai serves")
        embeddings.embed_query("pinned to openai")
    assert embeddings.served == OPENAI_DEFAULT
    assert len(first.requests) == 1
    assert _inputs(second) == [["ollama fails, openai serves"], ["pinned to openai"]]


def test_copies_share_the_vector_space() -> None:
    with FaultServer([status(503)]) as first, FaultServer() as second:
        embeddings = ForgeEmbeddings(config=_ollama_then_openai(first, second))
        embeddings.embed_query("pins openai")
        for twin in (embeddings.model_copy(), copy.deepcopy(embeddings)):
            twin.embed_query("a copy")
            assert twin.served == OPENAI_DEFAULT
    assert len(first.requests) == 1


def test_instances_with_the_same_options_share_one_forge_but_pin_on_their_own() -> None:
    config = config_for({"name": "ollama", "base_url": closed_port_url()})
    one, two = ForgeEmbeddings(config=config), ForgeEmbeddings(config=config)
    assert one.embedder.forge is two.embedder.forge
    assert one.embedder is not two.embedder
    assert ForgeEmbeddings(config=config, local_only=True).embedder.forge is not one.embedder.forge


def test_chat_and_embeddings_with_the_same_options_share_one_forge() -> None:
    config = config_for({"name": "openai", "base_url": closed_port_url(), "default_model": "m"})
    options: dict[str, Any] = {"config": config, "local_first": True, "api_key": SecretStr(KEY)}
    embeddings = ForgeEmbeddings(**options)
    assert embeddings.embedder.forge is ForgeChat(**options).shared_forge()
    assert (
        embeddings.embedder.forge is not ForgeChat(config=config, local_first=True).shared_forge()
    )


# -- routing options --------------------------------------------------------------------------


def test_local_only_never_sends_texts_to_the_cloud() -> None:
    embeddings = ForgeEmbeddings(
        config=config_for({"name": "openai", "base_url": closed_port_url(), "default_model": "m"}),
        local_only=True,
    )
    with pytest.raises(forge_core.FallbackFailed) as caught:
        embeddings.embed_query("private text")
    assert caught.value.route.attempts == []
    assert caught.value.route.drops[0].reason == "local_only: cloud not allowed"


def test_fallback_order_decides_who_embeds() -> None:
    with FaultServer() as first, FaultServer() as second:
        embeddings = ForgeEmbeddings(
            config=_ollama_then_openai(first, second), fallback_order=["openai", "ollama"]
        )
        embeddings.embed_query("openai first")
    assert (first.requests, embeddings.served) == ([], OPENAI_DEFAULT)


def test_a_bad_config_path_raises_on_first_use() -> None:
    embeddings = ForgeEmbeddings(config="/nonexistent/forge.yaml")
    with pytest.raises(forge_core.ConfigError):
        embeddings.embed_query("x")


# -- endpoint fields --------------------------------------------------------------------------


class _KeyChecker(ThreadingHTTPServer):
    authorizations: list[str | None]


@pytest.fixture
def key_checker() -> Iterator[_KeyChecker]:
    """An OpenAI-style ``/v1/embeddings`` on 127.0.0.1 that answers 401 to a wrong key."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            authorization = self.headers.get("Authorization")
            server.authorizations.append(authorization)
            if authorization != f"Bearer {KEY}":
                self._send(401, {"error": {"message": "bad key", "type": "invalid_request"}})
                return
            data = [{"index": i, "embedding": [1.0, 0.0]} for i in range(len(body["input"]))]
            self._send(200, {"data": data, "model": body["model"]})

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _KeyChecker(("127.0.0.1", 0), Handler)
    server.authorizations = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_api_key_and_base_url_reach_the_pinned_openai_provider(key_checker: _KeyChecker) -> None:
    port = key_checker.server_address[1]
    embeddings = ForgeEmbeddings(
        model="openai:text-embedding-3-small",
        api_key=SecretStr(KEY),
        base_url=f"http://127.0.0.1:{port}/v1",
        config=config_for({"name": "openai", "base_url": closed_port_url(), "default_model": "m"}),
    )
    assert embeddings.embed_query("hello") == [1.0, 0.0]
    assert key_checker.authorizations == [f"Bearer {KEY}"]
    assert embeddings.served == "openai:text-embedding-3-small"
    assert KEY not in repr(embeddings) and KEY not in str(embeddings.model_dump())


def test_a_wrong_key_is_an_error_that_does_not_show_the_key(key_checker: _KeyChecker) -> None:
    port = key_checker.server_address[1]
    embeddings = ForgeEmbeddings(
        api_key=SecretStr("sk-wrong-key-fedcba9876543210"),
        base_url=f"http://127.0.0.1:{port}/v1",
        config=config_for({"name": "openai", "base_url": closed_port_url(), "default_model": "m"}),
    )
    with pytest.raises(forge_core.ForgeError) as caught:
        embeddings.embed_query("hello")
    assert "sk-wrong-key-fedcba9876543210" not in str(caught.value)
    assert len(key_checker.authorizations) == 1


def test_base_url_configures_the_pinned_ollama() -> None:
    with FaultServer() as server:
        embeddings = ForgeEmbeddings(
            model="ollama:m",
            base_url=server.root_url,
            config=config_for({"name": "ollama", "base_url": closed_port_url()}),
        )
        embeddings.embed_query("to the configured host")
    assert _inputs(server) == [["to the configured host"]]
    assert embeddings.served == "ollama:m"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "huggingface:smollm2-135m", "api_key": SecretStr(KEY)}, "takes neither"),
        ({"model": "anthropic:claude", "base_url": "http://127.0.0.1:9"}, "takes neither"),
        ({"model": "ollama:m", "api_key": SecretStr(KEY)}, "sends no key"),
    ],
)
def test_endpoint_fields_for_a_provider_that_cannot_use_them_are_refused(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        ForgeEmbeddings(**fields)
    assert KEY not in str(caught.value)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        ForgeEmbeddings(modle="huggingface:smollm2-135m")
