"""Failure diagnosis: every startup failure becomes a sentence that says what to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent_manager.diagnosis.diagnose import Context, diagnose
from tests.standin.process import standin_command, standin_env

# A workspace chosen with --home: hints name the spec where it really is.
PO_SPEC = Path("/srv/team/agents/po.yaml")
PO = Context(agent="po", exit_code=1, state="exited", spec_path=PO_SPEC)


def standin_log(fail: str, *args: str) -> list[str]:
    """What the stand-in (vLLM 0.33.0's messages) prints when it fails this way."""
    done = subprocess.run(
        standin_command(["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po", *args]),
        env=standin_env({"STANDIN_FAIL": fail, "STANDIN_LOAD_SECONDS": "0"}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    return (done.stdout + done.stderr).splitlines()


@pytest.mark.parametrize(
    ("fail", "kind", "says"),
    [
        ("oom", "out-of-memory", "smaller or quantized checkpoint"),
        ("kv", "no-kv-memory", "Raise gpu_memory_fraction"),
        ("free-memory", "free-memory", "gpu_memory_fraction 0.92 asks for 14.35 GiB"),
        ("gated", "gated-repo", "HF_TOKEN"),
        ("notfound", "repo-not-found", "Check the spelling of model"),
        ("max-len", "context-above-model", "longer than the model supports"),
    ],
)
def test_each_vllm_failure_gets_its_own_diagnosis(fail: str, kind: str, says: str) -> None:
    failure = diagnose(standin_log(fail), PO)
    assert failure.kind == kind
    assert says in failure.summary + " " + failure.fix
    assert failure.matched_lines, "the log lines that show the failure are quoted"


def test_context_too_long_quotes_the_maximum_vllm_computed() -> None:
    failure = diagnose(standin_log("context", "--max-model-len", "32768"), PO)
    assert failure.kind == "context-too-long"
    assert "at most 16384 tokens fit" in failure.summary
    assert "Set max_context: 16384" in failure.fix
    assert f"in {PO_SPEC}," in failure.fix


def test_context_too_long_matches_the_old_models_s_spelling() -> None:
    line = (
        "ValueError: To serve at least one request with the models's max seq len (131072), "
        "(16.0 GiB KV cache is needed, which is larger than the available KV cache memory "
        "(3.2 GiB). Based on the available memory, the estimated maximum model length is 26208."
    )
    failure = diagnose([line], PO)
    assert failure.kind == "context-too-long"
    assert "131072 tokens" in failure.summary and "26208" in failure.summary


def test_free_memory_names_the_processes_holding_vram() -> None:
    ctx = Context(agent="po", exit_code=1, gpu_holders=["pid 4242 (Xorg): 1.2 GiB"])
    failure = diagnose(standin_log("free-memory"), ctx)
    assert "pid 4242 (Xorg)" in failure.summary
    assert "10.2 of 15.6 GiB is free" in failure.summary


def test_unknown_vllm_argument_names_the_argument() -> None:
    done = subprocess.run(
        standin_command(["Qwen/X", "--swap-space", "4"]),
        env=standin_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    failure = diagnose(done.stderr.splitlines(), Context(agent="po", exit_code=2))
    assert failure.kind == "unknown-argument"
    assert "--swap-space 4" in failure.summary


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (
            'Error response from daemon: could not select device driver "nvidia" with '
            "capabilities: [[gpu]]",
            "no-nvidia-runtime",
        ),
        (
            "nvidia-container-cli: requirement error: unsatisfied condition: cuda>=13.0, please "
            "update your driver to a newer version, or use an earlier cuda container",
            "driver-too-old",
        ),
        ("CUDA driver version is insufficient for CUDA runtime version", "driver-too-old"),
        (
            "Error 803: system has unsupported display driver / cuda driver combination "
            "(forward compatibility was attempted on non supported HW)",
            "driver-too-old",
        ),
        (
            "Error response from daemon: pull access denied for vllm/vllm-openai, repository "
            "does not exist or may require 'docker login'",
            "image-pull",
        ),
        ("Error response from daemon: manifest unknown", "image-pull"),
        (
            'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: '
            "lookup registry-1.docker.io: no such host",
            "image-pull",
        ),
        ("net/http: TLS handshake timeout", "image-pull"),
        (
            "Error response from daemon: driver failed programming external connectivity on "
            "endpoint x: Bind for 127.0.0.1:8002 failed: port is already allocated",
            "port-taken",
        ),
        ("listen tcp4 127.0.0.1:8002: bind: address already in use", "port-taken"),
        ("RepositoryNotFoundError: 401 Client Error. Repository Not Found", "gated-repo"),
        ("You are trying to access a gated repo.", "gated-repo"),
        (
            "ValueError: No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine.",
            "no-kv-memory",
        ),
        ("Cannot auto-fit max_model_len: not enough GPU memory available", "context-too-long"),
        (
            "CUDA out of memory occurred when warming up sampler with 256 dummy requests.",
            "out-of-memory",
        ),
        ("KeyboardInterrupt: terminated", "interrupted"),
        (
            'Error response from daemon: Conflict. The container name "/am-po-vllm-1" is '
            'already in use by container "abc".',
            "name-in-use",
        ),
        ("ValueError: Unknown quantization method: q4_K_M. Must be one of [...]", "invalid-value"),
    ],
)
def test_docker_and_vllm_messages_are_classified(line: str, kind: str) -> None:
    failure = diagnose(
        ["some earlier line", f"(APIServer pid=1) ERROR 11-23 10:00:00 [x.py:1] {line}"], PO
    )
    assert failure.kind == kind
    assert failure.matched_lines == [f"(APIServer pid=1) ERROR 11-23 10:00:00 [x.py:1] {line}"]


def test_port_taken_names_the_address() -> None:
    failure = diagnose(
        ["Bind for 127.0.0.1:8002 failed: port is already allocated"],
        Context(agent="po", state="not-created"),
    )
    assert "127.0.0.1:8002" in failure.summary


def test_no_nvidia_runtime_says_how_to_install_it() -> None:
    failure = diagnose(['could not select device driver "" with capabilities: [[gpu]]'], PO)
    assert "nvidia-container-toolkit" in failure.fix
    assert "nvidia-ctk runtime configure" in failure.fix


def test_driver_too_old_asks_for_r580() -> None:
    failure = diagnose(["CUDA driver version is insufficient for CUDA runtime version"], PO)
    assert "R580" in failure.fix


def test_unrecognised_failure_quotes_the_last_30_lines_and_where_to_see_all() -> None:
    failure = diagnose(standin_log("crash"), PO)
    assert failure.kind == "unrecognised"
    assert len(failure.matched_lines) == 30
    assert "illegal memory access" in "\n".join(failure.matched_lines)
    assert "vLLM exited with code 1" in failure.summary
    assert "agent-manager logs po" in failure.fix


def test_unrecognised_failure_with_an_empty_log_says_so() -> None:
    failure = diagnose([], Context(agent="po", exit_code=137))
    assert failure.matched_lines == []
    assert "killed" in failure.summary and "log is empty" in failure.summary


def test_the_normal_memory_summary_line_is_not_a_failure() -> None:
    ok = (
        "(EngineCore_DP0 pid=9) INFO 11-23 10:00:00 [gpu_worker.py:1] Free memory on device "
        "(14.2/15.6 GiB) on startup. Desired GPU memory utilization is (0.9, 14.04 GiB)."
    )
    assert diagnose([ok], PO).kind == "unrecognised"
