"""``api_key`` and ``base_url`` configure the provider ``model`` pins; the key never leaks.

The key is checked by a small proxy on 127.0.0.1 in front of the real local server: it
answers a wrong or missing ``Authorization`` with OpenAI's 401 body and forwards the rest.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from forge_core import FallbackFailed
from forge_test_support import LocalServer, closed_port_url, config_for
from langchain_forge import ForgeChat
from pydantic import SecretStr, ValidationError

pytestmark = pytest.mark.local_server

KEY = "sk-forge-test-key-0123456789abcdef"
WRONG_KEY = "sk-forge-wrong-key-fedcba9876543210"


@dataclass
class KeyProxy:
    """A key-checking proxy's base URL (``/v1``) and the Authorization headers it received."""

    openai_base_url: str
    authorizations: list[str | None] = field(default_factory=list)


@pytest.fixture
def key_proxy(local_server: LocalServer) -> Iterator[KeyProxy]:
    proxy: KeyProxy

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            authorization = self.headers.get("Authorization")
            proxy.authorizations.append(authorization)
            if authorization != f"Bearer {KEY}":
                # OpenAI's own 401: it names the key it got, masked.
                got = (authorization or "").removeprefix("Bearer ")
                message = f"Incorrect API key provided: {got[:6]}{'*' * 20}{got[-4:]}."
                error = {"message": message, "type": "invalid_request_error"}
                self._send(401, json.dumps({"error": error}).encode())
                return
            upstream = httpx.post(
                local_server.base_url + self.path,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
            self._send(upstream.status_code, upstream.content)

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy = KeyProxy(openai_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _chat(proxy: KeyProxy, server: LocalServer, key: str) -> ForgeChat:
    # The config points openai at a refused port: base_url is what sends it to the proxy.
    config = config_for({"name": "openai", "base_url": closed_port_url()})
    return ForgeChat(
        model=f"openai:{server.model}",
        config=config,
        base_url=proxy.openai_base_url,
        api_key=SecretStr(key),
        max_tokens=8,
        temperature=0.0,
    )


def test_api_key_and_base_url_reach_the_pinned_provider(
    key_proxy: KeyProxy, local_server: LocalServer
) -> None:
    answer = _chat(key_proxy, local_server, KEY).invoke("Say hello.")
    assert key_proxy.authorizations == [f"Bearer {KEY}"]
    assert answer.response_metadata["provider"] == "openai"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0


def test_a_refused_key_never_appears_in_errors_reprs_or_logs(
    key_proxy: KeyProxy, local_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    chat = _chat(key_proxy, local_server, WRONG_KEY)
    with caplog.at_level(logging.DEBUG), pytest.raises(FallbackFailed) as caught:
        chat.invoke("Say hello.")
    assert key_proxy.authorizations and set(key_proxy.authorizations) == {f"Bearer {WRONG_KEY}"}
    error = caught.value
    assert "401" in str(error)
    shown = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        caplog.text,
        repr(chat),
        str(chat),
        chat.model_dump_json(),
        json.dumps(chat._identifying_params),
    ]
    for text in shown:
        assert WRONG_KEY not in text


def test_base_url_configures_a_pinned_ollama(local_server: LocalServer) -> None:
    chat = ForgeChat(
        model=f"ollama:{local_server.model}",
        config=config_for({"name": "ollama", "base_url": closed_port_url()}),
        base_url=local_server.base_url,
        max_tokens=8,
        temperature=0.0,
    )
    answer = chat.invoke("Say hello.")
    route = answer.response_metadata["route"]
    assert [(a["provider"], a["ok"]) for a in route["attempts"]] == [("ollama", True)]


@pytest.mark.parametrize(
    ("model", "reason"),
    [("ollama:gemma-3-270m", "sends no key"), ("huggingface:gemma-3-270m", "in process")],
)
def test_an_api_key_for_a_provider_without_keys_is_refused_without_echoing_it(
    model: str, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        ForgeChat.model_validate({"model": model, "api_key": KEY})
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
