"""Every generation parameter set on `ForgeLLM` or per call reaches the
`forge_core.ChatRequest` forge routes; a misspelt option is refused with the closest name."""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import ProviderUnavailable
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llamaindex_forge import ForgeLLM
from pydantic import ValidationError

USER = [ChatMessage(role=MessageRole.USER, content="hi")]


def _llm(**fields: Any) -> tuple[ForgeLLM, ScriptedBackend]:
    cloud = ScriptedBackend(Reply("ok"), Reply("ok"), model="gpt-test")
    down = ScriptedBackend(ProviderUnavailable("refused"), provider="ollama")
    config = config_for({"name": "ollama"}, {"name": "openai"})
    llm = ForgeLLM(config=config, backends={"ollama": down, "openai": cloud}, **fields)
    return llm, cloud


def _sent(backend: ScriptedBackend, index: int = 0) -> Any:
    request = backend.calls[index].request
    assert request is not None
    return request


def test_field_parameters_reach_the_request() -> None:
    llm, cloud = _llm(
        top_p=0.5, top_k=20, seed=7, logprobs=True, user="u1", extra_body={"min_p": 0.05}
    )
    llm.chat(USER)
    request = _sent(cloud)
    assert (request.top_p, request.top_k, request.seed) == (0.5, 20, 7)
    assert (request.logprobs, request.user, request.extra_body) == (True, "u1", {"min_p": 0.05})


def test_call_kwargs_set_them_per_call_and_win() -> None:
    llm, cloud = _llm(seed=1)
    llm.chat(USER, seed=9, presence_penalty=0.2)
    llm.complete("hi", service_tier="flex")
    assert (_sent(cloud, 0).seed, _sent(cloud, 0).presence_penalty) == (9, 0.2)
    assert (_sent(cloud, 1).seed, _sent(cloud, 1).service_tier) == (1, "flex")


def test_unset_parameters_stay_unset() -> None:
    llm, cloud = _llm()
    llm.chat(USER)
    assert _sent(cloud).model_fields_set == {"messages"}


def test_a_misspelt_option_is_refused_with_the_closest_name() -> None:
    with pytest.raises(ValidationError, match="'temprature' \\(did you mean 'temperature'\\?\\)"):
        ForgeLLM(temprature=0.2)


def test_a_misspelt_keyword_is_refused_with_the_closest_name() -> None:
    llm, cloud = _llm()
    with pytest.raises(TypeError, match="'top_pp' \\(did you mean 'top_p'\\?\\)"):
        llm.chat(USER, top_pp=0.3)
    assert cloud.calls == []


def test_ollama_options_are_fields_and_keywords() -> None:
    llm, cloud = _llm(num_ctx=8192, repeat_penalty=1.2, keep_alive="10m")
    llm.chat(USER)
    llm.chat(USER, num_ctx=16384, keep_alive=-1)
    first, second = _sent(cloud, 0), _sent(cloud, 1)
    assert (first.num_ctx, first.repeat_penalty, first.keep_alive) == (8192, 1.2, "10m")
    assert (second.num_ctx, second.repeat_penalty, second.keep_alive) == (16384, 1.2, -1)


def test_num_predict_is_refused_naming_max_tokens() -> None:
    with pytest.raises(ValidationError, match="'num_predict' \\(forge calls it 'max_tokens'\\)"):
        ForgeLLM(num_predict=128)
    llm, cloud = _llm()
    with pytest.raises(TypeError, match="forge calls it 'max_tokens'"):
        llm.chat(USER, num_predict=128)
    assert cloud.calls == []
