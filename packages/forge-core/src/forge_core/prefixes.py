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


#: How many steps (a prefix's chain key -> its digest) `prefix_digests` remembers: more than
#: the messages of the 10,000 prefixes a busy router's index holds, so that every earlier
#: message of a conversation that comes back costs a dict read rather than a SHA-1.
_STEPS_REMEMBERED = 16_384
#: chain key -> digest, oldest first. A chain key is Python's hash of (the key before, role,
#: content, tool_call_id, name), cheap to work out (a string caches its hash) and keeping no
#: content alive; it is salted per process, which is fine for a cache of this process's own.
#: Two prefixes would have to collide on 64 bits for one to take the other's digest, and that
#: sends one request to a server lacking its prompt. An OrderedDict, not a dict: deleting a
#: dict's first key over and over leaves deleted slots at its front that every later
#: ``next(iter(...))`` walks past until the dict is resized.
_steps: OrderedDict[int, bytes] = OrderedDict()


def _first_seen(chain: int, before: bytes, message: Message) -> bytes:
    """The digest of the text ``message`` (no tool calls) after the prefix whose digest is
    ``before`` (and chain key ``chain``), remembered for the next time."""
    digest = _sha1(before + _encoded(message), usedforsecurity=False).digest()[:8]
    _steps[chain] = digest
    if len(_steps) > _STEPS_REMEMBERED:
        # The oldest out; another thread may be doing the same (no lock here).
        with contextlib.suppress(KeyError):
            _steps.popitem(last=False)
    return digest


def prefix_digests(request: ChatRequest) -> Digests:
    """The cumulative digests of ``request``'s message sequence: the leading system messages
    and the tools first (none when there are neither), then one per message; digest ``n - 1``
    identifies the first ``n``.

    Each is the first 8 bytes of SHA-1 over (the digest before it, the encoded message or
    head): the request is hashed once, message by message, and a text message (a tool's
    result too, not a tool call) seen after the same prefix before costs a dict read instead
    (`_steps`; a conversation resends every earlier message each turn). SHA-1 because it is the fastest stable hash in
    ``hashlib`` on both a long system prompt and a short message (CPU SHA extensions;
    blake2b is 2-3x slower on 5 kB here); it is a routing hint, not a security measure: a
    collision sends one request to a server that lacks its prompt.
    """
    messages = request.messages
    start = 0
    while start < len(messages) and messages[start].role == "system":
        start += 1
    digests: list[bytes] = []
    digest = _SEED
    sequence: Sequence[Message] = messages
    unlisted = 0  # how many leading steps of `sequence` are not digests of their own
    if request.tools:
        head = b"\x00\x03".join([_encoded(message) for message in messages[:start]])
        tools = json.dumps(request.tools, sort_keys=True, separators=(",", ":"))
        head += b"\x00\x04" + tools.encode("utf-8", "surrogatepass")
        digest = _sha1(digest + head, usedforsecurity=False).digest()[:8]
        digests.append(digest)
        sequence = messages[start:]
    elif start:
        # The system messages alone: chained as messages, then marked as the head.
        sequence = [*messages[:start], _HEAD, *messages[start:]]
        unlisted = start
    remembered, chain = _steps.get, hash(digest)
    steps: list[bytes] = []
    append = steps.append
    for message in sequence:
        # The fields themselves: each attribute of a pydantic model costs as much as its
        # whole ``__dict__``, and this loop runs for every message of every balanced request.
        fields = message.__dict__
        content = fields["content"]
        if content.__class__ is str and not fields["tool_calls"]:
            # A tool's result too (its call id and name are in the key): an agent resends them.
            chain = hash((chain, fields["role"], content, fields["tool_call_id"], fields["name"]))
            digest = remembered(chain) or _first_seen(chain, digest, message)
        else:  # tool calls, parts or no content: hashed each time
            digest = _sha1(digest + _encoded(message), usedforsecurity=False).digest()[:8]
            chain = hash(digest)
        append(digest)
    return (*digests, *steps[unlisted:])


def common_prefix(held: Sequence[bytes], digests: Sequence[bytes]) -> int:
    """How many leading messages ``digests`` shares with ``held`` (both `prefix_digests`):
    the longest ``n`` with the same digest ``n - 1``, 0 when none."""
    # Cumulative digests: equal at n - 1 means equal all the way up to n.
    for length in range(min(len(held), len(digests)), 0, -1):
        if held[length - 1] == digests[length - 1]:
            return length
    return 0
