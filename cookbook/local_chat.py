"""Recipe: ask the router a question and see which provider answered and what it tried.

Run: `.tools/bin/uv run python cookbook/local_chat.py` (after `make chat` or `make test` once).
"""

from forge_core import Forge

# ./forge.yaml, else built-in defaults: Ollama if it answers, else the embedded model.
forge = Forge()
answer = forge.chat("Name three colours.", max_tokens=32)
print(answer.content)
print(f"served by {answer.provider}:{answer.model}")
print(answer.route.describe())
