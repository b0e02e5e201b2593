"""Every cookbook recipe runs end to end, as a user would run it (embedded model, no keys).

Each recipe runs once; checks of what it printed reuse that run: both RAG recipes retrieve the
right file of tests/data for each of their fixed questions, the LangGraph agent calls its tool
and answers after the result.

The cookbook's checks that run no model are in test_cookbook.py.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The recipes' runs are cached in the test process: with several processes (`make test`) this
# module runs whole in one of them (the root conftest's ONE_PROCESS_MODULES).
pytestmark = pytest.mark.local_model

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "cookbook").glob("*.py"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("FORGE_CONFIG", None)
    env.update(extra)
    return env


#: The RAG recipes' fixed questions, and the file of tests/data each must retrieve.
RAG_QUESTIONS = {
    "How do plants turn sunlight into food?": "photosynthesis.txt",
    "Why does lava come out of a mountain?": "volcanoes.txt",
    "How do you bake a loaf of bread with a starter?": "sourdough.txt",
    "How do I define a function with def and return a value?": "python_functions.txt",
}
RAG_RECIPES = ["langchain_rag", "llamaindex_query_engine"]


@functools.cache
def run_recipe(name: str) -> subprocess.CompletedProcess[str]:
    """Run ``cookbook/NAME.py`` once per session, as a user would; later tests read its output."""
    return subprocess.run(
        [sys.executable, str(REPO / "cookbook" / f"{name}.py")],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def retrieved_sources(stdout: str) -> dict[str, list[str]]:
    """``question: ...`` lines of a RAG recipe, each with the ``source: FILE`` lines after it."""
    sources: dict[str, list[str]] = {}
    question = None
    for line in stdout.splitlines():
        if line.startswith("question: "):
            question = line.removeprefix("question: ")
            sources[question] = []
        elif line.startswith("source: ") and question is not None:
            sources[question].append(line.removeprefix("source: ").split()[0])
    return sources


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_recipe_runs(recipe: Path) -> None:
    result = run_recipe(recipe.stem)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("recipe", RAG_RECIPES)
def test_rag_recipe_retrieves_the_file_each_question_is_about(recipe: str) -> None:
    result = run_recipe(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    assert retrieved_sources(result.stdout) == {
        question: [expected] for question, expected in RAG_QUESTIONS.items()
    }


def test_langgraph_agent_recipe_calls_the_tool_and_answers_after_its_result() -> None:
    result = run_recipe("langgraph_agent")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    [call] = [line for line in lines if line.startswith("agent called ")]
    assert call.startswith("agent called get_weather {'city': ")
    [tool_result] = [line for line in lines if line.startswith("tool result: ")]
    assert tool_result.startswith("tool result: It is 18 degrees and sunny in ")
    answer = next(i for i, line in enumerate(lines) if line.startswith("answer: "))
    assert lines.index(tool_result) < answer, "the answer comes after the tool's result"
