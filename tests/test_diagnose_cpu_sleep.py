"""The CPU engine's KV-space failures, vLLM's sleep-mode refusal, and the long-context warning
that must not hide a later failure. Lines recorded from the real vLLM 0.32 CPU server where it
produces them (tests/fixtures/vllm-0.32-cpu/, by tests/integration/test_real_vllm.py); the
"leaving none" line exists only in 0.33 and is rendered from its f-string (cpu_worker.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_manager.diagnosis.diagnose import Context, diagnose

FIXTURES = Path(__file__).parent / "fixtures" / "vllm-0.32-cpu"
TINY = Context(agent="tiny", spec_path=Path("agents/tiny.yaml"), exit_code=1, state="exited")
ENGINE = "(EngineCore_DP0 pid=93) ERROR 12-06 21:40:02 [core.py:1100] "
# vLLM 0.33 vllm/config/model.py logs this as a WARNING when VLLM_ALLOW_LONG_MAX_MODEL_LEN=1.
LONG_CONTEXT_WARNING = (
    "(APIServer pid=1) WARNING 12-06 21:39:50 [model.py:2678] User-specified max_model_len "
    "(32768) is greater than the derived max_model_len (max_position_embeddings=1024.0 or "
    "model_max_length=None in model's config.json). VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used "
    "with extreme caution. If the model uses relative position encoding (RoPE), positions "
    "exceeding derived_max_model_len lead to nan."
)


def recorded(name: str) -> list[str]:
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: record it with RECORD_VLLM_FIXTURES=1 (tests/integration)")
    return path.read_text(encoding="utf-8").splitlines()


def test_real_cpu_kv_space_error_names_the_field_and_the_numbers() -> None:
    lines = recorded("fail-cpu-kv-space.log")
    assert any("VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used" in line for line in lines)
    failure = diagnose(lines, TINY)
    assert failure.kind == "cpu-kv-space"
    assert "asks for 4096 GiB of host RAM" in failure.summary
    assert "cpu_kv_cache_gib in agents/tiny.yaml" in failure.fix


def test_real_sleep_mode_refusal_on_cpu_says_switch_cold() -> None:
    failure = diagnose(recorded("fail-sleep-on-cpu.log"), TINY)
    assert failure.kind == "sleep-unsupported"
    assert "no sleep mode" in failure.summary
    assert "'switch: cold' in agents/tiny.yaml" in failure.fix


def test_the_auto_sized_kv_space_error_is_named_too() -> None:
    line = (
        ENGINE + "ValueError: Available memory on node 0 (3.10/23.42 GiB) on kv cache allocation "
        "is less than requested memory for kv (9.50/12.00 GiB). Reduce CPU memory used by "
        "other processes."
    )
    failure = diagnose([line], TINY)
    assert failure.kind == "cpu-kv-space"
    assert failure.summary == (
        "The CPU engine's KV cache asks for 9.5 GiB of host RAM, but only 3.1 of 23.42 GiB is "
        "available on NUMA node 0."
    )


def test_a_reservation_the_weights_already_fill_is_named() -> None:
    line = (
        ENGINE + "ValueError: The worker already uses 6.20 GiB (model weights and runtime), "
        "more than the 4.00 GiB of CPU memory reserved for it on node 0, leaving none for the "
        "KV cache. On the CPU backend, the `--gpu-memory-utilization` flag controls the "
        "fraction of CPU memory reserved (despite its name)."
    )
    failure = diagnose([line], TINY)
    assert failure.kind == "cpu-kv-none"
    assert "(6.2 GiB for weights and runtime)" in failure.summary
    assert "of 4 GiB" in failure.summary


def test_the_long_context_warning_does_not_make_a_later_failure_a_context_one() -> None:
    oom = ENGINE + "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."
    failure = diagnose([LONG_CONTEXT_WARNING, oom], TINY)
    assert failure.kind == "out-of-memory"
    alone = diagnose([LONG_CONTEXT_WARNING], TINY)
    assert alone.kind == "unrecognised"


def test_the_real_refusal_is_still_context_above_model() -> None:
    failure = diagnose((FIXTURES / "fail-max-context.log").read_text().splitlines(), TINY)
    assert failure.kind == "context-above-model"
