"""Every generation parameter set on `ForgeChat`, by ``.bind`` or per call reaches the
`forge_core.ChatRequest` forge routes; a misspelt option is refused with the closest name."""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import ProviderUnavailable
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_forge import ForgeChat
from pydantic import ValidationError


def _chat(**fields: Any) -> tuple[ForgeChat, ScriptedBackend]:
    cloud = ScriptedBackend(Reply("ok"), Reply("ok"), model="gpt-test")
    down = ScriptedBackend(ProviderUnavailable("refused"), provider="ollama")
    config = config_for({"name": "ollama"}, {"name": "openai"})
    chat = ForgeChat(config=config, backends={"ollama": down, "openai": cloud}, **fields)
    return chat, cloud


def _sent(backend: ScriptedBackend, index: int = 0) -> Any:
    request = backend.calls[index].request
    assert request is not None
    return request


def test_constructor_parameters_reach_the_request() -> None:
    chat, cloud = _chat(
        top_p=0.5,
        top_k=20,
        seed=7,
        frequency_penalty=0.1,
        presence_penalty=0.2,
        logit_bias={"42": 1.0},
        logprobs=True,
        top_logprobs=2,
        parallel_tool_calls=False,
        user="u1",
        service_tier="flex",
        extra_body={"min_p": 0.05},
    )
    chat.invoke("hi")
    request = _sent(cloud)
    assert (request.top_p, request.top_k, request.seed) == (0.5, 20, 7)
    assert (request.frequency_penalty, request.presence_penalty) == (0.1, 0.2)
    assert (request.logit_bias, request.logprobs, request.top_logprobs) == ({"42": 1.0}, True, 2)
    assert (request.parallel_tool_calls, request.user, request.service_tier) == (
        False,
        "u1",
        "flex",
    )
    assert request.extra_body == {"min_p": 0.05}


def test_bind_and_invoke_kwargs_set_them_per_call_and_win() -> None:
    chat, cloud = _chat(seed=1)
    chat.bind(top_p=0.3, seed=9).invoke("hi")
    chat.invoke("hi", frequency_penalty=0.4)
    assert (_sent(cloud, 0).top_p, _sent(cloud, 0).seed) == (0.3, 9)
    assert (_sent(cloud, 1).frequency_penalty, _sent(cloud, 1).seed) == (0.4, 1)


def test_unset_parameters_stay_unset() -> None:
    chat, cloud = _chat()
    chat.invoke("hi")
    assert _sent(cloud).model_fields_set == {"messages"}


def test_identifying_params_include_the_set_parameters() -> None:
    assert ForgeChat(seed=3)._identifying_params["seed"] == 3
    assert "seed" not in ForgeChat()._identifying_params


def test_a_misspelt_option_is_refused_with_the_closest_name() -> None:
    with pytest.raises(ValidationError, match="'temprature' \\(did you mean 'temperature'\\?\\)"):
        ForgeChat(temprature=0.2)


def test_a_misspelt_call_option_is_refused_with_the_closest_name() -> None:
    chat, cloud = _chat()
    with pytest.raises(TypeError, match="'sed' \\(did you mean 'seed'\\?\\)"):
        chat.bind(sed=3).invoke("hi")
    assert cloud.calls == []
