"""llama-cpp-python's prefix reuse through forge's in-process paths, on the real embedded GGUF.

With ``parallel: 2`` two conversations take turns: each turn goes back to the instance that
holds the conversation (`LoadedModel.take`), and there llama-cpp-python evaluates only the new
tokens: the usage's ``cached_input_tokens`` (`engine._kept_prefix`: what the instance's context
keeps) says how many it kept, and with ``isolation: thread`` llama.cpp's own count of prompt
tokens evaluated (``llama_perf_context``) shows it did not evaluate them again. With
``isolation: process`` the same goes through the worker processes, which keep their instance
between requests.
"""

from __future__ import annotations

import pytest
from forge_core import ChatResponse, Forge, Message
from forge_core.backends.local import pool as _local_pool
from forge_test_support import config_for, embedded_in_process

pytestmark = pytest.mark.local_model

llama_cpp = pytest.importorskip("llama_cpp")


def _system(topic: str) -> str:
    facts = " ".join(f"Fact {i} about {topic}: it is item {i} of the list." for i in range(12))
    return f"You answer questions about {topic} in one short sentence. {facts}"


def _prompt_tokens_evaluated() -> int:
    """llama.cpp's count of prompt tokens evaluated, over every loaded chat instance."""
    return sum(
        llama_cpp.llama_perf_context(instance._ctx.ctx).n_p_eval
        for loaded in _local_pool.loaded_models()
        for instance in loaded.instances
    )


def _tokens(response: ChatResponse) -> tuple[int, int]:
    usage = response.usage
    assert usage is not None
    return usage.input_tokens, usage.cached_input_tokens


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_each_turn_goes_back_to_its_instance_and_only_new_tokens_are_evaluated(
    isolation: str,
) -> None:
    forge = Forge(config_for(embedded_in_process(parallel=2, isolation=isolation)), env={})
    histories = {
        topic: [Message(role="system", content=_system(topic))] for topic in ("cats", "owls")
    }
    answers: dict[str, list[ChatResponse]] = {topic: [] for topic in histories}
    evaluated: list[tuple[str, int, int]] = []

    def turn(topic: str) -> ChatResponse:
        messages = histories[topic]
        messages.append(Message(role="user", content=f"Question {len(answers[topic])}?"))
        before = _prompt_tokens_evaluated() if isolation == "thread" else 0
        response = forge.chat(list(messages), max_tokens=4, temperature=0)
        if isolation == "thread":
            evaluated.append((topic, len(answers[topic]), _prompt_tokens_evaluated() - before))
        messages.append(Message(role="assistant", content=response.content or "."))
        answers[topic].append(response)
        return response

    try:
        for topic in ("cats", "owls", "cats", "owls", "owls", "cats"):
            turn(topic)
        usage: dict[str, list[tuple[int, int]]] = {
            topic: [_tokens(response) for response in responses]
            for topic, responses in answers.items()
        }
        for turns in usage.values():
            (first_in, first_cached), *later = turns
            # A fresh instance (or one holding the other conversation) keeps next to nothing.
            assert first_cached < 10, usage
            previous = first_in
            for prompt, cached in later:
                # The whole previous prompt is kept, and the previous answer's tokens with it
                # (less the few its rendering as a message changes).
                assert cached >= previous - 2, usage
                assert prompt - cached < 40, usage
                previous = prompt
        loaded = _local_pool.loaded_models()
        assert [model.stats()["prefix_hits"] for model in loaded] == [4]
        for topic, index, count in evaluated:
            prompt, cached = _tokens(answers[topic][index])
            # llama.cpp evaluated only the new tokens (its own count, which takes in one
            # decode of the generation as well).
            assert count <= prompt - cached + 1, evaluated
            if index == 0:
                assert count >= prompt - 10, evaluated
    finally:
        forge.close()
