"""Prefix digests (`forge_core.prefixes`, #32): stable across processes, cumulative, canonical.

They are shared through Redis by a fleet and used by the in-process pool, so the same
conversation must give the same digests in every process, whatever its hash seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from forge_core import ChatRequest, Message, ToolCall
from forge_core.prefixes import common_prefix, prefix_digests

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def _request() -> ChatRequest:
    return ChatRequest(
        messages=[
            Message(role="system", content="You are terse."),
            Message(role="user", content="Weather in Oslo?"),
            Message(
                role="assistant",
                tool_calls=[ToolCall(id="c1", name="f", arguments={"b": 1, "a": [2]})],
            ),
            Message(role="tool", tool_call_id="c1", content="rain"),
            Message(role="assistant", content="Rain."),
        ],
        tools=TOOLS,
    )


_CHILD = """
import json
from forge_core import ChatRequest
from forge_core.prefixes import prefix_digests
request = ChatRequest.model_validate_json({payload!r})
print(json.dumps([digest.hex() for digest in prefix_digests(request)]))
"""


def test_the_digests_are_the_same_in_another_process_with_another_hash_seed() -> None:
    request = _request()
    here = [digest.hex() for digest in prefix_digests(request)]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD.format(payload=request.model_dump_json())],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(child.stdout) == here
    assert len(here) == 5  # the system prompt and tools, then four messages


def test_every_field_a_server_renders_changes_the_digest() -> None:
    base = prefix_digests(_request())
    variants = [
        Message(role="tool", tool_call_id="c2", content="rain"),
        Message(role="tool", tool_call_id="c1", content="snow"),
        Message(role="user", tool_call_id="c1", content="rain"),
        Message(role="tool", tool_call_id="c1", content="rain", name="f"),
    ]
    for variant in variants:
        request = _request()
        request.messages[3] = variant
        changed = prefix_digests(request)
        assert changed[:3] == base[:3] and changed[3] != base[3]
    request = _request()
    request.messages[2] = Message(
        role="assistant", tool_calls=[ToolCall(id="c1", name="f", arguments={"a": [2], "b": 2})]
    )
    assert prefix_digests(request)[2] != base[2]
    # The tool calls' arguments are canonical: key order does not matter.
    request.messages[2] = Message(
        role="assistant", tool_calls=[ToolCall(id="c1", name="f", arguments={"a": [2], "b": 1})]
    )
    assert prefix_digests(request) == base


def test_none_and_empty_content_differ_and_the_head_is_marked() -> None:
    empty = prefix_digests(ChatRequest(messages=[Message(role="user", content="")]))
    none = prefix_digests(ChatRequest(messages=[Message(role="user", content=None)]))
    assert empty != none
    # A system prompt alone is a head, not the same as a first system message of a longer run.
    system = Message(role="system", content="s")
    user = Message(role="user", content="u")
    assert (
        prefix_digests(ChatRequest(messages=[system, user]))[0]
        != prefix_digests(ChatRequest(messages=[user]))[0]
    )


def test_common_prefix_counts_the_shared_leading_messages() -> None:
    long = prefix_digests(_request())
    short = prefix_digests(ChatRequest(messages=_request().messages[:3], tools=TOOLS))
    assert common_prefix(long, short) == 3
    assert common_prefix(short, long) == 3
    other = prefix_digests(ChatRequest(messages=[Message(role="user", content="x")]))
    assert common_prefix(long, other) == 0
    assert common_prefix((), long) == 0


def test_remembered_steps_are_bounded_oldest_out_and_never_change_a_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More distinct messages than `prefix_digests` remembers: the oldest steps go, and a
    conversation met again (remembered or not) gets the digests it got the first time."""
    from collections import OrderedDict

    from forge_core import prefixes

    monkeypatch.setattr(prefixes, "_STEPS_REMEMBERED", 64)
    monkeypatch.setattr(prefixes, "_steps", OrderedDict())

    def conversation(n: int) -> ChatRequest:
        return ChatRequest(
            messages=[
                Message(role="system", content="You are terse."),
                Message(role="user", content=f"question {n}"),
                Message(role="assistant", content=f"answer {n}"),
            ]
        )

    first = [prefix_digests(conversation(n)) for n in range(100)]
    assert len(prefixes._steps) == 64
    again = [prefix_digests(conversation(n)) for n in range(100)]
    assert again == first
    assert len({digests[-1] for digests in first}) == 100


def test_met_again_only_the_head_and_the_tool_calls_are_hashed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An agent's conversation resends every earlier message: the second time, its text
    messages and its tools' results cost a dict read each, and only the head (system prompt
    and tools) and the assistant's tool calls are hashed again; the digests are the same, and
    a result for another call id is a step of its own."""
    from collections import OrderedDict

    from forge_core import prefixes

    monkeypatch.setattr(prefixes, "_steps", OrderedDict())
    hashed: list[bytes] = []
    sha1 = prefixes._sha1

    def counting(data: bytes, **options: bool) -> object:
        hashed.append(data)
        return sha1(data, **options)

    monkeypatch.setattr(prefixes, "_sha1", counting)
    first = prefix_digests(_request())
    assert len(hashed) == 5  # the head, then each of the four messages
    hashed.clear()
    assert prefix_digests(_request()) == first
    assert len(hashed) == 2  # the head and the tool call
    other = _request()
    other.messages[3] = Message(role="tool", tool_call_id="c2", content="rain")
    hashed.clear()
    changed = prefix_digests(other)
    assert changed[:3] == first[:3] and changed[3] != first[3] and changed[4] != first[4]
    assert len(hashed) == 4  # the head, the tool call, the new result, and what follows it
