"""`plan` and launch's fit check: vLLM 0.33's memory arithmetic on real model configs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_manager.adapters import hub
from agent_manager.adapters.hf_cache import hub_cache
from agent_manager.errors import HubError, LaunchError
from agent_manager.plan import memory, planner
from agent_manager.plan.memory import (
    GIB,
    kv_bytes_for_context,
    kv_bytes_per_token,
    kv_dtype_bytes,
)
from agent_manager.plan.shape import shape_from_config
from agent_manager.spec.agents import Agent, parse_spec
from tests.conftest import CliResult
from tests.fakes import nvml as fake_nvml
from tests.fakes.nvml import Scenario, device, process

CONFIGS = Path(__file__).parent / "fixtures" / "configs"
Cli = Callable[..., CliResult]

# Total *.safetensors bytes of the real checkpoints (hub file listings), split into shards.
CHECKPOINTS = {
    "Qwen/Qwen2.5-7B-Instruct-AWQ": ("Qwen2.5-7B-Instruct-AWQ", [3_990_000_000, 1_590_000_000]),
    "Qwen/Qwen2.5-14B-Instruct-AWQ": (
        "Qwen2.5-14B-Instruct-AWQ",
        [3_990_000_000] * 2 + [2_010_000_000],
    ),
    "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ": (
        "Qwen2.5-Coder-14B-Instruct-AWQ",
        [3_990_000_000] * 2 + [2_010_000_000],
    ),
    "Qwen/Qwen2.5-32B-Instruct-AWQ": (
        "Qwen2.5-32B-Instruct-AWQ",
        [3_990_000_000] * 4 + [3_340_000_000],
    ),
}


def config(name: str) -> dict[str, object]:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def cache_model(model: str, shards: list[int], config_name: str, index: bool = True) -> Path:
    """Put a checkpoint in the (test's) HF cache: config.json, sparse shards, refs/main."""
    repo = hub_cache() / ("models--" + model.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snapshot / "config.json").write_text((CONFIGS / f"{config_name}.json").read_text())
    names = [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    for name, size in zip(names, shards, strict=True):
        with open(snapshot / name, "wb") as handle:
            handle.truncate(size)  # sparse: the size is real, the disk use is not
    if index:
        weight_map = {f"layer.{i}": name for i, name in enumerate(names)}
        (snapshot / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": sum(shards)}, "weight_map": weight_map})
        )
    return snapshot


@pytest.fixture(autouse=True)
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub is never reached from these tests: every call answers "unreachable"."""

    def unreachable(*args: object) -> object:
        raise HubError("Cannot reach the hub (test).")

    monkeypatch.setattr(hub, "repo_files", unreachable)
    monkeypatch.setattr(hub, "download_file", unreachable)


@pytest.fixture
def cached_defaults() -> None:
    for model, (config_name, shards) in CHECKPOINTS.items():
        cache_model(model, shards, config_name)


def agent(workspace: Path, name: str, **fields: object) -> Agent:
    """An agent like the default spec `name`, with some fields replaced."""
    import yaml

    data = yaml.safe_load((workspace / "agents" / f"{name}.yaml").read_text())
    if fields.get("engine") == "cpu":
        data.pop("cpu", None)  # these tests size the spec's own model on the CPU
    data.update(fields)
    path = workspace / "agents" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return parse_spec(name, path, path.read_text())


# --- exact KV arithmetic -----------------------------------------------------------------------


def test_qwen25_7b_kv_cache_is_57344_bytes_per_token_in_bf16() -> None:
    shape = shape_from_config(config("Qwen2.5-7B-Instruct"))
    assert (shape.num_layers, shape.num_kv_heads, shape.head_dim) == (28, 4, 128)
    assert kv_dtype_bytes("auto", shape) == 2
    assert kv_bytes_per_token(shape, 2) == 57_344  # 2 x 28 x 4 x 128 x 2
    assert kv_bytes_per_token(shape, kv_dtype_bytes("fp8", shape) or 0) == 28_672


def test_qwen25_14b_and_32b_kv_cache_per_token() -> None:
    assert kv_bytes_per_token(shape_from_config(config("Qwen2.5-14B-Instruct")), 2) == 196_608
    assert kv_bytes_per_token(shape_from_config(config("Qwen2.5-32B-Instruct")), 2) == 262_144


def test_awq_checkpoints_keep_a_16_bit_kv_cache_on_auto() -> None:
    shape = shape_from_config(config("Qwen2.5-7B-Instruct-AWQ"))
    assert shape.quant_method == "awq" and shape.quant_bits == 4
    assert kv_dtype_bytes("auto", shape) == 2
    assert kv_dtype_bytes("fp8_e5m2", shape) == 1
    assert kv_dtype_bytes("nvfp4", shape) is None  # not modelled: reported as unknown


def test_kv_memory_is_allocated_in_whole_blocks_of_16_tokens() -> None:
    assert kv_bytes_for_context(57_344, 32_768) == 57_344 * 32_768  # 1.75 GiB
    assert kv_bytes_for_context(57_344, 17) == 57_344 * 32


def test_budget_is_the_ceiling_of_total_times_fraction() -> None:
    assert memory.budget_bytes(16 * GIB, 0.9) == 15_461_882_266


def test_weight_estimate_from_config_is_close_to_the_real_checkpoint() -> None:
    estimate = memory.estimate_weight_bytes(shape_from_config(config("Qwen2.5-7B-Instruct-AWQ")))
    assert estimate is not None and abs(estimate - 5_580_000_000) / 5_580_000_000 < 0.02


# --- weights from the cache --------------------------------------------------------------------


def test_weights_are_the_sum_of_the_cached_safetensors() -> None:
    from agent_manager.plan.checkpoint import read_checkpoint

    cache_model("Qwen/X", [1000, 234], "Qwen2.5-7B-Instruct")
    facts = read_checkpoint("Qwen/X", None)
    assert facts.weights.bytes == 1234 and not facts.weights.estimated
    assert facts.weights.source == "local cache, 2 safetensors files"
    assert facts.shape is not None and facts.shape.num_layers == 28


def test_a_missing_shard_makes_cached_weights_incomplete_and_labels_the_estimate() -> None:
    from agent_manager.plan.checkpoint import read_checkpoint

    snapshot = cache_model("Qwen/Y", [1000, 234], "Qwen2.5-7B-Instruct-AWQ")
    os.remove(snapshot / "model-00002-of-00002.safetensors")
    facts = read_checkpoint("Qwen/Y", None)
    assert facts.weights.estimated and facts.weights.source == "estimated from config.json"


def test_hub_file_sizes_are_used_when_the_cache_has_no_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent_manager.plan.checkpoint import read_checkpoint

    monkeypatch.setattr(
        hub,
        "repo_files",
        lambda model, revision: [
            hub.RepoFile("model-00001-of-00002.safetensors", 3_990_000_000),
            hub.RepoFile("model-00002-of-00002.safetensors", 1_590_000_000),
            hub.RepoFile("config.json", 900),
            hub.RepoFile("onnx/model.safetensors", 7),
        ],
    )
    facts = read_checkpoint("acme/Qwen2.5-7B-Instruct-AWQ-tuned", None)  # not a shipped default
    assert facts.weights.bytes == 5_580_000_000
    assert facts.weights.source == "hub file list, 2 safetensors files"
    assert facts.shape is None and "config.json" in facts.problems[0]


# --- verdicts ----------------------------------------------------------------------------------


def test_the_default_agents_fit_a_16_gib_card(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    result = cli("--home", str(workspace), "plan", "--gpu-memory", "16", "--json")
    assert result.code == 0, result.output
    plans = {p["agent"]: p for p in json.loads(result.stdout)["agents"]}
    assert {name: p["verdict"] for name, p in plans.items()} == {
        "architect": "fits",
        "developer": "fits",
        "po": "fits",
    }
    po = plans["po"]
    assert po["weights_bytes"] == 5_580_000_000
    assert po["kv_bytes_per_token"] == 57_344
    assert po["kv_cache_bytes"] == 57_344 * 32_768
    assert po["budget_bytes"] == 15_461_882_266
    assert po["needed_bytes"] + po["headroom_bytes"] == po["budget_bytes"]
    assert po["largest_context"] == 32_768  # capped at the model's limit
    architect = plans["architect"]
    assert architect["kv_cache_bytes"] == 196_608 * 8192
    assert architect["headroom_bytes"] > 2 * GIB
    assert 8192 < architect["largest_context"] < 32_768


def test_the_plan_table_shows_verdicts_and_the_arithmetic(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16")
    assert result.code == 0, result.output
    assert "GPU: 16 GiB GPU (on paper), 16.00 GiB total" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("po "))
    assert "5.20 GiB" in row and "32768" in row and "1.75 GiB" in row and "fits" in row
    assert (
        "KV cache 57,344 B/token (auto) x 32,768 tokens [max_context] = 1.75 GiB" in result.stdout
    )
    assert "an idle card is assumed" in result.stderr


def test_a_32b_awq_does_not_fit_16_gib_and_the_plan_says_what_to_do(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    agent(workspace, "architect", model="Qwen/Qwen2.5-32B-Instruct-AWQ")
    result = cli("--home", str(workspace), "plan", "architect", "--gpu-memory", "16")
    assert result.code == 1
    assert "does not fit" in result.stdout
    # 0.50 GiB less than before the CUDA-context correction: the context is outside the budget.
    assert "does not fit: needs 20.81 GiB" in result.stdout
    assert "but the budget is 14.40 GiB (0.90 x 16.00 GiB)" in result.stdout
    assert "fix: use a smaller model: its weights take most of the budget" in result.stdout
    assert "fix: or a GPU with at least 23.1 GiB (at gpu_memory_fraction 0.90)" in result.stdout
    # Saving 0.04 GiB of CUDA graphs cannot close a 6.91 GiB gap: not offered as a fix.
    assert "enforce_eager" not in result.stdout


def test_a_context_too_long_gets_the_largest_that_fits_and_fp8(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    agent(workspace, "architect", max_context=32768)
    result = cli("--home", str(workspace), "plan", "architect", "--gpu-memory", "16", "--json")
    assert result.code == 1
    (plan,) = json.loads(result.stdout)["agents"]
    assert plan["verdict"] == "does not fit"
    largest = plan["largest_context"]
    assert largest % 256 == 0 and 8192 < largest < 32768
    assert f"lower max_context to {largest} (the largest that fits this budget)" in plan["fixes"]
    assert plan["largest_context_fp8"] == 32768
    assert "kv_cache_dtype: fp8 halves the KV cache; 32768 tokens then fit" in plan["fixes"]


def test_auto_context_reports_the_largest_context_that_fits(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    agent(workspace, "architect", max_context="auto")
    result = cli("--home", str(workspace), "plan", "architect", "--gpu-memory", "16", "--json")
    (plan,) = json.loads(result.stdout)["agents"]
    assert plan["verdict"] == "fits"
    assert plan["context"] == plan["largest_context"] and plan["headroom_bytes"] >= 0


def test_auto_context_with_no_room_for_kv_cache_does_not_fit(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    agent(workspace, "architect", model="Qwen/Qwen2.5-32B-Instruct-AWQ", max_context="auto")
    result = cli("--home", str(workspace), "plan", "architect", "--gpu-memory", "16", "--json")
    assert result.code == 1
    (plan,) = json.loads(result.stdout)["agents"]
    assert (plan["verdict"], plan["context"]) == ("does not fit", 0)
    assert plan["reasons"] == ["no memory is left for even one block of KV cache"]


def test_plan_offline_without_cache_says_what_it_could_not_know(workspace: Path, cli: Cli) -> None:
    agent(workspace, "po", model="acme/Qwen2.5-7B-Instruct-AWQ-tuned")  # not a shipped default
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16", "--json")
    assert result.code == 0
    (plan,) = json.loads(result.stdout)["agents"]
    assert plan["verdict"] == "unknown"
    assert any("weights unknown" in u for u in plan["unknowns"])
    assert any("KV cache size unknown" in u for u in plan["unknowns"])


def test_plan_without_gpu_or_gpu_memory_asks_for_gpu_memory(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    fake_nvml.install_unavailable(monkeypatch)
    result = cli("--home", str(workspace), "plan")
    assert result.code == 1
    assert "Without a GPU, plan needs the card's memory." in " ".join(result.stderr.split())
    assert "--gpu-memory 16" in result.stderr and "Traceback" not in result.output


def test_plan_on_the_real_gpu_refuses_when_other_processes_hold_vram(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=3)], [process(999, 3)]))
    result = cli("--home", str(workspace), "plan", "po", "--json")
    assert result.code == 1
    (plan,) = json.loads(result.stdout)["agents"]
    assert plan["verdict"] == "does not fit"
    assert "vLLM requests 14.40 GiB at start but only 13.00 GiB is free" in plan["reasons"][0]
    assert "free GPU memory held by pid 999 (3.00 GiB)" in plan["fixes"]
    # 13.00 GiB free less the 0.50 GiB CUDA context: 0.78 x 16 GiB = 12.48 GiB passes the check.
    assert "lower gpu_memory_fraction to 0.78 (still fits, less KV cache)" in plan["fixes"]


# --- launch's pre-flight -----------------------------------------------------------------------


def test_ensure_fits_refuses_an_agent_that_cannot_fit(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=0.4)]))
    big = agent(workspace, "architect", model="Qwen/Qwen2.5-32B-Instruct-AWQ")
    with pytest.raises(LaunchError) as raised:
        planner.ensure_fits(big)
    assert raised.value.exit_code == 1
    assert raised.value.message.startswith("architect does not fit NVIDIA GeForce RTX 4080: needs")
    assert raised.value.hint is not None and "--force" in raised.value.hint
    assert any(line.startswith("fix: use a smaller model") for line in raised.value.details)
    warnings = planner.ensure_fits(big, force=True)
    assert len(warnings) == 1 and warnings[0].endswith("Launching anyway (--force).")


def test_ensure_fits_passes_a_fitting_agent_and_counts_our_running_agent_as_free(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The GPU is full of agent architect, which launch stops before starting po.
    monkeypatch.setattr(
        "agent_manager.observe.gpu.container_id_of", lambda pid, proc_root=None: "ab" * 32
    )
    from tests.fakes.docker import install_docker
    from tests.test_gpu_stats import _container

    install_docker(monkeypatch).containers["ab" * 32] = _container("ab" * 32, "architect")
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=14.8)], [process(50, 14.4)]))
    po = agent(workspace, "po")
    assert planner.ensure_fits(po) == []


def test_ensure_fits_without_nvml_warns_instead_of_checking(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.install_unavailable(monkeypatch)
    (warning,) = planner.ensure_fits(agent(workspace, "po"))
    assert warning.startswith("NVML unavailable: fit not checked")


def test_offline_planning_does_not_wait_on_download_retries(monkeypatch) -> None:
    """huggingface_hub retries a failed file download for ~25 s; offline, `plan` and `launch`
    must learn from one fast listing call that the hub is unreachable and not try."""
    from agent_manager.adapters import hub
    from agent_manager.plan import checkpoint as checkpoint_info

    def unreachable(model: str, revision: str | None) -> list[hub.RepoFile]:
        raise hub.HubUnreachableError(f"Cannot reach the hub for {model} (no network).")

    def must_not_download(*args: object) -> None:
        raise AssertionError("config.json download attempted although the hub is unreachable")

    monkeypatch.setattr(hub, "repo_files", unreachable)
    monkeypatch.setattr(hub, "download_file", must_not_download)
    facts = checkpoint_info.read_checkpoint("acme/Qwen2.5-7B-Instruct-AWQ-tuned", None)
    assert facts.shape is None and facts.weights.bytes is None
    assert any("Cannot reach the hub" in problem for problem in facts.problems)
    assert facts.weights.source == "not in the cache; hub: hub not reached"
