"""``affinity``: multi-turn conversations on two real llama-cpp-python servers (issue #32).

Two ``llama_cpp.server`` processes serve the embedded GGUF (one thread each); conversations
with ~1.2k-token system prompts take turns, every conversation one turn a round in a shuffled
order within the round (users talking at once: consecutive turns of one conversation are the
exception). llama-cpp-python reuses the longest prefix of the prompt it holds, so the time to
the first token of turn 2 and later depends on whether the turn lands on a server that holds
the conversation's previous turn. Two scenarios, each subject on two servers of its own:

- **the issue's**: two conversations, servers that keep one prompt each (llama-cpp-python's
  default: its context, as a server with one slot). The targets are on this one: forge's TTFT
  p50 of turns >= 2 at most 1.2x pinned and at most 0.2x LiteLLM least-busy.
- **crowded** (the full run only): four conversations, more than servers, on servers that also
  keep a RAM cache of saved states (``--cache``) bounded to about two conversations each (as
  two slots: llama.cpp's ``-np 2``, Ollama's ``OLLAMA_NUM_PARALLEL=2``). Reported, no target:
  a server keeping several conversations holds an older turn of one that comes back after a
  detour, so a router blind to prefixes pays a few turns' tokens there rather than the whole
  prompt, and its misses show at p95 first.

Subjects (each with its own system prompts, so no subject profits from another's caches):
each conversation pinned to its own server (the limit), `Forge.stream` balancing the two with
``routing.affinity: prefix`` (the default) and with ``off``, and LiteLLM's ``Router``
(``least-busy`` and ``simple-shuffle``) over the same two servers. LiteLLM's least-busy takes
the first deployment with the fewest requests in flight, so one turn at a time all go to the
first server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
from forge_core import EMBEDDED_MODEL, Forge, ForgeConfig, Message

from benchmarks.report import Row, compare, row

__all__ = ["affinity"]

BENCHMARK = "affinity"
ALIAS = "bench-model"
START_TIMEOUT_S = 180.0

#: (conversations, turns each, facts in each system prompt: ~20 tokens a fact, max_tokens).
#: ``FORGE_BENCH_AFFINITY_SHAPE=2,4,30,8`` overrides the issue's scenario (a shorter run).
ISSUE_SHAPE = (2, 6, 60, 8)
CROWDED_SHAPE = (4, 6, 60, 8)
SMOKE_SHAPE = (2, 2, 3, 2)
#: The subjects' names in the crowded scenario end with this.
CROWDED = " (crowded: 4 conversations, ~2 cached a server)"
#: A saved prompt state of the embedded model: ~23 kB a token (35 MB at 1.5k tokens).
STATE_BYTES_PER_TOKEN = 23_000


def cache_bytes(shape: tuple[int, int, int, int]) -> int:
    """Each server's RAM cache of saved prompt states (``--cache_size``): five states of a
    conversation's last turn. Each turn saves one while the previous turn's stays until
    pushed out (least recently used), so five hold about two conversations, as a server
    with two slots does."""
    _, turns, facts, _ = shape
    tokens = 22 * facts + 60 + 30 * turns
    return 5 * STATE_BYTES_PER_TOKEN * tokens


def _two_servers(stack: contextlib.ExitStack, model_path: str, cache_size: int | None) -> list[str]:
    """Two `_server`s, stopped with ``stack``."""
    return [stack.enter_context(_server(model_path, cache_size)) for _ in range(2)]


@contextlib.contextmanager
def _server(model_path: str, cache_size: int | None) -> Iterator[str]:
    """``python -m llama_cpp.server`` on 127.0.0.1 with one thread, and a RAM cache of
    ``cache_size`` bytes of saved states if given; its ``/v1`` base URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path,
        "--model_alias",
        ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
    ]
    if cache_size is not None:
        command += ["--cache", "true", "--cache_type", "ram", "--cache_size", str(cache_size)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(log.read().decode(errors="replace")[-2000:])
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base + "/v1/models", timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not start")
                time.sleep(0.2)
            yield base + "/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _system(subject: str, topic: str, facts: int) -> str:
    lines = " ".join(
        f"Fact {i} about {topic}: it is item {i} of the {subject} list." for i in range(facts)
    )
    return f"[{subject}] You answer questions about {topic} in one short sentence. {lines}"


def _config(urls: list[str], affinity: str) -> ForgeConfig:
    return ForgeConfig.model_validate(
        {
            "model_preferences": {"local_first": False},
            "providers": {
                "endpoints": [
                    {
                        "name": f"box-{i}",
                        "kind": "openai",
                        "base_url": url,
                        "default_model": ALIAS,
                        "api_key_env": None,
                        "dialect": "llama-cpp",
                    }
                    for i, url in enumerate(urls)
                ],
                "fallback": {"order": ["openai"]},
            },
            # A cold prompt takes tens of seconds on one thread of a loaded machine: slow, not
            # broken, so no timeout opens a circuit.
            "routing": {
                "affinity": affinity,
                "total_timeout_seconds": 900,
                "first_token_timeout_seconds": 600,
                "breaker_open_on_timeout": False,
            },
        }
    )


#: Streams one turn: (conversation index, messages as dicts, max_tokens) -> (text, TTFT ms).
Turn = Callable[[int, list[dict[str, str]], int], tuple[str, float]]


def _forge_turn(forge: Forge, pinned: bool, placed: Counter[str] | None = None) -> Turn:
    """A `Turn` through ``forge``; ``placed`` counts why each turn went where it went (the
    last attempt's `Attempt.affinity`: ``prefix:N`` counted as ``prefix``)."""

    def turn(index: int, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, float]:
        model = f"box-{index % 2}:{ALIAS}" if pinned else None
        start = time.perf_counter()
        first = 0.0
        text = []
        for chunk in forge.stream(
            [Message(**m) for m in messages], model=model, max_tokens=max_tokens, temperature=0
        ):
            if chunk.content:
                first = first or (time.perf_counter() - start) * 1000.0
                text.append(chunk.content)
            if placed is not None and chunk.route is not None and chunk.route.attempts:
                reason = chunk.route.attempts[-1].affinity or "none"
                placed[reason.partition(":")[0]] += 1
        return "".join(text), first

    return turn


def _litellm_turn(urls: list[str], strategy: str) -> Turn:
    from litellm import Router

    router = Router(
        model_list=[
            {
                "model_name": "local",
                "litellm_params": {"model": f"openai/{ALIAS}", "api_base": url, "api_key": "x"},
            }
            for url in urls
        ],
        routing_strategy=strategy,
    )

    async def stream(messages: list[dict[str, str]], max_tokens: int) -> tuple[str, float]:
        start = time.perf_counter()
        first = 0.0
        text = []
        response = await router.acompletion(
            model="local", messages=messages, stream=True, max_tokens=max_tokens, temperature=0
        )
        async for chunk in response:
            piece = chunk.choices[0].delta.content if chunk.choices else None
            if piece:
                first = first or (time.perf_counter() - start) * 1000.0
                text.append(piece)
        return "".join(text), first

    def turn(index: int, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, float]:
        return asyncio.run(stream(messages, max_tokens))

    return turn


def _converse(subject: str, turn: Turn, shape: tuple[int, int, int, int]) -> list[float]:
    """Every conversation one turn a round, in a shuffled order within the round (a fixed
    seed); the TTFTs of turns >= 2."""
    conversations, turns, facts, max_tokens = shape
    topics = ["cats", "owls", "tea", "rivers", "maps", "bees"][:conversations]
    histories = [
        [{"role": "system", "content": _system(subject, topic, facts)}] for topic in topics
    ]
    shuffler, order = random.Random(32), []
    for _ in range(turns):
        round_ = list(range(conversations))
        shuffler.shuffle(round_)
        order += round_
    asked = [0] * conversations
    later: list[float] = []
    for c in order:
        messages = histories[c]
        messages.append({"role": "user", "content": f"Question {asked[c]} about {topics[c]}?"})
        text, ttft = turn(c, messages, max_tokens)
        print(
            f"#   {subject}: conversation {c} turn {asked[c] + 1}: {ttft:,.0f} ms", file=sys.stderr
        )
        messages.append({"role": "assistant", "content": text or "."})
        if asked[c] >= 1:
            later.append(ttft)
        asked[c] += 1
    return later


def affinity(smoke: bool) -> list[Row]:
    """The rows: TTFT p50/p95 of turns >= 2 per subject in each scenario; forge's ratios to
    pinned and to LiteLLM least-busy (the targets, the issue's scenario)."""
    from forge_core.config.local_models import packaged_model

    packaged = packaged_model(EMBEDDED_MODEL)
    assert packaged is not None
    path = str(packaged.path())
    shape = SMOKE_SHAPE if smoke else ISSUE_SHAPE
    override = os.environ.get("FORGE_BENCH_AFFINITY_SHAPE")
    if override and not smoke:
        a, b, c, d = (int(part) for part in override.split(","))
        shape = (a, b, c, d)
    rows = _scenario(path, shape, None, "", litellm=not smoke, fresh_servers=not smoke)
    prefix, pinned = (
        "forge Forge.stream (affinity: prefix)",
        "each conversation pinned to its server",
    )
    compare(rows, prefix, pinned, limit=1.2)
    if not smoke:
        compare(rows, "forge Forge.stream (affinity: off)", pinned)
        ours = next(r for r in rows if r.subject == prefix)
        for strategy, limit in (("least-busy", 0.2), ("simple-shuffle", None)):
            peer = f"LiteLLM Router ({strategy})"
            against = replace(
                ours, subject=f"{prefix}, against {peer}", note="", target=None, met=None
            )
            rows.append(against)
            compare(rows, against.subject, peer, limit=limit)
            theirs = next(r for r in rows if r.subject == peer)
            against.note = f"{against.p95 / theirs.p95:.2f}x at p95" if theirs.p95 else ""
        crowded = _scenario(path, CROWDED_SHAPE, cache_bytes(CROWDED_SHAPE), CROWDED, litellm=True)
        peer = "LiteLLM Router (least-busy)" + CROWDED
        compare(crowded, prefix + CROWDED, peer)
        ours, theirs = (
            next(r for r in crowded if r.subject == name) for name in (prefix + CROWDED, peer)
        )
        ours.note += f"; {ours.p95 / theirs.p95:.2f}x at p95" if theirs.p95 else ""
        rows += crowded
    return rows


def _scenario(
    path: str,
    shape: tuple[int, int, int, int],
    cache_size: int | None,
    suffix: str,
    *,
    litellm: bool,
    fresh_servers: bool = True,
) -> list[Row]:
    """Each subject's row (its name ending in ``suffix``), each on two fresh servers: a
    server's RAM cache would keep the states of the subject before (their prompts differ,
    but llama-cpp-python refreshes a cached state that shares only the chat template's first
    tokens with a new prompt), so the later subjects' caches would start fuller. Without
    ``fresh_servers`` (the smoke test: the rows' shape, not their times) all share two."""
    rows: list[Row] = []
    placed: Counter[str] = Counter()
    subjects: dict[str, Callable[[list[str]], Turn]] = {
        "each conversation pinned to its server": lambda urls: _forge_turn(
            Forge(_config(urls, "off"), env={}), pinned=True
        ),
        "forge Forge.stream (affinity: prefix)": lambda urls: _forge_turn(
            Forge(_config(urls, "prefix"), env={}), pinned=False, placed=placed
        ),
        "forge Forge.stream (affinity: off)": lambda urls: _forge_turn(
            Forge(_config(urls, "off"), env={}), pinned=False
        ),
    }
    if litellm:
        subjects["LiteLLM Router (least-busy)"] = lambda urls: _litellm_turn(urls, "least-busy")
        subjects["LiteLLM Router (simple-shuffle)"] = lambda urls: _litellm_turn(
            urls, "simple-shuffle"
        )
    with contextlib.ExitStack() as shared:
        pair = None if fresh_servers else _two_servers(shared, path, cache_size)
        for subject, make in subjects.items():
            with contextlib.ExitStack() as own:
                urls = pair or _two_servers(own, path, cache_size)
                # Warm both servers up (model pages in memory) with a throwaway prompt.
                warm = _forge_turn(Forge(_config(urls, "off"), env={}), pinned=True)
                for index in (0, 1):
                    warm(index, [{"role": "user", "content": "Hi."}], 1)
                started = time.perf_counter()
                later = _converse(subject + suffix, make(urls), shape)
            note = (
                f"{len(later)} turns >= 2 of {shape[0]} conversations ({shape[1]} turns each); "
                f"mean {sum(later) / len(later):,.0f} ms"
            )
            if subject == "forge Forge.stream (affinity: prefix)":
                note += "; every turn placed by " + ", ".join(
                    f"{reason} {count}" for reason, count in sorted(placed.items())
                )
            print(
                f"# affinity: {subject}{suffix}: {time.perf_counter() - started:.1f} s, "
                f"p50 of turns >= 2: {sorted(later)[len(later) // 2]:,.0f} ms",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row(BENCHMARK, subject + suffix, "ms", later, note=note))
    return rows


def main() -> None:
    """``python -m benchmarks.affinity [--smoke]``: print the rows."""
    from benchmarks.suites import quiet_litellm

    quiet_litellm()
    for result in affinity("--smoke" in sys.argv):
        print(
            f"{result.subject}: p50 {result.p50:.0f} ms, p95 {result.p95:.0f} ms "
            f"(n={result.samples}); ratio {result.ratio} to {result.peer}; {result.note}"
        )


if __name__ == "__main__":
    main()
