"""`ToolCallAccumulator`: a stream's `ToolCallDelta` fragments joined back into tool calls.

Providers already normalise their wire fragments as they stream (``providers/_common``'s
``ToolCallAssembler`` maps each provider's key to an ordinal ``index`` and mints missing ids);
this is the consumer side of that contract, so a framework wrapper that shows "the calls so
far" while streaming does not re-implement the joining rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from forge_core.types import ToolCall, ToolCallDelta

__all__ = ["ToolCallAccumulator", "parse_arguments", "resolve_tool_choice"]


@dataclass
class _Call:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


class ToolCallAccumulator:
    """Joins streamed `ToolCallDelta`s into whole tool calls, one per ``index``.

    Fragments are grouped by ``index`` only, never by id or name, so two identical calls in one
    answer stay two calls. The first non-empty ``id`` and ``name`` of an index win (a server
    that repeats the name on every fragment gives it once); ``arguments`` fragments are
    concatenated in arrival order. Calls are listed by ascending ``index``, whatever order their
    fragments came in. A call that never got an id is given ``call_<index>``.

    Example:
        ```python
        calls = ToolCallAccumulator()
        for chunk in forge.stream("What is the weather in Paris?", tools=tools):
            calls.add(chunk.tool_call_deltas)
        print(calls.calls())
        ```
    """

    def __init__(self) -> None:
        self._calls: dict[int, _Call] = {}

    def add(self, deltas: Iterable[ToolCallDelta]) -> None:
        """Fold fragments in (typically one chunk's ``tool_call_deltas``)."""
        for delta in deltas:
            call = self._calls.setdefault(delta.index, _Call())
            if delta.id and not call.id:
                call.id = delta.id
            if delta.name and not call.name:
                call.name = delta.name
            if delta.arguments:
                call.arguments.append(delta.arguments)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def __len__(self) -> int:
        return len(self._calls)

    def partial(self) -> list[ToolCallDelta]:
        """The calls so far, one joined `ToolCallDelta` per index.

        ``arguments`` is the JSON text received so far (not necessarily complete JSON yet);
        ``id`` is filled as in `calls`; ``name`` is None until a fragment named the call.
        """
        return [
            ToolCallDelta(
                index=index, id=_id(index, call), name=call.name, arguments="".join(call.arguments)
            )
            for index, call in sorted(self._calls.items())
        ]

    def calls(self) -> list[ToolCall]:
        """The complete calls, arguments parsed.

        Raises `ValueError` when a call's arguments are not a JSON object (the stream was cut
        off, or the model wrote invalid JSON); an empty argument text is ``{}``.
        """
        return [
            ToolCall(
                id=_id(index, call),
                name=call.name or "",
                arguments=parse_arguments("".join(call.arguments)),
            )
            for index, call in sorted(self._calls.items())
        ]


def _id(index: int, call: _Call) -> str:
    return call.id or f"call_{index}"


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments as a dict, from a JSON string, a dict, or nothing."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError("tool call arguments are not a JSON object")
    return parsed


def resolve_tool_choice(
    choice: str | bool | Mapping[str, Any] | None, tools: Sequence[Mapping[str, Any]]
) -> str | dict[str, Any] | None:
    """A tool choice in any wrapper's words as the one OpenAI shape `ChatRequest` takes.

    Every framework package calls this, so the same intent sends the same request:

    - ``None`` or ``False``: unset (every provider then lets the model decide);
    - ``"auto"``, ``"none"``: as they are;
    - ``"required"``, ``"any"`` (LangChain) or ``True``: some tool must be called; with a
      single tool, that tool by name, which means the same and is understood by more
      OpenAI-compatible servers;
    - a tool's name: that tool;
    - a mapping: an OpenAI ``tool_choice`` object, as it is.

    ``tools`` are OpenAI ``tools`` entries. Anything else raises ``ValueError`` naming them.
    """
    if choice is None or choice is False:
        return None
    if isinstance(choice, Mapping):
        return dict(choice)
    names = [tool["function"]["name"] for tool in tools]
    if choice is True or choice in ("any", "required"):
        if len(names) == 1:
            return {"type": "function", "function": {"name": names[0]}}
        return "required"
    if choice in ("auto", "none"):
        return choice
    if isinstance(choice, str) and choice in names:
        return {"type": "function", "function": {"name": choice}}
    raise ValueError(
        f"tool_choice {choice!r} is neither 'auto', 'none', 'any', 'required' nor the name of "
        f"a given tool ({', '.join(names) or 'no tools given'})"
    )
