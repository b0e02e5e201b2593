"""Recipe: an image question routed to a model that can see, local first.

The same question goes to the first deployment that can take an image: a local Ollama vision
model (one whose `/api/show` says "vision", e.g. `ollama pull llava`) when there is one, else a
cloud model (OpenAI, then Anthropic) when its key is set. The embedded local model is blind, so
it is skipped without a call, and the route says why. With no seeing model reachable, the
error names what the request needs and why each deployment was left out.

Run: `.tools/bin/uv run python cookbook/image_question.py` from the repo root (set OLLAMA_URL,
OPENAI_API_KEY or ANTHROPIC_API_KEY to get an answer).
"""

import base64
import os
import struct
import zlib

from forge_core import (
    ChatRequest,
    FallbackFailed,
    Forge,
    ForgeConfig,
    ImagePart,
    Message,
    NoCapableCandidate,
    TextPart,
)


def red_pixel_png() -> bytes:
    """A 1x1 red PNG, built here so the recipe needs no file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


config = ForgeConfig.model_validate(
    {
        "providers": {
            "local": {
                "ollama": {"base_url": os.environ.get("OLLAMA_URL", "http://127.0.0.1:9")},
                "huggingface": {"models": [{"name": "smollm2-135m"}]},
            },
            "fallback": {"order": ["huggingface", "ollama", "openai", "anthropic"]},
        },
        "model_preferences": {"local_first": True},
    }
)
forge = Forge(config)

image = ImagePart(data=base64.b64encode(red_pixel_png()).decode(), media_type="image/png")
question = ChatRequest(
    messages=[Message(role="user", content=[TextPart(text="What colour is this pixel?"), image])],
    max_tokens=16,
)

try:
    answer = forge.chat(question)
    print(f"answer from {answer.provider}:{answer.model}: {answer.content!r}")
    print(answer.route.describe())
except NoCapableCandidate as error:
    print(f"no deployment can see (the request needs {', '.join(error.needs)}):")
    print(error.route.describe())
except FallbackFailed as error:
    print("the deployments that can see are not reachable or have no key here:")
    print(error.route.describe())
