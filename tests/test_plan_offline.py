"""`plan` on a fresh machine: no cache, no hub, maybe no GPU. The default agents' models are
shipped (data/default-models.json), so they are never "unknown"; distinct models are looked up
once, concurrently, with a bounded wait."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_manager.adapters import hub
from agent_manager.plan import checkpoint, lookup
from agent_manager.plan.memory import estimate_weight_bytes
from agent_manager.plan.shipped import shipped_facts, shipped_models
from agent_manager.spec import engine_choice
from tests.conftest import CliResult
from tests.fakes import nvml as fake_nvml
from tests.test_planner import agent, no_hub

__all__ = ["no_hub"]  # every hub call answers "unreachable"

Cli = Callable[..., CliResult]
NO_GPU = engine_choice.MachineEngines(cuda=False, why_not="No NVIDIA GPU here (NVML reads none)")


def test_every_default_model_is_shipped_with_a_shape_and_weights(workspace: Path) -> None:
    import yaml

    wanted = set()
    for spec in (workspace / "agents").glob("*.yaml"):
        data = yaml.safe_load(spec.read_text())
        wanted |= {data["model"], data["cpu"]["model"]}
    assert wanted == set(shipped_models())
    for model in wanted:
        facts = shipped_facts(model, None)
        assert facts is not None and facts.shape is not None and facts.weights.bytes
        if facts.shape.quant_method is None:  # bf16: the size is the parameters x 2 bytes
            estimate = estimate_weight_bytes(facts.shape)
            assert estimate is not None and abs(facts.weights.bytes - estimate) < 0.02 * estimate
    assert shipped_facts("Qwen/Qwen2.5-1.5B-Instruct", "a-branch") is None


def test_plan_on_paper_offline_knows_every_default_agent(workspace: Path, cli: Cli) -> None:
    result = cli("--home", str(workspace), "plan", "--gpu-memory", "16", "--json")
    assert result.code == 0, result.output
    plans = json.loads(result.stdout)["agents"]
    assert {p["agent"]: p["verdict"] for p in plans} == {
        "architect": "fits",
        "developer": "fits",
        "po": "fits",
    }
    assert all(p["engine"] == "cuda" for p in plans)


def test_plan_without_a_gpu_plans_the_cpu_engine_of_each_default_agent(
    workspace: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import psutil

    fake_nvml.install_unavailable(monkeypatch)
    engine_choice.set_machine_probe(lambda: NO_GPU)
    memory = SimpleNamespace(total=32 * 2**30, available=30 * 2**30)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)
    result = cli("--home", str(workspace), "plan", "--json")
    assert result.code == 0, result.output
    plans = {p["agent"]: p for p in json.loads(result.stdout)["agents"]}
    verdicts = {name: (p["engine"], p["verdict"]) for name, p in plans.items()}
    assert verdicts == dict.fromkeys(("architect", "developer", "po"), ("cpu", "fits"))
    assert plans["po"]["model"] == "Qwen/Qwen2.5-1.5B-Instruct"


def test_agents_sharing_a_model_look_it_up_once_and_at_the_same_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    running = threading.Semaphore(0)

    def slow(model: str, revision: str | None) -> object:
        calls.append(model)
        running.release()
        time.sleep(0.3)
        return lookup._unknown("test")

    monkeypatch.setattr(checkpoint, "read_checkpoint", slow)
    keys = [("acme/a", None)] * 33 + [("acme/b", None), ("acme/c", None)]
    start = time.monotonic()
    found = lookup.read_checkpoints(keys)
    assert sorted(calls) == ["acme/a", "acme/b", "acme/c"]
    assert time.monotonic() - start < 0.8  # three at once, not 0.9 s in a row
    assert set(found) == {("acme/a", None), ("acme/b", None), ("acme/c", None)}


def test_a_hub_that_hangs_delays_plan_by_the_bounded_wait_only(
    workspace: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def hangs(model: str, revision: str | None) -> list[hub.RepoFile]:
        release.wait(30)
        raise hub.HubUnreachableError("late")

    monkeypatch.setattr(hub, "repo_files", hangs)
    monkeypatch.setattr(lookup, "LOOKUP_WAIT_S", 0.3)
    agent(workspace, "po", model="acme/custom-7b")
    start = time.monotonic()
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16", "--json")
    release.set()
    assert time.monotonic() - start < 5
    (plan,) = json.loads(result.stdout)["agents"]
    assert plan["verdict"] == "unknown"
    assert any("within 0.3 s" in u for u in plan["unknowns"])
