"""Recipe: LlamaIndex function calling with ForgeLLM — the model picks a tool, LlamaIndex runs it.

The embedded 270M model calls tools through a grammar (forge constrains its output to the
tool's argument schema), so `tool_required=True` always yields a well-formed call; a bigger
model (Ollama, or a cloud provider in forge.yaml) also decides well *whether* to call one. The
same ForgeLLM works in `FunctionAgent` / `AgentWorkflow`.

Run: `.tools/bin/uv run python cookbook/llamaindex_function_calling.py` from the repo root.
"""

from llama_index.core.tools import FunctionTool
from llamaindex_forge import ForgeLLM


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is 18 degrees and sunny in {city}."


weather = FunctionTool.from_defaults(fn=get_weather)
llm = ForgeLLM(model="huggingface:gemma-3-270m", max_tokens=48, temperature=0)

print("function calling model:", llm.metadata.is_function_calling_model)
response = llm.predict_and_call(
    [weather], "What is the weather in Paris?", tool_required=True, allow_parallel_tool_calls=False
)
print("tool output:", response.response)
for source in response.sources:
    print("called", source.tool_name, "with", source.raw_input)
