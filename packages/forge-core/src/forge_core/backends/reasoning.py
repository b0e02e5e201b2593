"""A request's reasoning fields, carried into each provider's wire body, and the reasoning of
earlier assistant turns sent back where a provider takes it.

A `ChatRequest` asks for thinking with ``reasoning`` (True or False), ``reasoning_effort``
(``low``, ``medium``, ``high``) and ``reasoning_budget`` (thinking tokens). Each provider takes
a different one: OpenAI-compatible servers an effort (``reasoning_effort``, OpenRouter's
``reasoning.effort``), Ollama's native API ``think`` (True or, for models that take levels
only, a level), Anthropic a token budget (``thinking.budget_tokens``). Where a provider takes
only the other kind, forge converts with one table (`EFFORT_BUDGETS`, `effort_of`); where it
has no such field, the field is left out with a debug line on the ``forge_core.parameters``
logger, never an error. What each provider carries: docs/providers.md.

Nothing here runs for a request that sets none of them: clients check
``REASONING_FIELDS.isdisjoint(request.__pydantic_fields_set__)`` first.
"""

from __future__ import annotations

import logging
from typing import Any

from forge_core.types import ChatRequest, Message, Provider, ReasoningEffort, ReasoningPart

__all__ = [
    "ANTHROPIC_MIN_BUDGET",
    "EFFORT_BUDGETS",
    "anthropic_reasoning_blocks",
    "anthropic_thinking",
    "budget_of",
    "effort_of",
    "ollama_think",
    "ollama_thinking",
    "openai_reasoning_effort",
    "reasoning_left_out",
]

_log = logging.getLogger("forge_core.parameters")

#: Thinking tokens per effort level, where a provider takes a budget (Anthropic); a budget
#: becomes the highest level whose tokens it reaches, where a provider takes levels.
EFFORT_BUDGETS: dict[ReasoningEffort, int] = {"low": 1024, "medium": 4096, "high": 16384}
#: The smallest ``budget_tokens`` Anthropic accepts.
ANTHROPIC_MIN_BUDGET = 1024
#: The level a request that asks for thinking without an effort or budget gets where a
#: provider needs one (a budget for Anthropic, a level for Ollama's level-only models).
_DEFAULT_EFFORT: ReasoningEffort = "medium"


def effort_of(request: ChatRequest) -> ReasoningEffort | None:
    """The request's effort level: its own, else the one its budget reaches, else None."""
    if request.reasoning_effort is not None:
        return request.reasoning_effort
    budget = request.reasoning_budget
    if budget is None:
        return None
    reached = [level for level, tokens in EFFORT_BUDGETS.items() if budget >= tokens]
    return reached[-1] if reached else "low"


def budget_of(request: ChatRequest) -> int:
    """The request's thinking budget in tokens: its own, else its effort's (`EFFORT_BUDGETS`),
    else the default effort's."""
    if request.reasoning_budget is not None:
        return request.reasoning_budget
    return EFFORT_BUDGETS[request.reasoning_effort or _DEFAULT_EFFORT]


def openai_reasoning_effort(
    request: ChatRequest, *, provider: str, takes_effort: bool, off: str | None
) -> str | None:
    """The ``reasoning_effort`` value to send an OpenAI-compatible server, or None to send
    none. ``takes_effort``: the server documents the field; ``off``: the value that turns
    thinking off (Ollama's ``none``), None when it has none. A budget goes as the level it
    reaches; ``reasoning=True`` alone leaves the model's default (these servers have no
    switch that turns thinking on)."""
    if request.reasoning is False:
        if takes_effort and off is not None:
            return off
        _log.debug("%s has no switch that turns reasoning off; reasoning=False left out", provider)
        return None
    effort = effort_of(request)
    if effort is None:
        _log.debug("%s thinks as the model does by default; reasoning=True adds nothing", provider)
        return None
    if not takes_effort:
        _log.debug("%s takes no reasoning_effort; left out", provider)
        return None
    if request.reasoning_effort is None:
        _log.debug(
            "%s takes an effort, not a budget: reasoning_budget sent as %r", provider, effort
        )
    return effort


def ollama_think(request: ChatRequest, model: str, configured: bool | str | None) -> Any:
    """The native API's ``think`` for ``request``: ``configured`` (the config's ``think``)
    unless the request sets a reasoning field; False for ``reasoning=False``; True, or a level
    for models that take levels only (``gpt-oss``), when it asks for thinking."""
    if request.reasoning is False:
        return False
    if not request.wants_reasoning:
        return configured
    if model.startswith("gpt-oss"):
        return effort_of(request) or _DEFAULT_EFFORT
    if request.reasoning_effort is not None or request.reasoning_budget is not None:
        _log.debug(
            "ollama: %s takes think on or off, no level; the effort or budget left out", model
        )
    return True


def anthropic_thinking(request: ChatRequest, body: dict[str, Any], answer_tokens: int) -> None:
    """Put Anthropic's ``thinking`` into a Messages ``body`` when ``request`` asks for it.

    The API's rules for thinking are kept: ``budget_tokens`` at least `ANTHROPIC_MIN_BUDGET`
    and below ``max_tokens`` (which counts thinking too, so when the request's ``max_tokens``
    does not exceed the budget the budget is added to it; ``answer_tokens`` is the answer's
    share when the request sets none); no ``temperature`` but 1, no ``top_k``, ``top_p`` from
    0.95 only (others are left out); a tool choice that forces a call cannot be combined with
    thinking, so thinking is left out then. Each leaving-out is a debug line."""
    if not request.wants_reasoning:
        return
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        _log.debug("anthropic cannot think while a tool call is forced; reasoning left out")
        return
    budget = max(budget_of(request), ANTHROPIC_MIN_BUDGET)
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body["max_tokens"] <= budget:
        body["max_tokens"] = budget + (request.max_tokens or answer_tokens)
    left_out = []
    if body.get("temperature", 1) != 1:
        left_out.append("temperature")
        del body["temperature"]
    if "top_k" in body:
        left_out.append("top_k")
        del body["top_k"]
    if body.get("top_p", 1) < 0.95:
        left_out.append("top_p")
        del body["top_p"]
    if left_out:
        _log.debug("anthropic takes no %s while thinking; left out", ", ".join(left_out))


# -- reasoning sent back ----------------------------------------------------------------------


def anthropic_reasoning_blocks(message: Message) -> list[dict[str, Any]]:
    """An assistant message's `ReasoningPart`s that Anthropic takes back, as its blocks (they
    open the assistant turn, before its text and ``tool_use`` blocks): signed ``thinking``
    and ``redacted_thinking`` that Anthropic produced. It requires them back in a turn that
    called tools and verifies the signature, so thinking without one (another provider's,
    or text a framework kept without its signature) is left out with a debug line."""
    if not isinstance(message.content, list):
        return []
    blocks: list[dict[str, Any]] = []
    left_out = 0
    for part in message.content:
        if not isinstance(part, ReasoningPart):
            continue
        if part.provider is not Provider.ANTHROPIC:
            left_out += 1
        elif part.redacted is not None:
            blocks.append({"type": "redacted_thinking", "data": part.redacted})
        elif part.signature is not None:
            blocks.append({"type": "thinking", "thinking": part.text, "signature": part.signature})
        else:
            left_out += 1
    if left_out:
        _log.debug(
            "anthropic takes back only its own signed thinking; %d part(s) left out", left_out
        )
    return blocks


def ollama_thinking(message: Message) -> str | None:
    """The text of an assistant message's `ReasoningPart`s, for the native API's
    ``thinking`` (the model's template decides what of it the model sees); redacted parts,
    which have no text, are left out with a debug line."""
    if not isinstance(message.content, list):
        return None
    parts = [part for part in message.content if isinstance(part, ReasoningPart)]
    if any(part.redacted is not None for part in parts):
        _log.debug("ollama takes no redacted thinking; left out")
    return "".join(part.text for part in parts) or None


def reasoning_left_out(message: Message, *, provider: str) -> None:
    """For a provider that takes no reasoning back (OpenAI-compatible servers: DeepSeek
    refuses it): a debug line when ``message`` carries some."""
    if isinstance(message.content, list) and any(
        isinstance(part, ReasoningPart) for part in message.content
    ):
        _log.debug("%s takes no reasoning back; left out of the history", provider)
