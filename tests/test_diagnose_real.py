"""Diagnosis against what the REAL vLLM printed (vLLM 0.32.0 CPU build, recorded in
tests/fixtures/vllm-0.32-cpu/ by tests/integration/test_real_vllm.py), and the rules that
vLLM 0.33's own code (gpu_worker.py, gpu_model_runner.py) and huggingface_hub's call for."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_manager.diagnosis.diagnose import Context, diagnose

FIXTURES = Path(__file__).parent / "fixtures" / "vllm-0.32-cpu"
SPEC = Path("agents/tiny.yaml")
TINY = Context(agent="tiny", spec_path=SPEC, exit_code=1, state="exited")


def recorded(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def test_real_max_context_above_the_model_quotes_both_numbers() -> None:
    failure = diagnose(recorded("fail-max-context.log"), TINY)
    assert failure.kind == "context-above-model"
    assert failure.summary.startswith("max_context 4096 is longer than the model supports")
    assert "max_position_embeddings=1024" in failure.summary
    assert "agents/tiny.yaml" in failure.fix


def test_real_empty_model_folder_says_what_the_folder_must_hold() -> None:
    failure = diagnose(recorded("fail-model-folder.log"), TINY)
    assert failure.kind == "model-folder-empty"
    assert "config.json" in failure.summary + failure.fix


def test_real_argparse_refusal_names_the_flag_and_the_value() -> None:
    failure = diagnose(
        recorded("fail-flag-value.log"), Context(agent="tiny", spec_path=SPEC, exit_code=2)
    )
    assert failure.kind == "invalid-value"
    assert failure.summary == (
        "vLLM refused the value of --max-num-batched-tokens: invalid human_readable_int value: "
        "'lots'."
    )
    assert "extra_args of agents/tiny.yaml" in failure.fix


def test_real_invalid_choice_is_an_invalid_value_too() -> None:
    failure = diagnose(
        recorded("fail-flag-choice.log"), Context(agent="tiny", spec_path=SPEC, exit_code=2)
    )
    assert failure.kind == "invalid-value"
    assert "--kv-cache-dtype: invalid choice: 'fp9'" in failure.summary


def test_real_offline_start_without_the_model_in_the_cache() -> None:
    failure = diagnose(recorded("fail-repo-offline.log"), TINY)
    assert failure.kind == "offline-not-cached"
    assert "agent-manager download-models tiny" in failure.fix


def test_a_real_successful_start_is_not_mistaken_for_a_failure() -> None:
    assert diagnose(recorded("startup.log"), TINY).kind == "unrecognised"


def test_a_missing_model_folder_is_dockers_bind_error() -> None:
    line = (
        'Error response from daemon: invalid mount config for type "bind": bind source path '
        "does not exist: /srv/models/gone"
    )
    failure = diagnose([line], Context(agent="tiny", spec_path=SPEC, state="not-created"))
    assert failure.kind == "model-folder-missing"
    assert "/srv/models/gone" in failure.summary and "model:" in failure.fix


def test_shared_memory_too_small_points_at_ipc_host() -> None:
    line = (
        "RuntimeError: Insufficient space in /dev/shm for shared-memory allocation: 160 MiB "
        "required, 64 MiB free. Increase /dev/shm (e.g. --shm-size or --ipc=host)"
    )
    failure = diagnose([line], TINY)
    assert failure.kind == "shm-too-small"
    assert "160 MiB required, 64 MiB free" in failure.summary and "ipc: host" in failure.fix


def test_pytorchs_old_driver_message_is_recognised() -> None:
    line = (
        "RuntimeError: The NVIDIA driver on your system is too old (found version 12020). "
        "Please update your GPU driver"
    )
    assert diagnose([line], TINY).kind == "driver-too-old"


def test_a_gated_403_says_to_request_access_not_to_set_a_token() -> None:
    lines = [
        "huggingface_hub.errors.GatedRepoError: 403 Client Error. (Request ID: x)",
        "Cannot access gated repo for url https://huggingface.co/api/models/meta-llama/Llama-3.1-8B.",
        "Access to model meta-llama/Llama-3.1-8B is restricted and you are not in the "
        "authorized list. Visit https://huggingface.co/meta-llama/Llama-3.1-8B to ask for access.",
    ]
    failure = diagnose(lines, TINY)
    assert failure.kind == "gated-repo"
    assert "403" in failure.summary and "meta-llama/Llama-3.1-8B" in failure.summary
    assert "Request access on https://huggingface.co/meta-llama/Llama-3.1-8B" in failure.fix
    assert "export HF_TOKEN" not in failure.fix


def test_a_gated_401_still_asks_for_a_token() -> None:
    lines = ["GatedRepoError: 401 Client Error. Cannot access gated repo for url x"]
    assert "HF_TOKEN" in diagnose(lines, TINY).fix


OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."


@pytest.mark.parametrize(
    ("lines", "stage", "advice"),
    [
        (
            ["ERROR [gpu_model_runner.py:5140] Failed to load model - not enough GPU memory.", OOM],
            "while loading the model weights",
            "quantized checkpoint",
        ),
        (
            [
                '  File "vllm/v1/worker/gpu_worker.py", line 640, in determine_available_memory',
                '  File "vllm/v1/worker/gpu_model_runner.py", line 6140, in profile_run',
                OOM,
            ],
            "while profiling a full batch",
            "--max-num-batched-tokens",
        ),
        (
            ['  File "vllm/v1/worker/gpu_model_runner.py", line 6490, in capture_model', OOM],
            "while capturing CUDA graphs",
            "enforce_eager: true",
        ),
        (
            ["INFO [gpu_model_runner.py:1] Model loading took 9.3 GiB memory and 4.1 seconds", OOM],
            "while profiling a full batch",
            "max_num_seqs",
        ),
        (
            ["Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 40%", OOM],
            "while capturing CUDA graphs",
            "enforce_eager: true",
        ),
    ],
)
def test_cuda_oom_says_which_stage_ran_out(lines: list[str], stage: str, advice: str) -> None:
    failure = diagnose(lines, TINY)
    assert failure.kind == "out-of-memory"
    assert stage in failure.summary and "2.00 GiB" in failure.summary
    assert advice in failure.fix


def test_no_max_context_auto_advice_for_a_spec_already_on_auto() -> None:
    line = "ValueError: Cannot auto-fit max_model_len: not enough GPU memory available"
    on_auto = diagnose(
        [line], Context(agent="tiny", spec_path=SPEC, exit_code=1, max_context="auto")
    )
    fixed = diagnose([line], Context(agent="tiny", spec_path=SPEC, exit_code=1, max_context=8192))
    assert "max_context: auto" not in on_auto.fix
    assert "gpu_memory_fraction" in on_auto.fix
    assert "max_context: auto" in fixed.fix
