"""Recipe: local first with cloud fallback, and `local_only` for private data.

The config below tries an Ollama server first (on a port nothing listens on, to show the
fallback), then the embedded in-process model, then OpenAI — which is skipped without a call
when OPENAI_API_KEY is unset, and never called at all for `local_only` requests.

Run: `.tools/bin/uv run python cookbook/local_first_fallback.py` from the repo root.
"""

import os

from forge_core import FallbackFailed, Forge, ForgeConfig

config = ForgeConfig.model_validate(
    {
        "providers": {
            "local": {
                "ollama": {"base_url": os.environ.get("OLLAMA_URL", "http://127.0.0.1:9")},
                "huggingface": {"models": [{"name": "smollm2-135m"}]},
            },
            "fallback": {"order": ["ollama", "huggingface", "openai"]},
        },
        "model_preferences": {"local_first": True},
    }
)
forge = Forge(config)

answer = forge.chat("Say hello.", max_tokens=16)
print(f"answer from {answer.provider}:{answer.model}: {answer.content!r}")
print(answer.route.describe())

# Private data: never leaves the machine, even if every local provider is down.
private = forge.chat("Summarise: my salary is private.", max_tokens=16, local_only=True)
print(f"local_only answer from {private.provider} (cloud never called)")

try:
    Forge(config, overrides={"providers": {"fallback": {"order": ["ollama", "openai"]}}}).chat(
        "Hi", local_only=True
    )
except FallbackFailed as error:
    print("with no local provider up, local_only fails loudly instead of escalating:")
    print(error)
