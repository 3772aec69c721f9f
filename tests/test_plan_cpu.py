"""`engine: cpu` agents are planned against host RAM, as vLLM's CPU worker sizes itself:
a share of host RAM (gpu_memory_fraction) or VLLM_CPU_KVCACHE_SPACE GiB of KV cache."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent_manager.errors import LaunchError
from agent_manager.plan import planner
from agent_manager.plan.memory import GIB
from tests.fakes import nvml as fake_nvml
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


def test_a_cpu_agent_is_planned_against_host_ram_without_a_gpu(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=32, available_gib=30)
    agent(workspace, "po", engine="cpu")
    result = cli("--home", str(workspace), "plan", "po")
    assert result.code == 0, result.output
    assert "CPU plan: host RAM, 32.00 GiB total, 30.00 GiB available" in result.stdout
    assert "po: Qwen/Qwen2.5-7B-Instruct-AWQ — fits (CPU plan, host RAM)" in result.stdout
    assert "budget 0.90 x host RAM = 28.80 GiB" in result.stdout
    code, plan = plan_json(cli, workspace, "po")
    assert plan["engine"] == "cpu" and plan["verdict"] == "fits"
    names = [a["name"] for a in plan["allowances"]]
    assert names == ["vLLM runtime", "activation peak"]  # no CUDA graphs, no CUDA context


def test_kv_space_too_small_for_the_context_does_not_fit_and_says_what_to_set(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=32, available_gib=30)
    agent(workspace, "po", engine="cpu", env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1 and plan["verdict"] == "does not fit"
    assert plan["reasons"] == [
        "one request of 32768 tokens needs 1.75 GiB of KV cache but VLLM_CPU_KVCACHE_SPACE "
        "gives 1.00 GiB"
    ]
    fixes = plan["fixes"]
    assert "lower max_context to 18688 (the largest that fits VLLM_CPU_KVCACHE_SPACE)" in fixes
    assert any(fix.startswith('set VLLM_CPU_KVCACHE_SPACE: "2" in env') for fix in fixes)


def test_a_budget_above_available_ram_gets_a_lower_share_or_a_kv_space(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=32, available_gib=12)
    agent(workspace, "po", engine="cpu")
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1
    assert plan["reasons"] == [
        "vLLM takes 28.80 GiB of host RAM for its budget but only 12.00 GiB is available "
        "(vLLM refuses to start below that)"
    ]
    fixes = plan["fixes"]
    assert (
        "lower gpu_memory_fraction to 0.37 (on CPU it is the share of host RAM) "
        "(still fits, less KV cache)" in fixes
    )
    assert any(fix.startswith('set VLLM_CPU_KVCACHE_SPACE: "2" in env') for fix in fixes)


def test_the_kv_space_replaces_the_fraction_and_must_fit_available_ram(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=16, available_gib=8)
    agent(workspace, "po", engine="cpu", max_context=8192, env={"VLLM_CPU_KVCACHE_SPACE": "4"})
    code, plan = plan_json(cli, workspace, "po")
    assert code == 1
    budget = plan["budget_bytes"]
    assert isinstance(budget, int) and budget > 8 * GIB  # weights + runtime + 4 GiB
    assert "but only 8.00 GiB is available" in plan["reasons"][0]
    assert any(fix.startswith('set VLLM_CPU_KVCACHE_SPACE: "1" in env') for fix in plan["fixes"])


def test_launch_checks_a_cpu_agent_against_host_ram(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_manager.spec.agents import parse_spec

    host(monkeypatch, total_gib=8, available_gib=6)
    path = agent(workspace, "po", engine="cpu").path
    po = parse_spec("po", path, path.read_text())
    with pytest.raises(LaunchError) as raised:
        planner.ensure_fits(po)
    message = raised.value.message
    assert message.startswith("po does not fit host RAM: needs ")
    assert "vLLM takes 7.20 GiB of host RAM for its budget but only 6.00 GiB is" in message
