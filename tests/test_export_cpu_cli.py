"""`export` sizes a CPU agent's pod with the planner's own figure, read from the same cache
`plan` reads; and the options the cluster targets add reach the files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from agent_manager.plan.memory import GIB
from tests.test_plan_cpu import host
from tests.test_planner import Cli, agent, cached_defaults, no_hub  # noqa: F401 - fixtures

VALUES = Path("kubernetes") / "production-stack-values.yaml"


def planned_gib(cli: Cli, workspace: Path) -> int:
    result = cli("--home", str(workspace), "plan", "po", "--json")
    (plan,) = json.loads(result.stdout)["agents"]
    return math.ceil(plan["budget_bytes"] / GIB)


@pytest.mark.usefixtures("cached_defaults")
def test_a_cpu_pod_gets_the_memory_plan_computes_plus_its_shm(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    host(monkeypatch, total_gib=32, available_gib=30)
    agent(workspace, "po", engine="cpu")
    budget = planned_gib(cli, workspace)  # 11.00 GiB: weights 5.20 + 1.80 allowances + KV 4
    assert budget == 11

    result = cli("--home", str(workspace), "export", "production-stack", "po")
    assert result.code == 0, result.output
    (entry,) = yaml.safe_load((workspace / VALUES).read_text())["servingEngineSpec"]["modelSpec"]
    assert entry["requestMemory"] == entry["limitMemory"] == f"{budget + 1}Gi"
    assert entry["requestGPU"] == 0 and entry["runtimeClassName"] == ""
    env = {e["name"]: e["value"] for e in entry["env"]}
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"

    result = cli("--home", str(workspace), "export", "kubeai", "po")
    assert result.code == 0, result.output
    model = yaml.safe_load((workspace / "kubernetes" / "kubeai" / "po.yaml").read_text())
    assert model["spec"]["resourceProfile"] == "cpu:6"  # 6 x 2 Gi covers 12 GiB
    assert "resourceProfile cpu:6 (6 CPU, 12 Gi) covers the planned 12 GiB" in " ".join(
        result.stderr.split()
    )


def test_a_cpu_agent_the_plan_cannot_size_is_exported_with_a_warning(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    # Not a shipped default model (plan/shipped.py), nothing cached, and the hub does not answer.
    agent(workspace, "po", engine="cpu", model="acme/Qwen2.5-7B-Instruct-AWQ-tuned")
    result = cli("--home", str(workspace), "export", "kubeai", "po")
    assert result.code == 0, result.output
    flat = " ".join(result.stderr.split())
    assert "Warning: po: 'engine': memory not planned" in flat
    assert "Define a resource profile" in flat


def test_production_stack_options_reach_the_values(workspace: Path, cli: Cli) -> None:
    result = cli(
        "--home",
        str(workspace),
        "export",
        "production-stack",
        "--startup-timeout",
        "45m",
        "--pvc-storage",
        "80Gi",
    )
    assert result.code == 0, result.output
    values = yaml.safe_load((workspace / VALUES).read_text())
    assert values["servingEngineSpec"]["startupProbe"]["failureThreshold"] == 270  # 45 min / 10 s
    assert {e["pvcStorage"] for e in values["servingEngineSpec"]["modelSpec"]} == {"80Gi"}


def test_kubeai_max_replicas_reaches_every_model(workspace: Path, cli: Cli) -> None:
    result = cli("--home", str(workspace), "export", "kubeai", "--max-replicas", "2")
    assert result.code == 0, result.output
    for path in sorted((workspace / "kubernetes" / "kubeai").glob("*.yaml")):
        assert yaml.safe_load(path.read_text())["spec"]["maxReplicas"] == 2
