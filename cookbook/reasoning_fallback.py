"""Recipe: a thinking model on Ollama first, the cloud when it cannot, and the reasoning shown.

`reasoning=True` routes only to candidates that can think (the embedded model cannot, so it is
skipped without a call): Ollama's native API with a thinking model (`ollama pull qwen3`), then
Anthropic with a thinking budget (ANTHROPIC_API_KEY). The thinking streams before the answer,
and the answer's `to_message()` carries it (Anthropic's signed blocks too) into the next turn.

With neither an Ollama server nor a key, the route says why each candidate was skipped or
failed; the same code then runs over scripted stand-ins (`forge_core.testing`), so the recipe
shows what a real run prints.

Run: `.tools/bin/uv run python cookbook/reasoning_fallback.py` from the repo root.
"""

import os

from forge_core import (
    ChatRequest,
    FallbackFailed,
    Forge,
    ForgeConfig,
    Message,
    ProviderUnavailable,
    ReasoningPart,
)
from forge_core.testing import Reply, ScriptedBackend

config = ForgeConfig.model_validate(
    {
        "providers": {
            "local": {
                "ollama": {
                    "base_url": os.environ.get("OLLAMA_URL", "http://127.0.0.1:11434"),
                    "api": "native",
                    "preferred_models": ["qwen3"],
                },
                "huggingface": {"models": [{"name": "smollm2-135m"}]},
            },
            "cloud": {"anthropic": {"default_model": "claude-sonnet-4-5"}},
            "fallback": {"order": ["ollama", "huggingface", "anthropic"]},
        },
        "model_preferences": {"local_first": True},
    }
)


def think_twice(forge: Forge) -> None:
    """Ask with reasoning, stream the thinking, then send the answer back for a second turn."""
    question = Message(role="user", content="Is 1001 prime? Answer in one sentence.")
    request = ChatRequest(messages=[question], reasoning_effort="low", max_tokens=512)
    last, showing = None, ""
    for chunk in forge.stream(request):
        for kind, text in (("thinking", chunk.reasoning), ("answer", chunk.content)):
            if text and showing != kind:
                print(("\n" if showing else "") + f"{kind}: ", end="")
                showing = kind
            print(text, end="", flush=True)
        last = chunk
    assert last is not None and last.route is not None
    print(f"\nserved by {last.provider}:{last.model}")
    print(last.route.describe())

    answer = forge.chat(request)
    follow_up = Message(role="user", content="And 1003?")
    second = forge.chat(
        request.model_copy(update={"messages": [question, answer.to_message(), follow_up]})
    )
    print(f"second turn (the first turn's thinking sent back): {second.content}")


try:
    think_twice(Forge(config))
except FallbackFailed as error:
    print("no candidate that can think answered:")
    print(error)
    print("\nthe same run over scripted stand-ins (Ollama down, Anthropic thinking):")
    thought = [ReasoningPart(text="1001 = 7 * 143 = 7 * 11 * 13.", signature="sig")]
    first = Reply("No: 1001 = 7 * 11 * 13.", reasoning_parts=thought)
    stand_ins = {
        "ollama": ScriptedBackend(ProviderUnavailable("connection refused"), provider="ollama"),
        "anthropic": ScriptedBackend(
            first, first, Reply("No: 1003 = 17 * 59."), provider="anthropic", model="claude"
        ),
    }
    think_twice(Forge(config, backends=stand_ins))
