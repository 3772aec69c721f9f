"""The planner's arithmetic alone, with plain values, and the corrections read from vLLM 0.33's
code: the CUDA context outside the budget, float32 at 4 bytes, RoPE scaling in the model's limit,
the A100 exception to the batch defaults, CUDA's total (NVML v2) and `2K` = 2048."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent_manager.adapters import nvml
from agent_manager.adapters.hf_cache import snapshot_dir
from agent_manager.plan import memory
from agent_manager.plan.models import CheckpointFacts, GpuTarget, Weights
from agent_manager.plan.planner import gpu_target_from_nvml
from agent_manager.plan.shape import shape_from_config
from agent_manager.plan.verdict import plan_agent
from agent_manager.spec.agents import parse_spec
from agent_manager.units import GIB, MIB
from tests.fakes import nvml as fake_nvml
from tests.fakes.nvml import FakePynvml, Scenario, device
from tests.test_planner import Cli, agent, cached_defaults, config, no_hub

__all__ = ["cached_defaults", "no_hub"]  # fixtures shared with test_planner

# --- plain values in, bytes out ------------------------------------------------------------------


def test_the_largest_fraction_passes_vllms_start_check_and_the_smallest_holds_the_need() -> None:
    free, total = 14 * GIB, 16 * GIB
    fraction = memory.largest_fraction(free, total)
    assert fraction == 0.87
    assert memory.budget_bytes(total, fraction) <= free < memory.budget_bytes(total, 0.88)
    assert memory.smallest_fraction(12 * GIB, total) == 0.75


def test_largest_context_is_whole_blocks_rounded_and_capped() -> None:
    assert memory.largest_context(0, 57_344, None) == 0
    assert memory.largest_context(1 * GIB, 57_344, None) == 18_688  # 18,724 tokens, rounded
    assert memory.largest_context(10 * GIB, 57_344, 32_768) == 32_768


def _plain_plan(total: int, free: int | None, fraction: float = 0.9) -> Any:
    """plan_agent on plain values: a spec, a config dict, a weight size and a GPU."""
    path = Path("agents/po.yaml")
    spec = "model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\nmax_context: 8192\n"
    spec += f"gpu_memory_fraction: {fraction}\nmax_num_seqs: 4\n"
    facts = CheckpointFacts(
        shape=shape_from_config(config("Qwen2.5-7B-Instruct-AWQ")),
        config_source="test",
        weights=Weights(bytes=5_580_000_000, source="test"),
    )
    target = GpuTarget(name="card", source="nvml", total_bytes=total, free_bytes=free)
    return plan_agent(parse_spec("po", path, spec), facts, target)


def test_a_plan_is_worked_out_from_plain_values() -> None:
    plan = _plain_plan(16 * GIB, 16 * GIB)
    assert plan.verdict == "fits"
    assert plan.kv_cache_bytes == 57_344 * 8192
    assert plan.needed_bytes + plan.headroom_bytes == plan.budget_bytes


# --- the CUDA context: outside the budget, but it lowers the free memory vLLM checks ------------


def test_the_cuda_context_counts_against_free_memory_not_the_budget() -> None:
    # Free 14.5 GiB: vLLM creates its context (~0.5 GiB), then sees ~14.0 GiB < 14.4 GiB.
    plan = _plain_plan(16 * GIB, int(14.5 * GIB))
    assert plan.verdict == "does not fit"
    assert "14.00 GiB once its CUDA context (~0.50 GiB) exists" in plan.reasons[0]
    assert "lower gpu_memory_fraction to 0.87 (still fits, less KV cache)" in plan.fixes
    assert _plain_plan(16 * GIB, int(14.5 * GIB), fraction=0.87).verdict == "fits"
    # ... and the context is no longer inside the budget: only non-torch memory after the snapshot.
    allowances = {a.name: a.bytes for a in plan.allowances}
    assert allowances["non-torch"] == 256 * MIB and "CUDA context + non-torch" not in allowances


def test_architect_on_a_card_with_14_5_gib_free_does_not_fit_and_the_fix_does(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=1.5)]))
    result = cli("--home", str(workspace), "plan", "architect", "--json")
    assert result.code == 1, result.output
    (plan,) = json.loads(result.stdout)["agents"]
    assert plan["verdict"] == "does not fit"
    assert "lower gpu_memory_fraction to 0.87 (still fits, less KV cache)" in plan["fixes"]
    agent(workspace, "architect", gpu_memory_fraction=0.87)
    result = cli("--home", str(workspace), "plan", "architect", "--json")
    assert result.code == 0, result.output


def test_on_paper_a_fraction_above_what_an_idle_card_leaves_does_not_fit(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    agent(workspace, "po", gpu_memory_fraction=0.98)
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16", "--json")
    assert result.code == 1
    (plan,) = json.loads(result.stdout)["agents"]
    assert "an idle 16.00 GiB card has only about 15.50 GiB free" in plan["reasons"][0]
    assert "lower gpu_memory_fraction to 0.96 (still fits, less KV cache)" in plan["fixes"]


# --- float32, RoPE scaling, batch defaults, `2K` --------------------------------------------------


def test_float32_is_four_bytes_per_element() -> None:
    shape = shape_from_config(config("Qwen2.5-7B-Instruct"))
    assert memory.kv_dtype_bytes("auto", shape, "float32") == 4
    assert memory.kv_dtype_bytes("auto", shape, "float") == 4
    assert memory.kv_dtype_bytes("auto", shape) == 2  # a float32 checkpoint still runs in 16 bits
    bf16 = memory.estimate_weight_bytes(shape)
    fp32 = memory.estimate_weight_bytes(shape, "float")
    assert bf16 is not None and fp32 is not None and fp32 == 2 * bf16


def test_rope_scaling_factor_raises_the_models_limit_as_vllm_derives_it() -> None:
    base = config("Qwen2.5-7B-Instruct")
    assert shape_from_config(base).context_limit == 32_768
    linear = {**base, "rope_scaling": {"type": "linear", "factor": 4.0}}
    assert shape_from_config(linear).context_limit == 131_072
    dynamic = {**base, "rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}
    assert shape_from_config(dynamic).context_limit == 65_536
    # YaRN, LongRoPE and Llama 3 leave max_position_embeddings already scaled (vLLM 0.32+).
    yarn = {**base, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}
    assert shape_from_config(yarn).context_limit == 32_768
    # The smallest of the length keys wins.
    assert shape_from_config({**base, "seq_length": 8192}).context_limit == 8192


def test_a_context_within_the_scaled_limit_is_not_refused(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    scaled = {**config("Qwen2.5-7B-Instruct-AWQ"), "rope_scaling": {"type": "linear", "factor": 2}}
    snapshot = snapshot_dir("Qwen/Qwen2.5-7B-Instruct-AWQ", None)
    assert snapshot is not None
    (snapshot / "config.json").write_text(json.dumps(scaled))
    agent(workspace, "po", max_context=65536)
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "80", "--json")
    (plan,) = json.loads(result.stdout)["agents"]
    assert plan["model_max_context"] == 65_536
    assert not any("above the model's limit" in reason for reason in plan["reasons"])


@pytest.mark.parametrize(
    ("total_gib", "name", "expected"),
    [
        (16, "NVIDIA GeForce RTX 4080", (256, 2048)),
        (80, "NVIDIA A100-SXM4-80GB", (256, 2048)),  # the A100 exception (vLLM PR #17885)
        (80, "NVIDIA H100 80GB HBM3", (1024, 8192)),
        (141, "NVIDIA H200", (1024, 8192)),
        (180, "NVIDIA B200", (1024, 16384)),
    ],
)
def test_batch_defaults_follow_vllms_tiers(
    total_gib: int, name: str, expected: tuple[int, int]
) -> None:
    assert memory.batch_defaults(total_gib * GIB, name) == expected


def test_an_a100_is_planned_with_the_small_batch_defaults(
    workspace: Path, cached_defaults: None, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    agent(workspace, "po", max_num_seqs=None)
    a100 = device(name="NVIDIA A100-SXM4-80GB", total_gib=80, used_gib=0.5)
    fake_nvml.install(monkeypatch, Scenario([a100]))
    result = cli("--home", str(workspace), "plan", "po", "--json")
    (plan,) = json.loads(result.stdout)["agents"]
    sources = {a["name"]: a["source"] for a in plan["allowances"]}
    assert (
        "dummy forward of 2048 batched tokens + sampler for 256 sequences"
        in sources["activation peak"]
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("2K", 2048), ("2k", 2000), ("25.6k", 25_600), ("1M", 1_048_576), ("8192", 8192)],
)
def test_token_counts_are_read_as_vllm_reads_them(text: str, value: int) -> None:
    assert memory.human_int(text) == value


def test_decimals_with_a_binary_suffix_are_refused_as_vllm_refuses_them() -> None:
    assert memory.human_int("1.5K") is None and memory.human_int("lots") is None


def test_max_num_batched_tokens_2k_is_2048_in_the_plan(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    agent(workspace, "po", extra_args=["--max-num-batched-tokens", "4K"])
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16", "--json")
    (plan,) = json.loads(result.stdout)["agents"]
    sources = {a["name"]: a["source"] for a in plan["allowances"]}
    assert "dummy forward of 4096 batched tokens" in sources["activation peak"]


# --- CUDA's total: NVML v2's total less the driver's reserve ------------------------------------


class FakePynvmlV2(FakePynvml):
    nvmlMemory_v2 = 0x02000028  # noqa: N815 - pynvml's name

    def nvmlDeviceGetMemoryInfo(  # noqa: N802
        self, handle: int, version: int | None = None
    ) -> SimpleNamespace:
        if version is None:
            return SimpleNamespace(total=16 * GIB, used=2 * GIB, free=14 * GIB)
        return SimpleNamespace(total=16 * GIB, reserved=400 * MIB, used=1600 * MIB, free=14 * GIB)


def test_the_nvml_adapter_reads_the_drivers_reserve_from_v2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_nvml.install_pynvml(monkeypatch, FakePynvmlV2())
    try:
        (gpu,) = nvml.get_nvml().devices()
    finally:
        nvml.reset()
    assert (gpu.memory_total_bytes, gpu.memory_reserved_bytes) == (16 * GIB, 400 * MIB)


def test_the_budget_is_a_fraction_of_cudas_total_not_nvmls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_nvml.install(monkeypatch, Scenario([device(memory_reserved_bytes=400 * MIB)]))
    target = gpu_target_from_nvml()
    assert target.total_bytes == 16 * GIB - 400 * MIB and target.total_exact
    assert target.device_total_bytes == 16 * GIB  # what vLLM picks its batch defaults from


def test_without_nvml_v2_the_total_is_said_to_be_approximate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_nvml.install(monkeypatch, Scenario([device()]))
    target = gpu_target_from_nvml()
    assert target.total_bytes == 16 * GIB and not target.total_exact
    assert any("reserved memory is not known" in note for note in target.notes)


def test_suggested_contexts_never_exceed_the_models_limit(
    workspace: Path, cached_defaults: None, cli: Cli
) -> None:
    agent(workspace, "po", max_context=262_144)
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16", "--json")
    (plan,) = json.loads(result.stdout)["agents"]
    assert "set max_context: 32768 (or less)" in plan["fixes"]
    assert "kv_cache_dtype: fp8 halves the KV cache; up to 32768 tokens then fit" in plan["fixes"]
    numbers = [int(word) for fix in plan["fixes"] for word in fix.split() if word.isdigit()]
    assert numbers and max(numbers) <= 32_768
