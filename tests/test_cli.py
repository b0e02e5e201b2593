"""The `forge` commands end to end, as a user runs them: the paths that need no model.

Those that reach llama-cpp-python's server are in test_cli_local_server.py; those that run the
embedded model are in test_cli_local_model.py.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from fault_server import FaultServer, held, ok
from forge_cli_runner import NO_KEY_ENV, forge_cli, invoke, ollama_config, write_config
from forge_core import EMBEDDED_MODEL, Forge, ForgeConfig, load_config
from forge_test_support import closed_port_url
from ollama_pull_server import OllamaPullServer


def test_bad_config_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "forge.yaml"
    config.write_text("model_preferences:\n  local_first: maybe\n")
    result = forge_cli("chat", "hi", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(config) in result.stderr
    assert "model_preferences.local_first" in result.stderr


def test_every_provider_down_exits_1_listing_them(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "forge.yaml",
        {
            "providers": {
                "local": {"ollama": {"base_url": closed_port_url()}},
                "fallback": {"order": ["ollama", "openai"]},
            }
        },
    )
    result = forge_cli("chat", "hi", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "every provider failed" in result.stderr
    assert "connection refused" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr


def test_config_check_prints_resolved_config_without_secrets(tmp_path: Path) -> None:
    from forge_core.cli import app
    from typer.testing import CliRunner

    config = write_config(
        tmp_path / "forge.yaml",
        {"providers": {"cloud": {"openai": {"api_key_env": "FORGE_TEST_OPENAI_KEY"}}}},
    )
    secret = "sk-forge-cli-canary-000111"
    result = CliRunner().invoke(
        app, ["config", "check", str(config), "--json"], env={"FORGE_TEST_OPENAI_KEY": secret}
    )
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["providers"]["cloud"]["openai"]["api_key"] == "${FORGE_TEST_OPENAI_KEY} (set)"
    assert data["providers"]["local"]["ollama"]["base_url"] == "http://localhost:11434"
    assert secret not in result.output


def test_config_check_points_at_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "forge.yaml"
    config.write_text("providers:\n  fallback:\n    order: [ollama, gemini]\n")
    result = forge_cli("config", "check", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{config}: providers.fallback.order[1]" in result.stderr
    assert "'gemini'" in result.stderr


# -- health, models, pull, warm, stats -------------------------------------------------------

LAYERS = [("sha256:aa11bb22cc33dd44", 2500), ("sha256:ee55ff6677", 1200)]


def test_health_exits_1_when_no_provider_can_serve(tmp_path: Path) -> None:
    config = ollama_config(
        tmp_path / "forge.yaml",
        closed_port_url(),
        "huggingface",
        "openai",
    )
    data = yaml.safe_load(config.read_text())
    data["providers"]["local"]["huggingface"] = {"models": [{"name": "no-such-model"}]}
    write_config(config, data)
    result = forge_cli("health", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "no provider can serve" in result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if "│" in line}
    assert "down" in lines["ollama"] and "health probe" in lines["ollama"]
    assert "not installed" in lines["huggingface"] and "no-such-model" in lines["huggingface"]
    assert "no key" in lines["openai"] and NO_KEY_ENV in lines["openai"]


def test_models_joins_pulled_shown_and_loaded_ollama_models_with_local_ones(
    tmp_path: Path,
) -> None:
    with OllamaPullServer({"tiny:1b": LAYERS}, pulled=["tiny:1b"], context_length=4096) as server:
        server.loaded.append("tiny:1b")
        config = ollama_config(tmp_path / "forge.yaml", server.base_url, "huggingface", "openai")
        # A fresh process, so the in-process model is certainly not loaded yet.
        result = forge_cli("models", "--json", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {(row["provider"], row["model"]): row for row in json.loads(result.stdout)}
    assert rows[("ollama", "tiny:1b")] == {
        "deployment": "ollama",
        "provider": "ollama",
        "endpoint": server.base_url,
        "model": "tiny:1b",
        "size_bytes": 3700,
        "context_window": 4096,
        "tools": True,
        "loaded": True,
    }
    local = rows[("huggingface", EMBEDDED_MODEL)]
    assert local["size_bytes"] > 0 and local["loaded"] is False
    assert local["context_window"] == load_config(config).providers.local.huggingface.n_ctx
    assert not any(provider == "openai" for provider, _ in rows)
    assert "skipped openai" in result.stderr and NO_KEY_ENV in result.stderr


def test_models_names_a_down_ollama_and_still_lists_the_rest(tmp_path: Path) -> None:
    config = ollama_config(tmp_path / "forge.yaml", closed_port_url(), "huggingface")
    result = forge_cli("models", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped ollama" in result.stderr
    assert EMBEDDED_MODEL in result.stdout


def test_pull_streams_documented_progress_into_a_bar_per_layer(tmp_path: Path) -> None:
    with OllamaPullServer({"tiny:1b": LAYERS}) as server:
        config = ollama_config(tmp_path / "forge.yaml", server.base_url)
        result = forge_cli("pull", "tiny:1b", "-c", str(config), cwd=tmp_path)
        pulled = list(server.pulled)
        sent = [body for method, path, body in server.requests if path == "/api/pull"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pulled tiny:1b"
    assert sent == [{"model": "tiny:1b", "stream": True}]
    assert pulled == ["tiny:1b"]
    for status in ("pulling manifest", "verifying sha256 digest", "writing manifest", "success"):
        assert status in result.stderr
    bars = [line for line in result.stderr.splitlines() if "━" in line]
    assert [bar.split()[0] for bar in bars] == ["aa11bb22cc33", "ee55ff6677"]
    assert "2.5/2.5 kB" in bars[0] and "1.2/1.2 kB" in bars[1]


def test_pull_goes_to_the_ollama_host_named_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    with (
        OllamaPullServer({"tiny:1b": LAYERS}) as laptop,
        OllamaPullServer({"tiny:1b": LAYERS}) as gpu_box,
    ):
        hosts = [
            {"name": "laptop", "base_url": laptop.base_url},
            {"name": "gpu-box", "base_url": gpu_box.base_url},
        ]
        config = write_config(
            tmp_path / "forge.yaml",
            {
                "providers": {
                    "local": {"ollama": {"hosts": hosts}},
                    "fallback": {"order": ["ollama"]},
                }
            },
        )
        named = invoke("pull", "tiny:1b", "--host", "gpu-box", "-c", str(config))
        first = invoke("pull", "tiny:1b", "-c", str(config))
        unknown = invoke("pull", "tiny:1b", "--host", "nas", "-c", str(config))
        pulled = (list(laptop.pulled), list(gpu_box.pulled))
    assert named.exit_code == 0 and first.exit_code == 0, named.output + first.output
    assert pulled == (["tiny:1b"], ["tiny:1b"])
    assert unknown.exit_code == 1
    assert "'nas' is not an Ollama deployment (known: laptop, gpu-box)" in unknown.stderr


def test_pull_of_an_unknown_model_exits_1_with_the_registry_reason(tmp_path: Path) -> None:
    with OllamaPullServer({"tiny:1b": LAYERS}) as server:
        config = ollama_config(tmp_path / "forge.yaml", server.base_url)
        result = forge_cli("pull", "nope:7b", "-c", str(config), cwd=tmp_path)
        pulled = list(server.pulled)
    assert result.returncode == 1
    assert "file does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert pulled == []


def test_pull_with_ollama_not_running_says_where_it_looked(tmp_path: Path) -> None:
    url = closed_port_url()
    config = ollama_config(tmp_path / "forge.yaml", url)
    result = invoke("pull", "tiny:1b", "-c", str(config))
    assert result.exit_code == 1
    assert url in result.stderr and "connection refused" in result.stderr


def test_bare_stats_says_they_are_per_process(tmp_path: Path) -> None:
    config = ollama_config(tmp_path / "forge.yaml", closed_port_url())
    result = invoke("stats", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "per process" in result.stderr and "--after-chat" in result.stderr
    assert "no requests routed" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["chat"], ["health"], ["models"], ["pull"], ["warm"], ["stats"], ["config", "check"]],
)
def test_every_command_has_help_with_examples(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.stdout
    assert "forge " + command[0] in result.stdout


def test_models_table_shows_unknown_as_a_dash_not_no() -> None:
    from forge_core.cli.format import yes_no

    assert [yes_no(True), yes_no(False), yes_no(None)] == ["yes", "no", "-"]


def test_health_and_config_check_show_each_deployment_with_its_host(tmp_path: Path) -> None:
    laptop, gpu_box, vllm = closed_port_url(), closed_port_url(), closed_port_url() + "/v1"
    config = write_config(
        tmp_path / "forge.yaml",
        {
            "providers": {
                "local": {
                    "ollama": {
                        "hosts": [
                            {"name": "laptop", "base_url": laptop},
                            {"name": "gpu-box", "base_url": gpu_box},
                        ],
                        "preferred_models": ["llama3.1:8b"],
                    }
                },
                "endpoints": [{"name": "lan-vllm", "kind": "openai", "base_url": vllm}],
                "fallback": {"order": ["ollama", "lan-vllm"]},
            }
        },
    )
    health = forge_cli("health", "--json", "--config", str(config), cwd=tmp_path)
    rows = json.loads(health.stdout)["providers"]
    assert [(r["deployment"], r["provider"], r["endpoint"]) for r in rows] == [
        ("laptop", "ollama", laptop),
        ("gpu-box", "ollama", gpu_box),
        ("lan-vllm", "openai", vllm),
    ]
    assert rows[0]["status"] == rows[1]["status"] == "down"
    table = forge_cli("health", "--config", str(config), cwd=tmp_path)
    assert "gpu-box (ollama)" in table.stdout and gpu_box.removeprefix("http://") in table.stdout

    check = forge_cli("config", "check", str(config), "--json", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    deployments = json.loads(check.stdout)["deployments"]
    assert deployments["by_name"]["lan-vllm"] == {
        "kind": "openai",
        "local": True,
        "endpoint": vllm,
    }
    assert deployments["sample_order"] == [
        "laptop:llama3.1:8b",
        "gpu-box:llama3.1:8b",
        "lan-vllm:gpt-4o-mini",
    ]


# -- balancing and cold loads: warm, health, stats --------------------------------------------


def _two_ollama_hosts(path: Path, laptop: str, gpu_box: str, **ollama: Any) -> Path:
    hosts = [{"name": "laptop", "base_url": laptop}, {"name": "gpu-box", "base_url": gpu_box}]
    return write_config(
        path,
        {
            "providers": {
                "local": {"ollama": {"hosts": hosts, "preferred_models": ["tiny:1b"], **ollama}},
                "cloud": {"openai": {"api_key_env": NO_KEY_ENV}},
                "fallback": {"order": ["ollama"]},
            }
        },
    )


@pytest.mark.parametrize(
    ("pulled_on", "loaded_on", "flags", "preloaded"),
    [
        (("laptop", "gpu-box"), ("gpu-box",), (), ["gpu-box"]),  # where it is loaded serves
        (("laptop", "gpu-box"), (), (), ["laptop"]),  # loaded nowhere: the config order
        (("gpu-box",), (), (), ["gpu-box"]),  # only a host that has it pulled
        (("laptop", "gpu-box"), ("gpu-box",), ("--all-hosts",), ["laptop", "gpu-box"]),
    ],
    ids=["loaded-host", "config-order", "pulled-host", "all-hosts"],
)
def test_warm_preloads_an_ollama_model_with_the_documented_body_on_the_hosts_that_will_serve(
    tmp_path: Path,
    pulled_on: tuple[str, ...],
    loaded_on: tuple[str, ...],
    flags: tuple[str, ...],
    preloaded: list[str],
) -> None:
    with OllamaPullServer({}) as laptop, OllamaPullServer({}) as gpu_box:
        servers = {"laptop": laptop, "gpu-box": gpu_box}
        for name, server in servers.items():
            server.pulled[:] = ["tiny:1b"] if name in pulled_on else []
            server.loaded[:] = ["tiny:1b"] if name in loaded_on else []
        config = _two_ollama_hosts(
            tmp_path / "forge.yaml", laptop.base_url, gpu_box.base_url, keep_alive="10m"
        )
        result = invoke("warm", "tiny:1b", *flags, "--json", "-c", str(config))
        text = invoke("warm", "tiny:1b", *flags, "-c", str(config))
        sent = {
            name: [body for _, path, body in server.requests if path == "/api/generate"]
            for name, server in servers.items()
        }
    assert result.exit_code == 0, result.output
    assert [entry["deployment"] for entry in json.loads(result.stdout)] == preloaded
    preload = {"model": "tiny:1b", "keep_alive": "10m"}
    assert sent == {name: [preload] * 2 if name in preloaded else [] for name in servers}
    first = servers[preloaded[0]].base_url.removeprefix("http://")
    assert f"loaded {preloaded[0]}:tiny:1b on {first} in " in text.stdout


def test_warm_of_a_model_pulled_nowhere_exits_1_and_names_it(tmp_path: Path) -> None:
    with OllamaPullServer({}, pulled=["other:2b"]) as laptop:
        config = _two_ollama_hosts(tmp_path / "forge.yaml", laptop.base_url, closed_port_url())
        result = invoke("warm", "tiny:1b", "-c", str(config))
        generated = [path for _, path, _ in laptop.requests if path == "/api/generate"]
    assert result.exit_code == 1
    assert "tiny:1b is not pulled on any Ollama host that answers" in result.stderr
    assert "skipped gpu-box" in result.stderr  # the host that does not answer
    assert generated == []


def test_health_shows_warming_while_a_request_forge_sent_waits_for_its_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forge_core.cli import health

    release = threading.Event()
    with (
        FaultServer([held(release, "loaded")], loaded=[]) as host,
        ThreadPoolExecutor(1) as pool,
    ):
        config = ForgeConfig.model_validate(
            {
                "providers": {
                    "local": {
                        "ollama": {
                            "hosts": [{"name": "gpu-box", "base_url": host.root_url}],
                            "preferred_models": ["m"],
                        }
                    },
                    "fallback": {"order": ["ollama"]},
                }
            }
        )
        forge = Forge(config)
        # The command reports on the Forge that routes: this one, with a request in flight.
        monkeypatch.setattr(health, "forge_or_exit", lambda _: forge)
        pending = pool.submit(forge.chat, "hi")
        assert host.wait_for_requests(1)
        as_json = invoke("health", "--json")
        table = invoke("health")
        release.set()
        assert pending.result(timeout=10).content == "loaded"
        after = invoke("health", "--json")
    assert as_json.exit_code == 0, as_json.output
    [row] = json.loads(as_json.stdout)["providers"]
    assert (row["deployment"], row["status"]) == ("gpu-box", "warming")
    assert row["reason"] == "loading m for a request forge sent"
    assert "warming" in table.stdout and "loading m" in table.stdout
    assert json.loads(after.stdout)["providers"][0]["status"] == "up"


def test_stats_show_in_flight_and_recent_latency_per_deployment(tmp_path: Path) -> None:
    with FaultServer(default=ok("hi there"), loaded=["tiny:1b"]) as host:
        config = ollama_config(tmp_path / "forge.yaml", host.root_url)
        as_json = invoke("stats", "--after-chat", "hi", "--json", "-c", str(config))
        table = invoke("stats", "--after-chat", "hi", "-c", str(config))
    assert as_json.exit_code == 0, as_json.output
    deployments = json.loads(as_json.stdout)["deployments"]
    assert list(deployments) == ["ollama"]
    load = deployments["ollama"]
    assert (load["endpoint"], load["in_flight"], load["loading"]) == (host.root_url, 0, [])
    assert list(load["latency_ms"]) == ["tiny:1b"] and load["latency_ms"]["tiny:1b"] > 0
    assert "in flight" in table.stdout and "recent latency ms" in table.stdout
    assert "tiny:1b " in table.stdout
