"""Recipe: drop ForgeChat into an LCEL chain, then stream an answer to the terminal.

Run: `.tools/bin/uv run python cookbook/langchain_chain.py` from the repo root. With no Ollama
and no API keys, the embedded local model answers (its prose is rough: it is a 270M base model).
"""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_forge import ForgeChat

llm = ForgeChat(max_tokens=32, temperature=0)
chain = ChatPromptTemplate.from_template("Explain {topic} in one line.") | llm | StrOutputParser()
print("chain:", chain.invoke({"topic": "rainbows"}))

# Streaming: tokens arrive as the model produces them; the last chunk carries the route.
last = None
for chunk in llm.stream("Count to five:"):
    print(chunk.content, end="", flush=True)
    last = chunk
print()
if last is not None:
    print("served by", last.response_metadata["provider"])
