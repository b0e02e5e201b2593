"""The in-process pool's instances and prefix affinity (#32), on stand-in instances.

With ``parallel: N`` a request takes the idle instance whose last prompt shares the most
leading messages with its own (llama-cpp-python keeps that prefix in the instance's KV cache);
an idle instance is always taken before waiting for a busy one. The real embedded model shows
the reuse itself in tests/local/test_local_gguf_prefix_reuse.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

from forge_core import ChatRequest, Message
from forge_core.backends.local.pool import LoadedModel


class Instance:
    def __init__(self, name: str) -> None:
        self.name = name

    def close(self) -> None:
        pass


def _loaded(count: int) -> LoadedModel:
    return LoadedModel(
        name="m",
        path=Path("m.gguf"),
        format="gguf",
        purpose="chat",
        isolation="thread",
        keep_alive=None,
        instances=[Instance(f"i{n}") for n in range(count)],
        load_seconds=0.0,
        resident_bytes=0,
    )


def _turn(topic: str, turn: int) -> ChatRequest:
    messages = [Message(role="system", content=f"You know {topic}.")]
    for i in range(turn):
        messages.append(Message(role="user", content=f"{topic} {i}?"))
        if i < turn - 1:
            messages.append(Message(role="assistant", content=f"{topic} {i}."))
    return ChatRequest(messages=messages)


def _serve(loaded: LoadedModel, request: ChatRequest) -> str:
    instance = loaded.take(1.0, request)
    assert instance is not None
    loaded.give_back(instance)
    return str(instance.name)


def test_each_conversation_goes_back_to_the_instance_that_holds_it() -> None:
    loaded = _loaded(2)
    home = {topic: _serve(loaded, _turn(topic, 1)) for topic in ("cats", "owls")}
    # The idle instance taken first is the one idle longest: the two conversations part.
    assert sorted(home.values()) == ["i0", "i1"]
    for turn in range(2, 6):
        # Same order every turn: a queue of instances would alternate them.
        for topic in ("cats", "cats", "owls", "cats", "owls", "owls"):
            assert _serve(loaded, _turn(topic, turn)) == home[topic]
    assert loaded.stats()["prefix_hits"] == 4 * 6


def test_a_new_conversation_takes_the_instance_idle_longest_and_keeps_the_others_warm() -> None:
    loaded = _loaded(3)
    first = [_serve(loaded, _turn(topic, 1)) for topic in ("cats", "owls", "tea")]
    assert first == ["i0", "i1", "i2"]
    assert _serve(loaded, _turn("cats", 2)) == "i0"
    # i1 has been idle longest: the new conversation takes it, cats and tea stay warm.
    assert _serve(loaded, _turn("bees", 1)) == "i1"
    assert _serve(loaded, _turn("tea", 2)) == "i2"
    assert _serve(loaded, _turn("cats", 3)) == "i0"


def test_a_busy_holder_is_not_waited_for_when_another_instance_is_idle() -> None:
    loaded = _loaded(2)
    home = _serve(loaded, _turn("cats", 1))
    _serve(loaded, _turn("owls", 1))
    held = loaded.take(1.0, _turn("owls", 2))  # owls' own instance, now busy
    assert held is not None and held.name != home
    busy = loaded.take(1.0, _turn("tea", 1))  # takes cats' instance: the only idle one
    assert busy is not None and busy.name == home
    # Both busy: the next request waits for whichever is given back first.
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(_serve(loaded, _turn("cats", 2))))
    waiter.start()
    loaded.give_back(held)
    waiter.join(10)
    assert got == [held.name]
    loaded.give_back(busy)


def test_nothing_idle_until_the_deadline_is_none() -> None:
    loaded = _loaded(1)
    taken = loaded.take(1.0, _turn("cats", 1))
    assert taken is not None
    assert loaded.take(0.0, _turn("cats", 2)) is None
