"""Startup phases read from a REAL vLLM log (vLLM 0.32.0 CPU build, tests/fixtures/)."""

from __future__ import annotations

from pathlib import Path

from agent_manager.diagnosis.phases import (
    CONFIG,
    ENGINE,
    LOADING,
    SERVING,
    STARTING,
    WARMUP,
    announces_ready,
    phase_of,
)

STARTUP = Path(__file__).parent / "fixtures" / "vllm-0.32-cpu" / "startup.log"


def phases_of_the_real_log() -> list[str]:
    shown: list[str] = []
    for line in STARTUP.read_text(encoding="utf-8").splitlines():
        phase = phase_of(line)
        if phase is not None and (not shown or shown[-1] != phase):
            shown.append(phase)
    return shown


def test_the_real_log_walks_through_every_phase_in_order() -> None:
    shown = phases_of_the_real_log()
    kv = [p for p in shown if p.startswith("KV cache sized (")]
    assert kv and kv[0].endswith(" tokens)")
    expected = [STARTING, CONFIG, ENGINE, LOADING, kv[0], WARMUP, SERVING]
    assert [p for p in shown if p in expected] == expected, shown


def test_loading_says_it_may_be_a_download() -> None:
    # vLLM downloads inside "Starting to load model" with progress bars off: no separate line.
    assert LOADING == "downloading or loading weights"


def test_the_real_ready_line_is_recognised_once_the_socket_listens() -> None:
    lines = STARTUP.read_text(encoding="utf-8").splitlines()
    ready = [i for i, line in enumerate(lines) if announces_ready(line)]
    routes = next(i for i, line in enumerate(lines) if "Available routes are" in line)
    assert ready and ready[0] < routes  # "Starting vLLM server on http://..." comes first


def test_enforce_eager_saying_torch_compile_is_off_is_not_a_compile_phase() -> None:
    line = (
        "(EngineCore pid=37) WARNING 12-03 23:59:58 [vllm.py:1703] Enforce eager set, disabling "
        "torch.compile, CUDAGraphs, and JIT kernel warmup."
    )
    assert phase_of(line) is None
    assert phase_of("INFO [backends.py:1] torch.compile took 41.20 s in total") is not None
