"""The ``deployments`` benchmark runs end to end with tiny counts and yields well-formed rows.

Shape only, never timings (as test_benchmarks_smoke.py): planning with 1 vs 50 deployments and
its ``≤ +50 µs`` targets, prefix affinity's choice and its ``≤ +20 µs``, a 500 from the primary vs ``with_fallbacks``, the warm-first share;
against the real loopback server and the fake Ollama hosts (each a separate process). Skipped
when the ``bench`` dependency group is not installed.
"""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("langchain_openai", reason="the `bench` dependency group is not installed")

from benchmark_rows import well_formed

from benchmarks import suites
from benchmarks.deployments import MANY, deployments
from benchmarks.fake_ollama import TAG, fake_ollama_hosts
from benchmarks.server import loopback_server


def test_failing_port_and_fake_ollama_hosts() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with loopback_server() as server, fake_ollama_hosts() as ollama, httpx.Client() as http:
        failed = http.post(server.failing + "/chat/completions", json=body)
        assert failed.status_code == 500
        assert failed.json()["error"]["type"] == "server_error"
        for root, loaded in ((ollama.warm, [TAG]), (ollama.cold + "/h07", [])):
            assert [m["name"] for m in http.get(root + "/api/ps").json()["models"]] == loaded
            assert [m["name"] for m in http.get(root + "/api/tags").json()["models"]] == [TAG]
            answer = http.post(root + "/v1/chat/completions", json=body).json()
            assert answer["choices"][0]["message"]["content"] == suites.EXPECTED


def test_deployments_rows() -> None:
    with loopback_server() as server:
        rows = well_formed(deployments(server, suites.SMOKE), "deployments")
    pairs = {
        f"plan: endpoints, {MANY} deployments, one order entry": "plan: endpoints, 1 deployment",
        f"plan: endpoints, {MANY} deployments, one entry each": "plan: endpoints, 1 deployment",
        f"plan: ollama hosts, ordered, {MANY} deployments": "plan: ollama hosts, ordered, "
        "1 deployment",
        f"plan: ollama hosts, warm-first, {MANY} deployments": "plan: ollama hosts, warm-first, "
        "1 deployment",
        f"Forge.chat, {MANY} deployments": "Forge.chat, 1 deployment",
    }
    for subject, peer in pairs.items():
        assert rows[subject].peer == peer
        assert rows[subject].target == "≤ +50 µs"
        assert " µs vs 1 deployment" in rows[subject].note
    # Prefix affinity's cost (#32): choosing over 10k held prefixes vs off, the budget's row,
    # and choosing and learning, reported.
    [affine] = [r for name, r in rows.items() if name.startswith("choose:") and "held" in name]
    assert affine.peer is not None and affine.peer.endswith("affinity off")
    assert affine.target == "≤ +20 µs" and " µs vs affinity off" in affine.note
    [learning] = [r for name, r in rows.items() if name.startswith("choose and learn:")]
    assert learning.peer == affine.peer and learning.target is None
    assert " µs vs affinity off" in learning.note
    assert rows[f"raw httpx, {MANY} clients in turn"].peer == "raw httpx, 1 client"
    assert "connections in turn cost raw httpx" in rows[f"Forge.chat, {MANY} deployments"].note
    warm = rows[f"plan: ollama hosts, warm-first, {MANY} deployments"]
    assert "/api/ps known" in warm.note
    assert rows["500: forge ForgeChat, circuit closed"].target == "≤ 1.5x"
    assert rows["500: forge ForgeChat, circuit closed"].note.startswith("primary tried")
    shares = [r for name, r in rows.items() if name.startswith("warm-first: share")]
    assert len(shares) == 2 and all(r.unit == "%" and r.target == "100%" for r in shares)
