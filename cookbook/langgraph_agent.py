"""Recipe: a LangGraph agent on ForgeChat — it calls a tool, reads the result, answers.

`langchain.agents.create_agent` builds the agent as a LangGraph graph (model node, tool node,
loop) and gives the model the tools with `ForgeChat.bind_tools`; forge routes every model
call, with fallback (`langgraph.prebuilt.create_react_agent`, its older name, works the same).

The embedded model answers with no Ollama and no keys. It calls tools through a grammar, so a
*forced* tool choice always gives a well-formed call, but at 135M parameters it does not
decide on its own when to call one or when to stop. The middleware below decides for it: the
first step must call `get_weather`, the step after a tool result gets no tools and answers
(the tiny model's answer may just repeat its call). With a bigger model (Ollama, or a cloud
provider in forge.yaml) drop the middleware and let the agent decide.

Run: `.tools/bin/uv run python cookbook/langgraph_agent.py` from the repo root (the workspace's
dev group installs `langchain` and `langgraph`; elsewhere `pip install langchain langgraph`).
"""

from collections.abc import Callable

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langchain_forge import ForgeChat


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is 18 degrees and sunny in {city}."


@wrap_model_call
def tool_first_then_answer(
    request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
) -> ModelResponse:
    """Force the first step to call get_weather; after a tool result, answer without tools."""
    if any(isinstance(message, ToolMessage) for message in request.messages):
        return handler(request.override(tools=[]))
    return handler(request.override(tool_choice="get_weather"))


llm = ForgeChat(max_tokens=48, temperature=0)  # forge.yaml decides: Ollama, else in process
agent = create_agent(
    llm,
    tools=[get_weather],
    system_prompt="Answer with the tools.",
    middleware=[tool_first_then_answer],
)

result = agent.invoke({"messages": [("user", "What is the weather in Paris?")]})
for message in result["messages"]:
    if isinstance(message, AIMessage) and message.tool_calls:
        for call in message.tool_calls:
            print("agent called", call["name"], call["args"])
    elif isinstance(message, ToolMessage):
        print("tool result:", message.content)
answer = result["messages"][-1]
assert isinstance(answer, AIMessage) and not answer.tool_calls, "the agent did not finish"
print("answer:", answer.content)
print("served by", answer.response_metadata["provider"])
