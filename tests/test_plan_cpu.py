"""`engine: cpu` agents are planned against host RAM, as vLLM's CPU worker sizes itself.

The compose file always sets VLLM_CPU_KVCACHE_SPACE to `cpu_kv_cache_gib`: the KV space is
that many GiB, it must hold one request of the context, and weights + runtime + KV space must
be available in host RAM (vLLM loads the weights, then refuses a KV space larger than what
is still available)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent_manager.errors import LaunchError
from agent_manager.plan import planner
from agent_manager.spec.workspace import resolve_workspace
from agent_manager.switch.context import LaunchEvents, LaunchOptions
from agent_manager.switch.core import switch_to as launch
from agent_manager.units import GIB
from tests.fakes import nvml as fake_nvml
from tests.fakes.docker import FakeDocker, install
from tests.test_planner import Cli, agent, cached_defaults, no_hub

__all__ = ["cached_defaults", "no_hub"]  # fixtures shared with test_planner


def host(monkeypatch: pytest.MonkeyPatch, total_gib: float, available_gib: float) -> None:
    """The host's RAM as psutil reports it."""
    import psutil

    memory = SimpleNamespace(total=int(total_gib * GIB), available=int(available_gib * GIB))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU plans never need NVML."""
    fake_nvml.install_unavailable(monkeypatch)


def plan_json(cli: Cli, workspace: Path, name: str) -> tuple[int, dict[str, Any]]:
    result = cli("--home", str(workspace), "plan", name, "--json")
    report = json.loads(result.stdout)
    (plan,) = report["agents"]
    assert report["gpu"] is None and report["host"] is not None
    return result.code, plan


# Qwen2.5-7B-Instruct-AWQ (the cached default): weights 5.20 GiB, vLLM runtime 1.50 GiB and
# activation peak 0.30 GiB, so 7.00 GiB before the KV space; 57,344 B of KV cache per token.
NEEDS = "vLLM needs {} of host RAM for the weights, its runtime and cpu_kv_cache_gib: {}"
REFUSES = (
    " (once the weights are loaded, vLLM refuses to allocate a KV space larger than the RAM "
    "still available)"
)


def test_a_cpu_agent_needs_its_weights_runtime_and_kv_space_in_host_ram(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=32, available_gib=30)
    agent(workspace, "po", engine="cpu")
    result = cli("--home", str(workspace), "plan", "po")
    assert result.code == 0, result.output
    assert "CPU plan: host RAM, 32.00 GiB total, 30.00 GiB available" in result.stdout
    assert "po: Qwen/Qwen2.5-7B-Instruct-AWQ — fits (CPU plan, host RAM)" in result.stdout
    assert "budget weights + allowances + cpu_kv_cache_gib 4.00 GiB = 11.00 GiB" in result.stdout
    code, plan = plan_json(cli, workspace, "po")
    assert code == 0 and plan["engine"] == "cpu" and plan["verdict"] == "fits"
    names = [a["name"] for a in plan["allowances"]]
    assert names == ["vLLM runtime", "activation peak"]  # no CUDA graphs, no CUDA context
    fixed = plan["weights_bytes"] + sum(a["bytes"] for a in plan["allowances"])
    assert plan["budget_bytes"] == fixed + 4 * GIB
    assert plan["headroom_bytes"] == 4 * GIB - plan["kv_cache_bytes"]  # 32768 tokens, 1.75 GiB


def test_gpu_memory_fraction_does_not_size_a_cpu_agent(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """The CPU compose file passes no --gpu-memory-utilization: the fraction changes nothing."""
    host(monkeypatch, total_gib=32, available_gib=30)
    agent(workspace, "po", engine="cpu", gpu_memory_fraction=0.9)
    _, high = plan_json(cli, workspace, "po")
    agent(workspace, "po", engine="cpu", gpu_memory_fraction=0.05)
    code, low = plan_json(cli, workspace, "po")
    assert code == 0 and low["verdict"] == "fits"
    assert low["budget_bytes"] == high["budget_bytes"]
    assert low["budget_source"] == "weights + allowances + cpu_kv_cache_gib 4.00 GiB"


def test_a_kv_space_too_small_for_the_context_says_the_kv_space_or_context_that_fits(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=32, available_gib=30)
    agent(workspace, "po", engine="cpu", cpu_kv_cache_gib=1)
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1 and plan["verdict"] == "does not fit"
    assert plan["reasons"] == [
        "one request of 32768 tokens needs 1.75 GiB of KV cache but cpu_kv_cache_gib: 1 gives "
        "1.00 GiB"
    ]
    assert plan["fixes"] == [
        "lower max_context to 18688 (the largest that fits cpu_kv_cache_gib: 1)",
        "set cpu_kv_cache_gib: 2 (2 GiB of KV cache holds 32768 tokens)",
    ]


def test_the_suggested_kv_space_holds_the_models_limit_not_a_context_above_it(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=32, available_gib=30)
    agent(workspace, "po", engine="cpu", cpu_kv_cache_gib=1, max_context=65536)
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1
    assert plan["reasons"][0] == (
        "max_context 65536 is above the model's limit of 32768 tokens (vLLM refuses it)"
    )
    assert plan["fixes"] == [
        "set max_context: 32768 (or less)",
        "lower max_context to 18688 (the largest that fits cpu_kv_cache_gib: 1)",
        "set cpu_kv_cache_gib: 2 (2 GiB of KV cache holds 32768 tokens)",
    ]


def test_a_suggested_kv_space_says_when_host_ram_cannot_hold_it(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=16, available_gib=8.5)
    agent(workspace, "po", engine="cpu", cpu_kv_cache_gib=1)
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1 and len(plan["reasons"]) == 1  # 8.00 GiB needed: RAM holds 1 GiB of KV
    assert plan["fixes"][1] == (
        "set cpu_kv_cache_gib: 2 (2 GiB of KV cache holds 32768 tokens; host RAM then needs "
        "9.00 GiB, 0.50 GiB more than is available)"
    )


def test_not_enough_available_ram_says_how_much_to_free_or_a_kv_space_that_still_holds_it(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=16, available_gib=9)
    agent(workspace, "po", engine="cpu", max_context=8192)
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1 and plan["verdict"] == "does not fit"
    assert plan["reasons"] == [
        NEEDS.format("11.00 GiB", 4) + " but only 9.00 GiB is available" + REFUSES
    ]
    assert plan["fixes"] == [
        "free 2.00 GiB of host RAM (close other programs or containers)",
        "lower cpu_kv_cache_gib to 1 (1 GiB still holds 8192 tokens)",
    ]


def test_when_available_ram_holds_less_kv_than_the_context_needs_it_says_both_settings(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=16, available_gib=8.5)
    agent(workspace, "po", engine="cpu")
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1
    assert plan["reasons"] == [
        NEEDS.format("11.00 GiB", 4) + " but only 8.50 GiB is available" + REFUSES
    ]
    assert plan["fixes"] == [
        "free 2.50 GiB of host RAM (close other programs or containers)",
        "lower cpu_kv_cache_gib to 1 and max_context to 18688 (what the available RAM holds)",
    ]


def test_weights_alone_above_available_ram_suggest_a_smaller_model(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=8, available_gib=6)
    agent(workspace, "po", engine="cpu")
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1
    assert plan["fixes"] == [
        "free 5.00 GiB of host RAM (close other programs or containers)",
        "use a smaller model: its weights take most of the available RAM",
    ]


def test_launch_refuses_a_cpu_agent_that_does_not_fit_unless_forced(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_fits = planner.ensure_fits
    fake: FakeDocker = install(monkeypatch)
    monkeypatch.setattr(planner, "ensure_fits", ensure_fits)  # the fake skips the planner
    host(monkeypatch, total_gib=8, available_gib=6)
    agent(workspace, "po", engine="cpu")
    said: list[str] = []
    events = LaunchEvents(message=said.append, warning=said.append)
    ws = resolve_workspace(workspace)
    with pytest.raises(LaunchError) as raised:
        launch(ws, "po", LaunchOptions(), events)
    reason = NEEDS.format("11.00 GiB", 4) + " but only 6.00 GiB is available" + REFUSES
    assert raised.value.message == f"po does not fit host RAM: {reason}."
    assert raised.value.details[0] == (
        "fix: free 5.00 GiB of host RAM (close other programs or containers)"
    )
    assert fake.running() == []
    launch(ws, "po", LaunchOptions(force=True), events)
    assert f"po does not fit host RAM: {reason}. Launching anyway (--force)." in said
    assert fake.running() == ["po"]
