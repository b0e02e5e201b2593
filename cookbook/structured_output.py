"""Recipe: structured output straight into a pydantic model.

Run: `.tools/bin/uv run python cookbook/structured_output.py` from the repo root. The embedded
model decodes under a grammar built from the JSON schema (`method="json_schema"`), so what comes
back always parses into `City`; the *values* are only as good as the model (270M: rough).
Cloud providers and Ollama get the same schema as their native `response_format`.
"""

from langchain_forge import ForgeChat
from pydantic import BaseModel, Field


class City(BaseModel):
    """A city and the country it is in."""

    name: str = Field(description="the city's name")
    country: str = Field(description="the country it is in")


llm = ForgeChat(model="huggingface:smollm2-135m", max_tokens=24, temperature=0)
extract = llm.with_structured_output(City, method="json_schema")

city = extract.invoke("Paris is the capital of France. Extract the city.")
assert isinstance(city, City)
print("parsed:", city.model_dump())

# include_raw=True keeps the message too (and the parsing error, if any, instead of raising).
raw = llm.with_structured_output(City, method="json_schema", include_raw=True).invoke(
    "Rome is in Italy. Extract the city."
)
print("raw text:", raw["raw"].content)
print("parsed:", raw["parsed"], "error:", raw["parsing_error"])
