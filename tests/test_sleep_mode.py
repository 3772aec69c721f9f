"""Sleep mode without Docker: the spec and its security rule, the stand-in's dev endpoints,
the sleep/wake client, and the arithmetic that keeps sleepers in the plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from agent_manager.diagnosis.sleep_log import parse_sleep_line, weights_bytes_from_log
from agent_manager.errors import LaunchError, SpecError
from agent_manager.observe.sleep_records import new_record
from agent_manager.observe.sleepers import DEFAULT_RESIDUAL_BYTES
from agent_manager.plan import planner
from agent_manager.plan.sleepers import (
    choose_sleep_level,
    measured_residual,
)
from agent_manager.spec.agents import parse_spec
from agent_manager.spec.serve_argv import serve_argv
from agent_manager.switch.engine_sleep import SleepFailed, put_to_sleep, wake
from agent_manager.units import GIB
from tests.conftest import CliResult
from tests.fakes import nvml as fake_nvml
from tests.fakes.nvml import Scenario, device, process
from tests.standin.process import run_standin
from tests.test_planner import agent, cached_defaults  # noqa: F401  (fixture)

Cli = Callable[..., CliResult]
SLEEP_ARGS = ["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po", "--enable-sleep-mode"]
DEV_MODE = {"VLLM_SERVER_DEV_MODE": "1", "STANDIN_WAKE_SECONDS": "0.05"}


def spec(text: str, defaults: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return parse_spec("po", Path("agents/po.yaml"), text, defaults)


# --- spec ---------------------------------------------------------------------------------------


def test_a_sleep_agent_gets_sleep_mode_and_cold_is_the_default() -> None:
    cold = spec("model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\n")
    hot = spec("model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\nswitch: sleep\n")
    assert (cold.spec.switch, cold.spec.sleep_level) == ("cold", 1)
    assert "--enable-sleep-mode" not in serve_argv(cold)
    assert "--enable-sleep-mode" in serve_argv(hot)


def test_a_sleep_agent_on_a_public_bind_is_refused_with_the_reason() -> None:
    with pytest.raises(SpecError) as refused:
        spec("model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\nbind: 0.0.0.0\nswitch: sleep\n")
    error = refused.value
    assert error.exit_code == 2
    assert error.message.startswith("agents/po.yaml:3: po binds 0.0.0.0")
    assert "/sleep, /wake_up, /collective_rpc" in error.message
    assert "without authentication" in error.message
    assert error.hint is not None and "bind: 127.0.0.1" in error.hint
    assert "switch: cold" in error.hint


def test_cli_refuses_bind_0000_with_sleep_and_exits_2(workspace: Path, cli: Cli) -> None:
    path = workspace / "agents" / "po.yaml"
    text = path.read_text().replace("bind: 127.0.0.1", "bind: 0.0.0.0") + "switch: sleep\n"
    path.write_text(text)
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 2
    said = " ".join(result.stderr.split())
    assert "po binds 0.0.0.0" in said and "without authentication" in said


def test_workspace_defaults_apply_where_the_spec_is_silent(workspace: Path, cli: Cli) -> None:
    (workspace / "agent-manager.yaml").write_text("defaults: {switch: sleep, sleep_level: 2}\n")
    path = workspace / "agents" / "architect.yaml"
    path.write_text(path.read_text() + "switch: cold\n")
    result = cli("--home", str(workspace), "list", "--json")
    assert result.code == 0, result.output
    import json

    rows = {row["name"]: row["switch"] for row in json.loads(result.stdout)["agents"]}
    assert rows == {"architect": "cold", "developer": "sleep (level 2)", "po": "sleep (level 2)"}


def test_a_default_sleep_on_a_public_bind_names_the_settings_file(
    workspace: Path, cli: Cli
) -> None:
    (workspace / "agent-manager.yaml").write_text("defaults:\n  switch: sleep\n")
    path = workspace / "agents" / "po.yaml"
    path.write_text(path.read_text().replace("bind: 127.0.0.1", "bind: 0.0.0.0"))
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 2
    assert "from the workspace defaults in agent-manager.yaml" in " ".join(result.stderr.split())


def test_a_bad_settings_file_is_named(workspace: Path, cli: Cli) -> None:
    (workspace / "agent-manager.yaml").write_text("defaults: {switch: warm}\n")
    result = cli("--home", str(workspace), "list")
    assert result.code == 2
    assert "agent-manager.yaml: 'defaults.switch'" in result.stderr
    assert "'warm'" in result.stderr


def test_sleep_flags_belong_to_the_switch_field() -> None:
    with pytest.raises(SpecError, match="set by the field 'switch"):
        spec("model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\nextra_args: [--enable-sleep-mode]\n")
    with pytest.raises(SpecError, match="VLLM_SERVER_DEV_MODE is set by 'switch: sleep'"):
        spec(
            "model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\nswitch: sleep\n"
            "env: {VLLM_SERVER_DEV_MODE: '1'}\n"
        )


# --- log lines ----------------------------------------------------------------------------------


def test_the_sleep_line_gives_freed_and_still_in_use() -> None:
    line = (
        "(EngineCore_DP0 pid=7) INFO 12-03 23:42:30 [gpu_worker.py:152] Sleep mode freed "
        "71.25 GiB memory, 1.38 GiB memory is still in use."
    )
    measure = parse_sleep_line(line)
    assert measure is not None
    assert measure.freed_bytes == int(71.25 * GIB)
    assert measure.still_in_use_bytes == int(1.38 * GIB)
    assert parse_sleep_line("Loading weights took 1.00 seconds") is None
    assert weights_bytes_from_log(["Model loading took 5.42 GiB memory and 2.1 seconds"]) == int(
        5.42 * GIB
    )


def test_a_measured_share_subtracts_the_other_sleepers_with_a_floor() -> None:
    assert measured_residual(3 * GIB, 2 * GIB) == 1 * GIB
    assert measured_residual(1 * GIB, 2 * GIB) == 256 * 1024**2


def test_the_status_label_says_level_and_host_ram() -> None:
    record = new_record("po", "c1", "h", 1)
    record.host_ram_bytes, record.host_ram_measured = int(9.8 * GIB), True
    assert record.label() == "asleep (level 1, 9.8 GiB in host RAM)"
    record.host_ram_measured = False
    assert record.label() == "asleep (level 1, ~9.8 GiB in host RAM (estimate))"
    assert new_record("po", "c1", "h", 2).label() == "asleep (level 2, weights reloaded on wake)"


# --- host RAM -----------------------------------------------------------------------------------


def test_too_little_host_ram_falls_back_to_level_2_with_the_numbers() -> None:
    level, why = choose_sleep_level("architect", 1, int(9.3 * GIB), 6 * GIB)
    assert level == 2
    assert why == (
        "architect: sleep level 1 would hold 9.3 GiB in host RAM (its weights in pinned, "
        "power-of-two rounded blocks), but only 6.0 GiB is available (2.0 GiB kept for the "
        "system), short by 5.3 GiB; sleeping at level 2 instead (its weights are reloaded "
        "from disk on wake)."
    )
    assert choose_sleep_level("architect", 1, int(9.3 * GIB), 64 * GIB) == (1, None)
    assert choose_sleep_level("architect", 2, int(9.3 * GIB), 1 * GIB) == (2, None)


# --- VRAM: vLLM's start check with sleepers on the card -----------------------------------------


def _po_awake_on_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "agent_manager.observe.gpu.container_id_of", lambda pid, proc_root=None: "ab" * 32
    )
    from tests.fakes.docker import install_docker
    from tests.test_gpu_stats import _container

    install_docker(monkeypatch).containers["ab" * 32] = _container("ab" * 32, "po")
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=14.8)], [process(50, 14.4)]))


def test_the_started_agent_must_pass_vllms_check_beside_the_sleepers(
    workspace: Path,
    cached_defaults: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _po_awake_on_the_gpu(monkeypatch)
    architect = agent(workspace, "architect", gpu_memory_fraction=0.85)
    # po asleep keeps the default 1 GiB: 16 - 0.4 - 1.0 = 14.6 GiB free, 14.1 GiB once the new
    # engine's CUDA context exists, >= 0.85 x 16 = 13.6.
    assert planner.ensure_fits(architect, sleepers={"po": DEFAULT_RESIDUAL_BYTES}) == []
    # Measured 2 GiB: 13.6 GiB free, 13.1 GiB with the context: short by 0.5 GiB; it says so.
    with pytest.raises(LaunchError) as refused:
        planner.ensure_fits(architect, sleepers={"po": 2 * GIB})
    assert "vLLM requests 13.60 GiB at start but only 13.60 GiB is free" in refused.value.message
    assert any("lower gpu_memory_fraction" in line for line in refused.value.details)


# --- the stand-in's dev endpoints and the client ------------------------------------------------


def test_the_standin_serves_sleep_endpoints_only_in_sleep_and_dev_mode() -> None:
    with run_standin(SLEEP_ARGS) as no_dev_mode:
        assert requests.post(no_dev_mode.url + "/sleep?level=1", timeout=5).status_code == 404
    with run_standin(SLEEP_ARGS[:-1], env=DEV_MODE) as no_sleep_flag:
        assert requests.get(no_sleep_flag.url + "/is_sleeping", timeout=5).status_code == 404
    with run_standin(SLEEP_ARGS, env=DEV_MODE) as both:
        assert requests.get(both.url + "/is_sleeping", timeout=5).json() == {"is_sleeping": False}
        assert "Route: /wake_up, Methods: POST" in both.output()


def test_sleep_and_a_level_2_wake_reload_the_weights_and_log_like_vllm() -> None:
    with run_standin(SLEEP_ARGS, env=DEV_MODE) as vllm:
        put_to_sleep(vllm.url, "po", 2, print, timeout=5)
        assert requests.get(vllm.url + "/is_sleeping", timeout=5).json()["is_sleeping"] is True
        wake(vllm.url, "po", "po", 2, None, print, timeout=5)
        counts = requests.get(vllm.url + "/standin/counts", timeout=5).json()
        log = vllm.output()
    assert counts["reloads"] == counts["sleeps"] == counts["wakes"] == 1
    assert counts["garbage"] == 0
    assert "Sleep mode freed 11.54 GiB memory, 0.61 GiB memory is still in use." in log
    assert "wake up the engine with tags: ['weights']" in log
    assert "wake up the engine with tags: ['kv_cache']" in log
    assert log.index("Loading weights took") < log.index("tags: ['kv_cache']")


def test_a_failed_wake_is_a_sleep_failure_with_the_servers_words() -> None:
    with run_standin(SLEEP_ARGS, env={**DEV_MODE, "STANDIN_WAKE_FAIL": "error"}) as vllm:
        put_to_sleep(vllm.url, "po", 1, print, timeout=5)
        with pytest.raises(SleepFailed) as failed:
            wake(vllm.url, "po", "po", 1, None, print, timeout=5)
    assert failed.value.message.startswith("po did not wake up: /wake_up answered HTTP 500")


def test_a_server_without_sleep_mode_is_said_so() -> None:
    with run_standin(SLEEP_ARGS[:-1]) as vllm, pytest.raises(SleepFailed) as failed:
        put_to_sleep(vllm.url, "po", 1, print, timeout=5)
    assert "does not run in sleep mode" in failed.value.message


def test_a_wake_that_hangs_is_cut_at_its_timeout() -> None:
    with run_standin(SLEEP_ARGS, env={**DEV_MODE, "STANDIN_WAKE_FAIL": "hang"}) as vllm:
        put_to_sleep(vllm.url, "po", 1, print, timeout=5)
        with pytest.raises(SleepFailed) as failed:
            wake(vllm.url, "po", "po", 1, None, print, timeout=0.5)
    assert failed.value.message == "po did not wake up: /wake_up did not answer within 0.5 s."


def test_plan_counts_the_sleepers_that_stay_beside_the_agent(
    workspace: Path,
    cached_defaults: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
) -> None:
    import json

    _po_awake_on_the_gpu(monkeypatch)
    monkeypatch.setattr(
        "agent_manager.observe.sleepers.sleeper_residuals", lambda ws: {"po": int(1.5 * GIB)}
    )
    result = cli("--home", str(workspace), "plan", "architect", "po", "--json")
    plans = {p["agent"]: p for p in json.loads(result.stdout)["agents"]}
    assert result.code == 1
    assert plans["architect"]["verdict"] == "does not fit"
    assert "only 14.10 GiB is free" in plans["architect"]["reasons"][0]
    assert plans["po"]["verdict"] == "fits"  # po itself is not its own sleeper
