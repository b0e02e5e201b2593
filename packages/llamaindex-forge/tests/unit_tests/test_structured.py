"""Structured prediction's route decision: JSON-schema output where the route can give it.

No model is called; the predictions themselves are in
integration_tests/test_structured_local_model.py.
"""

from __future__ import annotations

from typing import Literal

import pytest
from forge_core import Capabilities
from forge_core.testing import ScriptedBackend
from forge_test_support import config_for, embedded_in_process
from llamaindex_forge import ForgeLLM
from pydantic import BaseModel


class Colour(BaseModel):
    """A colour and whether it is warm."""

    name: Literal["red", "green", "blue", "yellow"]
    warm: bool


@pytest.fixture
def in_process_llm() -> ForgeLLM:
    # The in-process deployment, scripted: what the route can do comes from its capabilities.
    local = ScriptedBackend(
        provider="huggingface",
        capabilities=Capabilities(structured_output=True, json_mode=True),
    )
    return ForgeLLM(
        config=config_for(embedded_in_process()),
        backends={"huggingface": local},
        max_tokens=48,
        temperature=0.0,
    )


def test_in_process_route_asks_for_json_schema_output(in_process_llm: ForgeLLM) -> None:
    response_format = in_process_llm._json_schema_route(Colour)
    assert response_format is not None
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"] == Colour.model_json_schema()


def test_other_program_modes_are_left_to_llamaindex() -> None:
    llm = ForgeLLM(config=config_for(embedded_in_process()), pydantic_program_mode="llm")
    assert llm._json_schema_route(Colour) is None
