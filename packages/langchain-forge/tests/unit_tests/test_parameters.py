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


def test_ollama_options_are_set_on_the_constructor_by_bind_and_per_call() -> None:
    chat, cloud = _chat(num_ctx=8192, repeat_penalty=1.2, keep_alive="10m")
    chat.invoke("hi")
    chat.bind(num_ctx=16384, keep_alive=0).invoke("hi")
    first, second = _sent(cloud, 0), _sent(cloud, 1)
    assert (first.num_ctx, first.repeat_penalty, first.keep_alive) == (8192, 1.2, "10m")
    assert (second.num_ctx, second.repeat_penalty, second.keep_alive) == (16384, 1.2, 0)


def test_num_predict_is_refused_naming_max_tokens() -> None:
    with pytest.raises(ValidationError, match="'num_predict' \\(forge calls it 'max_tokens'\\)"):
        ForgeChat(num_predict=128)
    chat, cloud = _chat()
    with pytest.raises(TypeError, match="forge calls it 'max_tokens'"):
        chat.invoke("hi", num_predict=128)
    assert cloud.calls == []


def test_model_kwargs_is_extra_body_by_its_chatopenai_name() -> None:
    chat, cloud = _chat(model_kwargs={"min_p": 0.05})
    assert chat.extra_body == {"min_p": 0.05}
    chat.invoke("hi")
    chat.bind(model_kwargs={"mirostat": 2}).invoke("hi")
    assert _sent(cloud, 0).extra_body == {"min_p": 0.05}
    assert _sent(cloud, 1).extra_body == {"mirostat": 2}


def test_model_kwargs_beside_extra_body_or_holding_an_option_is_refused() -> None:
    with pytest.raises(ValidationError, match="two names for the same raw request fields"):
        ForgeChat(model_kwargs={"a": 1}, extra_body={"b": 2})
    with pytest.raises(ValidationError, match="top_p in model_kwargs: forge has them as options"):
        ForgeChat(model_kwargs={"top_p": 0.5})
    chat, cloud = _chat()
    with pytest.raises(TypeError, match="seed in model_kwargs"):
        chat.invoke("hi", model_kwargs={"seed": 1})
    assert cloud.calls == []
