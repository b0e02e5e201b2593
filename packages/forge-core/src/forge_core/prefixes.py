"""Stable digests of a conversation's message prefixes, for prefix affinity (#32).

A server (or an in-process instance) that answered a prompt keeps its KV cache, so the next
turn of the same conversation is cheap there. To find where, a request is reduced to the
cumulative digests of its message sequence (`prefix_digests`): digest ``n - 1`` identifies its
first ``n`` messages. The leading system messages and the tools count as the first message
(an agent resends them every turn, and a new conversation with the same ones is warm where
they were served).

The digests are stable across processes, runs and Python versions (SHA-1 over a canonical
encoding, not Python's salted ``hash``), so a fleet can share what it learned (`forge_core.routing.affinity`
with Redis state) and the in-process pool (`forge_core.backends.local.pool`) uses the same
ones. This module sits below both layers: it needs only `forge_core.types`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence

from forge_core.types import ChatRequest, Message

__all__ = ["Digests", "common_prefix", "prefix_digests"]

_sha1 = hashlib.sha1

#: The cumulative digests of a request's message prefixes (`prefix_digests`), 8 bytes each.
Digests = tuple[bytes, ...]

#: The digest "before" the first message.
_SEED = b"forge-prefix-1\x00"
#: Ends the head (the system messages) when there are no tools.
_HEAD = Message(role="system", content="\x00forge-head")


def _encoded(message: Message) -> bytes:
    """One message as bytes, canonically: role and content (a role never contains NUL, so
    the two cannot run together; None and "" differ; parts as sorted JSON after a mark), then,
    when there are any, the tool calls, tool_call_id and name as sorted JSON after a NUL."""
    content = message.content
    if isinstance(content, list):
        parts = [part.model_dump(mode="json", exclude_defaults=True) for part in content]
        encoded = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        text = f"{message.role}\x00\x05{encoded}"
    else:
        text = f"{message.role}\x00{content}" if content is not None else f"{message.role}\x01"
    if message.tool_calls or message.tool_call_id or message.name:
        extra = json.dumps(
            [
                [[call.id, call.name, call.arguments] for call in message.tool_calls],
                message.tool_call_id,
                message.name,
            ],
            sort_keys=True,
            separators=(",", ":"),
        )
        text = f"{text}\x00\x02{extra}"
    return text.encode("utf-8", "surrogatepass")


#: How many (digest before, role, content) -> digest steps `prefix_digests` remembers: more
#: than the messages of the 10,000 prefixes a busy router's index holds, so that every earlier
#: message of a conversation that comes back costs a dict read. A step is keyed by the
#: content's length and Python's hash of it, not the content (which it would keep alive: ~8 MB
#: at 500 bytes a message); two contents would have to agree on both after the same digest
#: for one to take the other's step, and that sends one request to a server lacking its prompt.
_STEPS_REMEMBERED = 16_384
#: Oldest first. An OrderedDict, not a dict: deleting a dict's first key over and over leaves
#: deleted slots at its front that every later ``next(iter(...))`` walks past until the dict
#: is resized (tens of microseconds a request once the steps outnumber the limit).
_steps: OrderedDict[tuple[bytes, str, int, int], bytes] = OrderedDict()


def _step(before: bytes, message: Message) -> bytes:
    """The digest after ``message``, from the one ``before`` it. A conversation resends every
    earlier message each turn: a plain message's step is remembered (a dict read, which
    CPython's cached string hashes make cheap, against ~1.5 us a hashlib call on a loaded
    machine), so a turn costs one hash for each new message."""
    content = message.content
    if message.tool_calls or message.tool_call_id or message.name or isinstance(content, list):
        return _sha1(before + _encoded(message), usedforsecurity=False).digest()[:8]
    key = (
        (before, message.role, -1, 0)
        if content is None
        else (before, message.role, len(content), hash(content))
    )
    digest = _steps.get(key)
    if digest is None:
        digest = _sha1(before + _encoded(message), usedforsecurity=False).digest()[:8]
        _steps[key] = digest
        if len(_steps) > _STEPS_REMEMBERED:
            # The oldest out; another thread may be doing the same (no lock on this path).
            with contextlib.suppress(KeyError):
                _steps.popitem(last=False)
    return digest


def prefix_digests(request: ChatRequest) -> Digests:
    """The cumulative digests of ``request``'s message sequence: the leading system messages
    and the tools first (none when there are neither), then one per message; digest ``n - 1``
    identifies the first ``n``.

    Each is the first 8 bytes of SHA-1 over (the digest before it, the encoded message or
    head): the request is hashed once, message by message, and messages seen before cost a
    dict read (`_step`). SHA-1 because it is the fastest stable hash in ``hashlib`` on both a
    long system prompt and a short message (CPU SHA extensions; blake2b is 2-3x slower on
    5 kB here); it is a routing hint, not a security measure: a collision sends one request
    to a server that lacks its prompt.
    """
    messages = request.messages
    start = 0
    while start < len(messages) and messages[start].role == "system":
        start += 1
    digests: list[bytes] = []
    digest = _SEED
    if request.tools:
        head = b"\x00\x03".join([_encoded(message) for message in messages[:start]])
        tools = json.dumps(request.tools, sort_keys=True, separators=(",", ":"))
        head += b"\x00\x04" + tools.encode("utf-8", "surrogatepass")
        digest = _sha1(digest + head, usedforsecurity=False).digest()[:8]
        digests.append(digest)
    elif start:
        # The system messages alone: chained as messages, then marked as the head.
        for message in messages[:start]:
            digest = _step(digest, message)
        digest = _step(digest, _HEAD)
        digests.append(digest)
    for message in messages[start:] if start else messages:
        digest = _step(digest, message)
        digests.append(digest)
    return tuple(digests)


def common_prefix(held: Sequence[bytes], digests: Sequence[bytes]) -> int:
    """How many leading messages ``digests`` shares with ``held`` (both `prefix_digests`):
    the longest ``n`` with the same digest ``n - 1``, 0 when none."""
    # Cumulative digests: equal at n - 1 means equal all the way up to n.
    for length in range(min(len(held), len(digests)), 0, -1):
        if held[length - 1] == digests[length - 1]:
            return length
    return 0
