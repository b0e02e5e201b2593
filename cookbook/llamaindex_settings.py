"""Recipe: make forge LlamaIndex's default LLM and use it through Settings.

Run: `.tools/bin/uv run python cookbook/llamaindex_settings.py` from the repo root.
"""

from llama_index.core import Settings
from llama_index.core.llms import ChatMessage
from llamaindex_forge import ForgeLLM

Settings.llm = ForgeLLM(max_tokens=24, temperature=0)

response = Settings.llm.chat([ChatMessage(role="user", content="Name a colour.")])
print("chat:", response.message.content)
print(
    "served by",
    response.raw["provider"],
    "after",
    len(response.raw["route"]["attempts"]),
    "attempt(s)",
)

for piece in Settings.llm.stream_complete("Count to three:"):
    print(piece.delta, end="", flush=True)
print()
