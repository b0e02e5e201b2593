"""Prefix affinity on two real llama-cpp-python servers (#32): balanced in one order entry, two
conversations with long system prompts, turns interleaved; every turn after the first goes
back to the server that served the conversation, where llama-cpp-python reuses the prefix it
holds. No timed asserts: the time to the first token of each turn is printed for the record
(``pytest -s``); the benchmarks compare it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core import Forge, ForgeConfig, Message
from forge_test_support import LocalServer, run_local_server

pytestmark = pytest.mark.local_server


@pytest.fixture(scope="module")
def two_servers(embedded_model: Path) -> Iterator[tuple[LocalServer, LocalServer]]:
    # chatml keeps the system prompt (the gemma format drops it), so the prompts are long.
    with (
        run_local_server(embedded_model, chat_format="chatml") as one,
        run_local_server(embedded_model, chat_format="chatml") as two,
    ):
        yield one, two


def _endpoint(name: str, server: LocalServer) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "openai",
        "base_url": server.openai_base_url,
        "default_model": server.model,
        "api_key_env": None,
        "dialect": "llama-cpp",
    }


def _system(topic: str) -> str:
    facts = " ".join(f"Fact {i} about {topic}: it is number {i} of many." for i in range(60))
    return f"You answer questions about {topic} in one short sentence. {facts}"


def test_each_conversation_goes_back_to_the_server_that_holds_its_prompt(
    two_servers: tuple[LocalServer, LocalServer],
) -> None:
    one, two = two_servers
    config = ForgeConfig.model_validate(
        {
            "model_preferences": {"local_first": False},
            "providers": {
                "endpoints": [_endpoint("box-1", one), _endpoint("box-2", two)],
                "fallback": {"order": ["openai"]},
            },
        }
    )
    forge = Forge(config, env={})
    conversations = {
        topic: [Message(role="system", content=_system(topic))] for topic in ("cats", "owls")
    }
    served: dict[str, list[str | None]] = {topic: [] for topic in conversations}
    reasons: dict[str, list[str | None]] = {topic: [] for topic in conversations}
    ttft: dict[str, list[float]] = {topic: [] for topic in conversations}
    for turn in range(3):
        for topic, messages in conversations.items():
            messages.append(Message(role="user", content=f"Question {turn} about {topic}?"))
            chunks = list(forge.stream(messages, max_tokens=8, temperature=0))
            route = chunks[-1].route
            assert route is not None
            served[topic].append(route.deployment)
            reasons[topic].append(route.attempts[-1].affinity)
            ttft[topic].append(route.ttft_ms or 0.0)
            text = "".join(chunk.content for chunk in chunks)
            messages.append(Message(role="assistant", content=text))
    print(f"\nTTFT ms by turn: {ttft}; affinity: {forge.stats()['affinity']}")
    # The two conversations start on the two servers and stay there.
    assert {served["cats"][0], served["owls"][0]} == {"box-1", "box-2"}
    for topic in conversations:
        assert served[topic] == [served[topic][0]] * 3
        assert reasons[topic][1:] == ["prefix:2", "prefix:4"]
    assert forge.stats()["affinity"]["hits"] == 4
