"""Recipe: tools with ForgeChat — the model asks for a tool, you run it, it answers.

Run: `.tools/bin/uv run python cookbook/tools_with_forgechat.py` from the repo root. With no
Ollama and no API keys the embedded model answers in process: naming the tool in
`tool_choice` makes it emit a grammar-constrained call, so the arguments are always valid JSON
for the tool's schema (a 270M model will not *decide* well on its own; bigger ones do).
"""

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_forge import ForgeChat


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is 18 degrees and sunny in {city}."


llm = ForgeChat(model="huggingface:smollm2-135m", max_tokens=24, temperature=0)
with_tools = llm.bind_tools([get_weather], tool_choice="get_weather")

messages = [HumanMessage("What is the weather in Paris?")]
request = with_tools.invoke(messages)
for call in request.tool_calls:
    print("tool call:", call["name"], call["args"])
    result = get_weather.invoke(call)  # a ToolMessage carrying the call's id
    messages += [request, result]
assert isinstance(messages[-1], ToolMessage), "the model did not call the tool"

# Second turn without tools: the model reads the tool's result and answers in prose.
final = llm.invoke(messages)
print("answer:", final.content)
print("served by", final.response_metadata["provider"])
