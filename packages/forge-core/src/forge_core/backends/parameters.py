"""The optional generation parameters of a request, carried into each provider's wire body.

A `ChatRequest` may set any of `forge_core.SAMPLING_PARAMETERS` (``top_p``, ``seed`` ...) and
an ``extra_body``. Each client names, per parameter, the field its provider takes it as; a
parameter the provider has no field for is left out with a ``logging.debug`` line naming it,
never an error, so a fallback to a provider with fewer knobs still answers. What each provider
carries and leaves out is listed in docs/providers.md.

Nothing here runs for a request that sets none of them: `ChatRequest.sampling_parameters`
is empty then, and ``extra_body`` is None.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from forge_core.types import SAMPLING_PARAMETERS, ChatRequest

__all__ = ["OPTIONAL_FIELDS", "carry_parameters", "leave_out_extra_body", "merge_extra_body"]

_log = logging.getLogger("forge_core.parameters")

#: The request fields this module carries. A client on a hot path checks
#: ``OPTIONAL_FIELDS.isdisjoint(request.__pydantic_fields_set__)`` (one set comparison) and
#: calls nothing here for a request that sets none of them.
OPTIONAL_FIELDS: frozenset[str] = SAMPLING_PARAMETERS | {"extra_body"}


def carry_parameters(
    request: ChatRequest,
    target: dict[str, Any],
    fields: Mapping[str, str],
    *,
    provider: str,
) -> None:
    """Put each sampling parameter ``request`` sets into ``target`` under its name in
    ``fields`` (forge's name -> the provider's); the ones ``fields`` lacks are left out with a
    debug line naming them and ``provider``."""
    if SAMPLING_PARAMETERS.isdisjoint(request.__pydantic_fields_set__):
        return  # the common case, in a set comparison
    left_out = []
    for name, value in request.sampling_parameters().items():
        wire_name = fields.get(name)
        if wire_name is None:
            left_out.append(name)
        else:
            target[wire_name] = value
    if left_out:
        _log.debug("%s takes no %s; left out", provider, ", ".join(sorted(left_out)))


def merge_extra_body(request: ChatRequest, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the request's ``extra_body`` merged in last (its keys win; a nested
    mapping is merged one level deep, so ``{"options": {...}}`` adds to Ollama's options)."""
    extra = request.extra_body
    if not extra:
        return body
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            body[key] = {**current, **value}
        else:
            body[key] = value
    return body


def leave_out_extra_body(request: ChatRequest, *, provider: str) -> None:
    """For a provider with no request body to merge into: a debug line naming the
    ``extra_body`` keys left out."""
    if request.extra_body:
        _log.debug("%s takes no extra_body; left out %s", provider, ", ".join(request.extra_body))
