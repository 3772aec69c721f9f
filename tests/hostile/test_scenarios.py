"""Hostile-input scenarios that need more than one command run: races, the planner's numbers,
launch's fit check against a silent hub, and what Ctrl-C leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from agent_manager.plan import planner
from tests.conftest import CliResult
from tests.fakes import nvml as fake_nvml
from tests.fakes.nvml import Scenario, device
from tests.test_planner import CHECKPOINTS, agent, cache_model


def test_fp8_fix_never_offers_more_context_than_the_model_takes(
    workspace: Path, cli: Callable[..., CliResult]
) -> None:
    for model, (config_name, shards) in CHECKPOINTS.items():
        cache_model(model, shards, config_name)
    agent(workspace, "architect", max_context=131072, env={"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"})
    result = cli("--home", str(workspace), "plan", "architect", "--gpu-memory", "16", "--json")
    (plan,) = json.loads(result.stdout)["agents"]
    model_max = plan["model_max_context"]
    offered = [fix for fix in plan["fixes"] if fix.startswith("kv_cache_dtype: fp8")]
    assert offered, plan["fixes"]
    tokens = [int(word) for fix in offered for word in fix.split() if word.isdigit()]
    assert tokens and max(tokens) <= model_max, offered


def test_launch_fit_check_gives_up_on_a_silent_hub_and_says_so(
    workspace: Path, silent_hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=0.4)]))
    po = agent(workspace, "po", model="acme/Qwen2.5-7B-Instruct-AWQ-tuned")  # not shipped
    start = time.monotonic()
    warnings = planner.ensure_fits(po)
    assert time.monotonic() - start < 15
    assert len(warnings) == 1
    assert "fit of po not checked" in warnings[0]
    assert "did not answer within 1 s" in warnings[0]


def test_ten_parallel_compose_runs_leave_whole_files(workspace: Path) -> None:
    exe = str(Path(sys.executable).parent / "agent-manager")
    env = {**os.environ, "AGENT_MANAGER_HOME": str(workspace)}
    runs = [
        subprocess.Popen([exe, "compose"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(10)
    ]
    codes = [run.wait(timeout=120) for run in runs]
    errors = [run.stderr.read().decode() for run in runs if run.stderr is not None]
    assert codes == [0] * 10, errors
    assert not any("Traceback" in text for text in errors)
    compose = workspace / "compose"
    assert sorted(p.name for p in compose.iterdir()) == [
        "docker-compose-architect.yml",
        "docker-compose-developer.yml",
        "docker-compose-po.yml",
    ]  # no temporary file left behind
    for path in compose.iterdir():
        assert yaml.safe_load(path.read_text())["services"]["vllm"]["command"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("hf_" + "a1B2" * 9, "a Hugging Face token"),
        ("Bearer sk-ant-api03-" + "x" * 30, "an API key (sk-…)"),
        ("ghp_" + "A" * 36, "a GitHub token"),
        ("glpat-" + "b" * 20, "a GitLab token"),
        ("AKIA" + "ABCDEFGHIJKLMNOP", "an AWS access key"),
        ("--hf-overrides", None),
        ("hf_transfer", None),
        ("/models/disk-cache-0123456789012345678901", None),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", None),
    ],
)
def test_token_shapes_are_recognised_and_ordinary_values_are_not(
    value: str, kind: str | None
) -> None:
    from agent_manager.spec.validate import secret_shape

    assert secret_shape(value) == kind


@pytest.mark.parametrize(
    ("raw", "seconds"), [("", 10.0), ("2.5", 2.5), ("soon", 10.0), ("-1", 10.0)]
)
def test_hub_timeout_follows_hf_hub_etag_timeout_at_call_time(
    raw: str, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_manager.adapters import hub

    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", raw)
    assert hub.request_timeout() == seconds
