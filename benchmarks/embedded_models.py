"""Which packaged model should be the embedded default: SmolLM2-135M-Instruct vs Gemma 3 270M.

``python -m benchmarks.embedded_models`` asks each packaged GGUF the same ten questions, one
JSON-schema request and two forced tool calls through `Forge` (in process, greedy, forge's own
sampling settings), and prints a Markdown table: answers that answer (not the prompt echoed,
not a loop, with the expected word), valid JSON, tool calls with the right argument values,
tokens/s and load time. docs/local-runtime.md holds the table that chose the default.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from forge_core import Forge, ForgeConfig, HuggingFaceConfig
from forge_core.backends.local.backend import HuggingFaceBackend, unload_models

#: (question, a word a right answer contains), lower case.
QUESTIONS = [
    ("What is the capital of France?", "paris"),
    ("Why is the sky blue? Answer in one sentence.", "scatter"),
    ("What is 2 plus 2?", "4"),
    ("Name a primary colour.", ("red", "blue", "yellow")),
    ("What do bees make?", "honey"),
    ("What is the largest planet in the solar system?", "jupiter"),
    ("Which animal says moo?", "cow"),
    ("What is frozen water called?", "ice"),
    ("How many days are in a week?", ("7", "seven")),
    ("What gas do plants take in from the air?", ("carbon dioxide", "co2")),
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}


@dataclass
class Result:
    model: str
    answered: int = 0
    echoed: int = 0
    looped: int = 0
    right: int = 0
    json_valid: bool = False
    tools_right: int = 0
    load_seconds: float = 0.0
    tokens_per_second: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)


def echoes(question: str, answer: str) -> bool:
    return question.lower().rstrip("?.") in answer.lower()


def loops(answer: str) -> bool:
    words = answer.lower().split()
    grams = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
    return any(grams.count(gram) >= 3 for gram in set(grams))


def evaluate(name: str) -> Result:
    unload_models()
    config = ForgeConfig.model_validate(
        {
            "providers": {
                "local": {"huggingface": {"models": [{"name": name}], "isolation": "thread"}},
                "fallback": {"order": ["huggingface"]},
            }
        }
    )
    forge = Forge(config)
    result = Result(name)
    started = time.perf_counter()
    HuggingFaceBackend(HuggingFaceConfig(models=[{"name": name}], isolation="thread")).warm()
    result.load_seconds = time.perf_counter() - started
    for question, expected in QUESTIONS:
        began = time.perf_counter()
        answer = forge.chat(question, temperature=0, max_tokens=48)
        seconds = time.perf_counter() - began
        text = answer.content or ""
        tokens = answer.usage.output_tokens if answer.usage else 0
        result.tokens_per_second.append(tokens / seconds)
        result.samples.append(text.strip().replace("\n", " ")[:80])
        echoed, looped = echoes(question, text), loops(text)
        result.echoed += echoed
        result.looped += looped
        if not echoed and not looped and text.strip():
            result.answered += 1
            wanted = (expected,) if isinstance(expected, str) else expected
            result.right += any(re.search(rf"\b{re.escape(w)}", text.lower()) for w in wanted)
    structured = forge.chat(
        "Name a city and the country it is in.",
        temperature=0,
        max_tokens=60,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "c", "schema": CITY_SCHEMA},
        },
    )
    try:
        data = json.loads(structured.content or "")
        result.json_valid = all(isinstance(data.get(key), str) for key in ("city", "country"))
    except json.JSONDecodeError:
        result.json_valid = False
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("What is the weather in Paris?", WEATHER, {"city": "Paris"}),
        ("What is 2 plus 3?", ADD, {"a": 2, "b": 3}),
    ]
    for prompt, tool, wanted_arguments in calls:
        name_ = tool["function"]["name"]
        called = forge.chat(
            prompt,
            temperature=0,
            max_tokens=40,
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": name_}},
        )
        result.tools_right += bool(called.tool_calls) and (
            called.tool_calls[0].arguments == wanted_arguments
        )
    unload_models()
    return result


def main() -> None:
    names = sys.argv[1:] or ["smollm2-135m", "gemma-3-270m"]
    results = [evaluate(name) for name in names]
    print(
        "| model | answers (of 10) | right word | echoes | loops | JSON schema valid "
        "| forced tool calls right (of 2) | tokens/s (median) | load s |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.model} | {r.answered} | {r.right} | {r.echoed} | {r.looped} | "
            f"{'yes' if r.json_valid else 'no'} | {r.tools_right} | "
            f"{statistics.median(r.tokens_per_second):.1f} | {r.load_seconds:.2f} |"
        )
    for r in results:
        print(f"\n{r.model}:")
        for (question, _), sample in zip(QUESTIONS, r.samples, strict=True):
            print(f"- {question} -> {sample}")


if __name__ == "__main__":
    main()
