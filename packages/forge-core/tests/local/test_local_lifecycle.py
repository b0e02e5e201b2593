"""One loaded instance per model, warm-up, idle unload, concurrency and metrics, in process."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from forge_core import (
    ChatRequest,
    Forge,
    ForgeTimeout,
    HuggingFaceConfig,
    Message,
    ModelNotFound,
)
from forge_core.backends.local import pool as _local_pool
from forge_core.backends.local.backend import HuggingFaceBackend
from forge_core.backends.local.pool import unload_models
from forge_core.config.local_models import llama_output_logged
from forge_test_support import attempt_timeouts, config_for, embedded_in_process
from forge_tiny_onnx import TinyOnnxModel

pytestmark = pytest.mark.local_model
MODEL = "gemma-3-270m"
SUBJECTS = [
    "cats",
    "rain",
    "bread",
    "the moon",
    "trains",
    "music",
    "winter",
    "coffee",
    "rivers",
    "chess",
    "bees",
    "glass",
    "forests",
    "salt",
    "clocks",
    "snow",
    "paper",
    "horses",
    "copper",
    "tea",
]


def backend(**settings: Any) -> HuggingFaceBackend:
    return HuggingFaceBackend(
        HuggingFaceConfig.model_validate(
            {"isolation": "thread", "models": [{"name": MODEL}], **settings}
        )
    )


def prompt(subject: str) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="user", content=f"Write one sentence about {subject}.")],
        temperature=0.0,
        max_tokens=5,
    )


def loaded_entries() -> list[Any]:
    return list(_local_pool.loaded_models())


def test_warm_preloads_once_and_stats_describe_the_model() -> None:
    unload_models()
    first = backend()
    assert first.warm() == [MODEL]
    backend().warm()
    [entry] = loaded_entries()
    stats = first.stats()
    [model] = stats["models"]
    assert model["model"] == MODEL and model["format"] == "gguf" and model["instances"] == 1
    assert model["load_seconds"] > 0
    assert model["resident_bytes"] >= 0 and stats["process_rss_bytes"] > model["resident_bytes"]
    assert model["requests"] == 0 and model["tokens_per_second"] is None
    assert entry.instances[0] is not None


def test_stats_count_tokens_and_rate_after_generation() -> None:
    local = backend()
    answer = local.chat(prompt("cats"), MODEL, attempt_timeouts())
    [model] = local.stats()["models"]
    assert answer.usage is not None
    assert model["requests"] >= 1 and model["output_tokens"] >= answer.usage.output_tokens
    assert model["tokens_per_second"] > 0
    assert model["queue_wait_seconds_mean"] >= 0 and model["queue_wait_seconds_max"] >= 0


async def test_twenty_concurrent_requests_get_their_own_answers() -> None:
    local = backend()
    sequential = [
        (local.chat(prompt(subject), MODEL, attempt_timeouts())).content for subject in SUBJECTS
    ]
    assert len(set(sequential)) > 1
    concurrent = await asyncio.gather(
        *(local.achat(prompt(subject), MODEL, attempt_timeouts()) for subject in SUBJECTS)
    )
    assert [answer.content for answer in concurrent] == sequential
    [model] = local.stats()["models"]
    assert model["instances"] == 1 and model["in_use_or_waiting"] == 0
    # With one instance, nineteen of the twenty had to wait for another's answer.
    assert model["queue_wait_seconds_max"] > 0


async def test_concurrent_streams_do_not_mix() -> None:
    local = backend()
    subjects = SUBJECTS[:6]
    expected = [
        local.chat(prompt(subject), MODEL, attempt_timeouts()).content for subject in subjects
    ]

    async def streamed(subject: str) -> str:
        pieces = [
            chunk.content
            async for chunk in local.astream(prompt(subject), MODEL, attempt_timeouts())
        ]
        return "".join(pieces)

    assert await asyncio.gather(*(streamed(subject) for subject in subjects)) == expected


async def test_requests_waiting_for_one_model_never_hold_up_another(
    tiny_onnx: TinyOnnxModel,
) -> None:
    # Twelve requests queue for the one GGUF instance; a request for another model (the tiny
    # ONNX one, milliseconds per answer) must not wait behind them for a thread.
    gemma = backend()
    tiny = HuggingFaceBackend(
        HuggingFaceConfig.model_validate(
            {
                "isolation": "thread",
                "models": [{"name": "tiny", "local_path": str(tiny_onnx.directory)}],
            }
        )
    )
    gemma.warm()
    tiny.warm()
    long_answer = ChatRequest(
        messages=[Message(role="user", content="Write a long story about a dragon.")],
        temperature=0.0,
        max_tokens=48,
    )
    finished: list[str] = []

    async def ask(local: HuggingFaceBackend, model: str, request: ChatRequest) -> None:
        await local.achat(request, model, attempt_timeouts())
        finished.append(model)

    queued = [asyncio.create_task(ask(gemma, MODEL, long_answer)) for _ in range(12)]
    await asyncio.sleep(0)  # every GGUF request is handed to the local threads first
    await ask(tiny, "tiny", ChatRequest(messages=[Message(role="user", content="hi")]))
    assert finished[0] == "tiny", f"the ONNX answer came after {finished.index('tiny')} GGUF ones"
    await asyncio.gather(*queued)
    assert finished.count(MODEL) == 12


def test_llama_cpp_output_while_loading_goes_to_the_log_and_nothing_else_is_lost(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    unload_models()
    other_thread_printed = threading.Event()

    def print_elsewhere() -> None:
        print("printed by another thread", file=sys.stderr)
        other_thread_printed.set()

    caplog.set_level(logging.DEBUG, logger="forge.llama_cpp")
    stderr_before = sys.stderr
    backend().warm()  # llama.cpp prints its llama_kv_cache_iswa warning while loading
    assert sys.stderr is stderr_before
    assert capsys.readouterr().err == ""
    assert any(record.message.startswith("llama_") for record in caplog.records), (
        "llama.cpp's load message was expected in the forge.llama_cpp log"
    )
    # While a thread loads, its own writes are logged; every other thread's still print.
    with llama_output_logged(), llama_output_logged():
        print("from the loading thread", file=sys.stderr)
        printer = threading.Thread(target=print_elsewhere)
        printer.start()
        printer.join()
        assert sys.stderr is not stderr_before
    assert other_thread_printed.is_set()
    assert sys.stderr is stderr_before
    assert capsys.readouterr().err == "printed by another thread\n"
    assert "from the loading thread" in [record.message for record in caplog.records]


async def test_parallel_pool_serves_with_several_instances() -> None:
    unload_models()
    pooled = backend(parallel=2)
    subjects = SUBJECTS[:6]
    expected = [
        pooled.chat(prompt(subject), MODEL, attempt_timeouts()).content for subject in subjects
    ]
    answers = await asyncio.gather(
        *(pooled.achat(prompt(subject), MODEL, attempt_timeouts()) for subject in subjects)
    )
    assert [answer.content for answer in answers] == expected
    [model] = pooled.stats()["models"]
    assert model["instances"] == 2
    unload_models()


def test_busy_model_times_out_at_the_deadline_instead_of_hanging() -> None:
    local = backend()
    with (
        local._instance(MODEL, attempt_timeouts(), time.perf_counter()),
        pytest.raises(ForgeTimeout),
    ):
        local.chat(prompt("rain"), MODEL, attempt_timeouts(0.3))
    assert local.chat(prompt("rain"), MODEL, attempt_timeouts()).content


async def test_abandoned_stream_gives_the_instance_back() -> None:
    local = backend()
    stream = local.astream(prompt("bread"), MODEL, attempt_timeouts())
    async for _chunk in stream:
        break
    await stream.aclose()
    answer = await local.achat(prompt("bread"), MODEL, attempt_timeouts(60))
    assert answer.content
    [model] = local.stats()["models"]
    assert model["in_use_or_waiting"] == 0


def test_model_in_use_is_not_unloaded_and_idle_one_is() -> None:
    local = backend(keep_alive_seconds=None)
    local.warm()
    with local._instance(MODEL, attempt_timeouts(), time.perf_counter()):
        assert unload_models() == []
        assert len(loaded_entries()) == 1
    assert unload_models(idle_for=3600) == []
    assert unload_models(idle_for=0) == [MODEL]
    assert loaded_entries() == []


def test_keep_alive_unloads_an_idle_model() -> None:
    unload_models()
    local = backend(keep_alive_seconds=0.2)
    local.chat(prompt("snow"), MODEL, attempt_timeouts())
    [entry] = loaded_entries()
    unloaded = threading.Event()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not unloaded.is_set():
        if not loaded_entries():
            unloaded.set()
        else:
            unloaded.wait(0.05)
    assert unloaded.is_set()
    assert entry.instances == []
    # The next request loads it again.
    assert local.chat(prompt("snow"), MODEL, attempt_timeouts()).content
    unload_models()


def test_forge_warm_loads_the_configured_model_once() -> None:
    unload_models()
    forge = Forge(config_for(embedded_in_process(isolation="thread")))
    assert forge.warm() == [MODEL]
    [entry] = loaded_entries()
    answer = forge.chat("Hi", max_tokens=2)
    assert answer.content is not None
    assert loaded_entries() == [entry] and entry.requests == 1


def test_forge_warm_with_a_missing_model_names_it(tmp_path: Path) -> None:
    forge = Forge(config_for({"name": "huggingface", "cache_dir": str(tmp_path)}))
    with pytest.raises(ModelNotFound, match="acme/absent"):
        forge.warm(["acme/absent"])
