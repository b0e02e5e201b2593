"""No silent context loss on Ollama: a request Ollama's ``/v1`` would cut (it ignores
``num_ctx`` and runs models with the server's default context) goes through the native API of the
same server, sized per request, or, on a server without one, to the next candidate (a failed
attempt, then a drop); an answer whose ``prompt_eval_count`` shows the prompt was cut anyway is
a warning and a note on the route. A loopback Ollama in memory (``httpx.MockTransport``)
answering in Ollama's documented shapes (docs/providers.md)."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from forge_core import CapabilityMismatch, ChatRequest, Forge, Message, Provider, RouteTrail
from forge_core.backends import OllamaOpenAIClient
from forge_core.backends.http.ollama.native import OLLAMA_DEFAULT_NUM_CTX, cut_prompt_note
from forge_core.backends.http.pool import ClientPool
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import attempt_timeouts, config_for

BASE_URL = "http://ollama.test:11434"
#: ~10 000 tokens at forge's generous 3 characters a token: more than Ollama's 4096.
LONG = "word " * 6000


class FakeOllama(ClientPool):
    """An Ollama server in memory: ``/api/chat`` and ``/v1/chat/completions`` answer in the
    documented shapes with the given prompt token count; ``native=False`` is a server with
    only the ``/v1`` surface (``/api/*`` answer 404). Every request is kept."""

    def __init__(self, *, native: bool = True, prompt_eval_count: int = 26) -> None:
        super().__init__()
        self.native = native
        self.prompt_eval_count = prompt_eval_count
        self.sent: list[httpx.Request] = []
        self._async: httpx.AsyncClient | None = None

    def paths(self) -> list[str]:
        return [request.url.path for request in self.sent]

    def body(self, path: str) -> dict[str, Any]:
        request = next(r for r in self.sent if r.url.path == path)
        data = json.loads(request.content)
        assert isinstance(data, dict)
        return data

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        path = request.url.path
        if path.startswith("/api/") and not self.native:
            return httpx.Response(404, text="404 page not found")
        if path == "/api/version":
            return httpx.Response(200, json={"version": "0.12.3"})
        if path == "/api/ps":
            return httpx.Response(200, json={"models": []})
        if path == "/api/tags":
            return httpx.Response(200, json={"models": [{"name": "llama3.2:latest"}]})
        if path == "/api/chat":
            return self._native_chat(json.loads(request.content))
        if path == "/v1/chat/completions":
            return self._v1_chat(json.loads(request.content))
        return httpx.Response(404, json={"error": f"no {path}"})

    def _native_chat(self, body: dict[str, Any]) -> httpx.Response:
        final = {
            "model": body["model"],
            "created_at": "2025-07-07T20:22:19.184789Z",
            "message": {"role": "assistant", "content": "" if body["stream"] else "Hello."},
            "done": True,
            "done_reason": "stop",
            "total_duration": 4883583458,
            "prompt_eval_count": self.prompt_eval_count,
            "eval_count": 3,
        }
        if not body["stream"]:
            return httpx.Response(200, json=final)
        first = {**final, "message": {"role": "assistant", "content": "Hello."}, "done": False}
        for key in ("done_reason", "total_duration", "prompt_eval_count", "eval_count"):
            first.pop(key)
        lines = "".join(json.dumps(item) + "\n" for item in (first, final))
        return httpx.Response(200, text=lines, headers={"content-type": "application/x-ndjson"})

    def _v1_chat(self, body: dict[str, Any]) -> httpx.Response:
        usage = {
            "prompt_tokens": self.prompt_eval_count,
            "completion_tokens": 3,
            "total_tokens": self.prompt_eval_count + 3,
        }
        if not body["stream"]:
            return httpx.Response(
                200,
                json={
                    "id": "chatcmpl-7",
                    "object": "chat.completion",
                    "created": 1720000000,
                    "model": body["model"],
                    "system_fingerprint": "fp_ollama",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Hello."},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
            )
        base = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1720000000}
        events = [
            {
                **base,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello."}}],
            },
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": usage},
        ]
        text = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    def _new_sync_client(self, base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url, transport=httpx.MockTransport(self._answer))

    def async_client(self, base_url: str) -> httpx.AsyncClient:
        if self._async is None:
            transport = httpx.MockTransport(self._answer)
            self._async = httpx.AsyncClient(base_url=base_url, transport=transport)
        return self._async


def _client(server: FakeOllama, **options: Any) -> OllamaOpenAIClient:
    return OllamaOpenAIClient(BASE_URL, default_model="llama3.2", pool=server, **options)


def _ask(content: str = "hi", **params: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=content)], **params)


# -- /v1 or native ---------------------------------------------------------------------------


def test_a_request_that_fits_goes_through_v1_without_asking_anything() -> None:
    server = FakeOllama()
    answer = _client(server).chat(_ask(), "llama3.2", attempt_timeouts())
    assert answer.content == "Hello."
    assert server.paths() == ["/v1/chat/completions"]


def test_a_request_v1_would_cut_goes_through_the_native_api_sized_to_fit() -> None:
    server = FakeOllama(prompt_eval_count=7500)
    answer = _client(server).chat(_ask(LONG, max_tokens=500), "llama3.2", attempt_timeouts())
    assert answer.content == "Hello."
    assert server.paths() == ["/api/version", "/api/chat"]
    assert server.body("/api/chat")["options"] == {"num_predict": 500, "num_ctx": 16384}
    assert answer.route.notes == []


def test_native_only_options_go_through_the_native_api() -> None:
    server = FakeOllama()
    client = _client(server, keep_alive="5m")
    client.chat(_ask(num_ctx=8192, keep_alive="1h"), "llama3.2", attempt_timeouts())
    body = server.body("/api/chat")
    assert (body["options"], body["keep_alive"]) == ({"num_ctx": 8192}, "1h")
    assert "/v1/chat/completions" not in server.paths()


def test_a_configured_server_context_keeps_long_requests_on_v1() -> None:
    server = FakeOllama(prompt_eval_count=7500)
    _client(server, num_ctx=32768).chat(_ask(LONG), "llama3.2", attempt_timeouts())
    assert server.paths() == ["/v1/chat/completions"]


def test_llama_cpp_python_behind_the_ollama_kind_is_never_sent_natively() -> None:
    server = FakeOllama(native=False, prompt_eval_count=7500)
    answer = _client(server, dialect="llama-cpp").chat(_ask(LONG), "m", attempt_timeouts())
    assert server.paths() == ["/v1/chat/completions"]
    assert answer.route.notes == []


async def test_async_and_streamed_requests_take_the_same_path() -> None:
    server = FakeOllama(prompt_eval_count=7500)
    client = _client(server)
    answer = await client.achat(_ask(LONG), "llama3.2", attempt_timeouts())
    chunks = [chunk async for chunk in client.astream(_ask(LONG), "llama3.2", attempt_timeouts())]
    streamed = list(client.stream(_ask(LONG), "llama3.2", attempt_timeouts()))
    assert answer.content == "Hello."
    assert "".join(chunk.content for chunk in chunks + streamed) == "Hello.Hello."
    # The server was asked once whether it has the native API.
    assert server.paths() == ["/api/version", "/api/chat", "/api/chat", "/api/chat"]


# -- a server with only /v1 ------------------------------------------------------------------


def test_without_a_native_api_a_request_v1_would_cut_is_refused_then_dropped() -> None:
    server = FakeOllama(native=False)
    client = _client(server)
    with pytest.raises(CapabilityMismatch, match="4096-token context"):
        client.chat(_ask(LONG), "llama3.2", attempt_timeouts())
    assert server.paths() == ["/api/version"]
    assert client.capabilities("llama3.2").context_window == OLLAMA_DEFAULT_NUM_CTX
    # Options only the native API takes are left out on /v1 then, with a debug line.
    client.chat(_ask(repeat_penalty=1.2), "llama3.2", attempt_timeouts())
    assert "repeat_penalty" not in server.body("/v1/chat/completions")


def test_the_router_falls_back_and_then_drops_the_deployment_with_a_reason() -> None:
    server = FakeOllama(native=False)
    cloud = ScriptedBackend(Reply("from the cloud"), Reply("again"), model="gpt-4o-mini")
    forge = Forge(
        config_for({"name": "ollama"}, {"name": "openai"}),
        backends={"ollama": _client(server), "openai": cloud},
    )
    first = forge.chat(_ask(LONG))
    assert first.content == "from the cloud"
    failed = first.route.attempts[0]
    assert (failed.provider, failed.ok, failed.error_kind) == (Provider.OLLAMA, False, "capability")
    second = forge.chat(_ask(LONG))
    assert second.content == "again"
    assert [attempt.provider for attempt in second.route.attempts] == [Provider.OPENAI]
    (drop,) = [drop for drop in second.route.drops if drop.provider is Provider.OLLAMA]
    assert "(has 4096)" in drop.reason
    forge.close()


# -- a prompt cut anyway ---------------------------------------------------------------------


def test_a_cut_prompt_is_a_warning_and_a_note_on_the_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The server was started with a context forge was told nothing about and a num_ctx the
    # caller set too small: Ollama read 2048 tokens of a ~7500-token prompt.
    server = FakeOllama(prompt_eval_count=2048)
    cloud = ScriptedBackend(model="gpt-4o-mini")
    forge = Forge(
        config_for({"name": "ollama"}, {"name": "openai"}),
        backends={"ollama": _client(server), "openai": cloud},
    )
    with caplog.at_level(logging.WARNING):
        answer = forge.chat(_ask(LONG, num_ctx=2048))
    (note,) = answer.route.notes
    assert "cut the prompt to its 2048-token context: it read 2048 prompt tokens" in note
    assert "about 7500 sent" in note
    assert note in caplog.text
    assert "note: ollama cut the prompt" in answer.route.describe()
    streamed = list(forge.stream(_ask(LONG, num_ctx=2048)))
    last = streamed[-1].route
    assert last is not None and last.notes == [note]
    forge.close()


def test_a_cut_on_v1_is_noted_too() -> None:
    server = FakeOllama(prompt_eval_count=OLLAMA_DEFAULT_NUM_CTX)
    client = _client(server)
    # A prompt forge thought would fit (CJK text is about a token a character).
    prompt = "漢" * 3000
    answer = client.chat(_ask(prompt), "llama3.2", attempt_timeouts())
    assert server.paths() == ["/v1/chat/completions"]
    assert answer.route.notes and "4096-token context" in answer.route.notes[0]
    chunks = list(client.stream(_ask(prompt), "llama3.2", attempt_timeouts()))
    noted = [chunk.route for chunk in chunks if chunk.route is not None]
    assert len(noted) == 1 and noted[0].notes == answer.route.notes


def test_what_counts_as_a_cut() -> None:
    short = _ask("hello there")
    # A prompt read from Ollama's cache counts few tokens: no cut.
    assert cut_prompt_note(short, 1, 4096) is None
    assert cut_prompt_note(_ask(LONG), 7000, 16384) is None
    # The context filled up.
    assert cut_prompt_note(short, 4096, 4096) is not None
    # Longer than the context could hold at any tokenization, fewer tokens read.
    assert cut_prompt_note(_ask("x" * 80_000), 3000, 4096) is not None


def test_a_route_trail_has_no_notes_by_default() -> None:
    assert RouteTrail().notes == []
