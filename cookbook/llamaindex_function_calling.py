"""Recipe: LlamaIndex function calling with ForgeLLM — one direct call, then a FunctionAgent.

The embedded 270M model calls tools through a grammar (forge constrains its output to the
tool's argument schema), so a *forced* tool choice always yields a well-formed call. It does
not decide well on its own whether to call a tool, so the agent forces the first step with
`initial_tool_choice` and stops after two steps; with a bigger model (Ollama, or a cloud
provider in forge.yaml) drop both and let the agent decide.

Run: `.tools/bin/uv run python cookbook/llamaindex_function_calling.py` from the repo root.
"""

import asyncio

from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool
from llamaindex_forge import ForgeLLM


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is 18 degrees and sunny in {city}."


weather = FunctionTool.from_defaults(fn=get_weather)
llm = ForgeLLM(model="huggingface:smollm2-135m", max_tokens=48, temperature=0)
print("function calling model:", llm.metadata.is_function_calling_model)

# 1. One call: the model picks the tool and its arguments, LlamaIndex runs it.
response = llm.predict_and_call(
    [weather], "What is the weather in Paris?", tool_required=True, allow_parallel_tool_calls=False
)
print("predict_and_call:", response.response)


# 2. An agent: the tool result goes back to the model, which writes the final answer.
async def run_agent() -> None:
    agent = FunctionAgent(
        tools=[weather],
        llm=llm,
        system_prompt="Answer with the tools.",
        initial_tool_choice="get_weather",
    )
    handler = agent.run(
        "What is the weather in Paris?", max_iterations=2, early_stopping_method="generate"
    )
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            print("agent called", event.tool_name, event.tool_kwargs, "->", event.tool_output)
    print("agent answer:", await handler)


asyncio.run(run_agent())
