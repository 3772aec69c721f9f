"""The hot switch's memory decisions: a wake is fit-checked like a start, the fit is checked
again once a sleeper's residual is measured, a memory failure beside sleepers gets one cold
retry without them, and the residual comes from the agent's own processes (NVML)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent_manager.adapters.docker import AgentContainer
from agent_manager.diagnosis.failure_text import Failure
from agent_manager.errors import LaunchError
from agent_manager.observe import sleep_records
from agent_manager.observe.sleepers import SleepAgent
from agent_manager.observe.state import AgentState
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import resolve_workspace
from agent_manager.switch import fit, hot, memory_retry
from agent_manager.switch.context import LaunchFailed, LaunchOptions
from tests.fakes.docker import FakeDocker, install

GIB = 1024**3


def _container(agent: str, cid: str) -> AgentContainer:
    return AgentContainer(
        cid,
        f"x-{agent}-vllm-1",
        agent,
        f"x-{agent}",
        "running",
        None,
        None,
        None,
        8000,
        agent,
        None,
    )


def _refuse_beside_sleepers(calls: list[dict[str, int] | None]) -> Any:
    def ensure_fits(agent: Any, *, force: bool = False, sleepers: Any = None) -> list[str]:
        calls.append(dict(sleepers) if sleepers is not None else None)
        if sleepers:
            raise LaunchError("po does not fit NVIDIA RTX 4080: short by 0.40 GiB")
        return []

    return ensure_fits


def test_a_wake_is_checked_beside_the_other_sleepers_and_stops_them_when_short(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = resolve_workspace(workspace)
    po, architect = load_agent(ws, "po"), load_agent(ws, "architect")
    sleeper = SleepAgent(_container("architect", "c2"), architect, "http://y", asleep=True)
    plan = SimpleNamespace(
        machines={"po": SimpleNamespace(state=AgentState.ASLEEP)},
        machine=lambda name: SimpleNamespace(state=AgentState.ASLEEP),
        sleepers=lambda ws, target: [sleeper],
    )
    monkeypatch.setattr(fit, "residual_of", lambda ws, agent: 2 * GIB)
    calls: list[dict[str, int] | None] = []
    monkeypatch.setattr(fit.planner, "ensure_fits", _refuse_beside_sleepers(calls))

    warnings, keep = fit.fit_in_plan(ws, po, plan, LaunchOptions(), None)  # type: ignore[arg-type]

    assert calls == [{"architect": 2 * GIB}, None]  # checked like a start, then alone
    assert keep is False
    assert warnings == [
        "po would not wake beside sleeping architect (po does not fit NVIDIA RTX 4080: short "
        "by 0.40 GiB); stopping them instead (cold switch)."
    ]


def _ctx(ws: Any, agent: Any, said: list[str], force: bool = False) -> Any:
    events = SimpleNamespace(warning=said.append, message=said.append)
    return SimpleNamespace(ws=ws, agent=agent, options=SimpleNamespace(force=force), events=events)


def _plan(*sleepers: AgentContainer) -> Any:
    return SimpleNamespace(containers=list(sleepers), staying={c.id for c in sleepers})


def test_a_residual_measured_larger_than_assumed_rechecks_the_fit(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = resolve_workspace(workspace)
    said: list[str] = []
    plan = _plan(_container("architect", "c2"))
    monkeypatch.setattr(hot, "residual_of", lambda ws, agent: int(2.5 * GIB))
    calls: list[dict[str, int] | None] = []
    monkeypatch.setattr(hot.planner, "ensure_fits", _refuse_beside_sleepers(calls))

    hot.recheck_fit(_ctx(ws, load_agent(ws, "po"), said), plan, {"architect": 1 * GIB})

    assert calls == [{"architect": int(2.5 * GIB)}]
    assert plan.staying == set()
    assert said == [
        "po would not fit beside the measured sleepers (po does not fit NVIDIA RTX 4080: short "
        "by 0.40 GiB); stopping them instead (cold switch)."
    ]


def test_no_recheck_when_the_residual_is_what_the_plan_assumed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = resolve_workspace(workspace)
    plan = _plan(_container("architect", "c2"))
    monkeypatch.setattr(hot, "residual_of", lambda ws, agent: 1 * GIB)
    calls: list[dict[str, int] | None] = []
    monkeypatch.setattr(hot.planner, "ensure_fits", _refuse_beside_sleepers(calls))
    hot.recheck_fit(_ctx(ws, load_agent(ws, "po"), []), plan, {"architect": 1 * GIB})
    assert calls == [] and plan.staying == {"c2"}


def _failed(kind: str) -> LaunchFailed:
    return LaunchFailed("po", Failure(kind, "CUDA out of memory while loading.", "fix", []), None)


def test_memory_failures_are_told_apart() -> None:
    assert memory_retry.is_memory_failure(_failed("out-of-memory"))
    assert memory_retry.is_memory_failure(_failed("free-memory"))
    assert not memory_retry.is_memory_failure(_failed("gated-repo"))
    oom = LaunchError(
        "po did not wake up: /wake_up?weights answered HTTP 500: CUDA error: out of memory"
    )
    assert memory_retry.is_memory_failure(oom)
    assert not memory_retry.is_memory_failure(LaunchError("/wake_up did not answer within 5 s."))


def test_a_start_that_runs_out_of_memory_beside_sleepers_retries_cold_without_them(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = resolve_workspace(workspace)
    said: list[str] = []
    stopped: list[str] = []
    sleeper, failed = _container("architect", "c2"), _container("po", "c1")
    machines = {
        "po": SimpleNamespace(move=lambda state: None),
        "architect": SimpleNamespace(move=lambda state: None),
    }
    plan = SimpleNamespace(
        containers=[sleeper, failed], staying={"c2"}, keep=None, machine=machines.__getitem__
    )
    ctx = _ctx(ws, load_agent(ws, "po"), said)
    ctx.progress = SimpleNamespace(stopped=[], asleep=["architect"])
    ctx.deadline = 0.0
    monkeypatch.setattr(memory_retry.GpuWatch, "before_stop", lambda containers, say: None)
    monkeypatch.setattr(
        memory_retry, "stop_and_remove", lambda c, grace_s, on_progress: stopped.append(c.agent)
    )
    again = _container("po", "c3")
    monkeypatch.setattr(memory_retry.ColdSwitch, "bring_up", lambda self, ctx, plan: again)

    assert memory_retry.retry_cold(ctx, plan, failed, _failed("gated-repo")) is None
    assert memory_retry.retry_cold(ctx, plan, failed, _failed("out-of-memory")) is again
    assert stopped == ["po", "architect"]
    assert plan.staying == set() and ctx.progress.stopped == ["architect"]
    assert said == [
        "po ran out of GPU memory beside the sleepers (CUDA out of memory while loading.); "
        "stopping sleeping architect and starting po cold."
    ]
    assert memory_retry.retry_cold(ctx, plan, failed, _failed("out-of-memory")) is None  # once


def test_the_residual_is_the_agents_own_nvml_use_not_vllms_whole_gpu_figure(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake: FakeDocker = install(monkeypatch)
    ws = resolve_workspace(workspace)
    path = workspace / "agents" / "po.yaml"
    path.write_text(path.read_text() + "switch: sleep\n")
    po = load_agent(ws, "po")
    container = fake.add("po", port=8002)
    fake.logs[container.id] = [
        "(EngineCore_DP0 pid=7) INFO [gpu_worker.py:152] Model loading took 5.42 GiB memory",
        "(EngineCore_DP0 pid=7) INFO [cumem.py:282] CuMemAllocator: sleep freed 11.54 GiB memory "
        "in total, of which 5.42 GiB is backed up in CPU and the rest 6.12 GiB is discarded "
        "directly.",
        # Y = the whole GPU: the desktop's 2.4 GiB is in it.
        "(EngineCore_DP0 pid=7) INFO [gpu_worker.py:335] Sleep mode freed 11.54 GiB memory, "
        "3.10 GiB memory is still in use.",
    ]
    readings = iter([int(12.2 * GIB), int(0.7 * GIB)])
    monkeypatch.setattr(hot, "container_gpu_bytes", lambda cid: next(readings))
    monkeypatch.setattr(hot, "put_to_sleep", lambda url, agent, level, say: 0.12)
    monkeypatch.setattr(hot, "container_rss_bytes", lambda cid: None)
    monkeypatch.setattr(hot.host_adapter, "available_memory_bytes", lambda: 64 * GIB)
    said: list[str] = []

    hot._sleep_one(ws, SleepAgent(container, po, "http://x", False), said.append, [])

    record = sleep_records.read_record(ws, "po")
    assert record is not None
    assert (record.residual_bytes, record.residual_source) == (int(0.7 * GIB), "nvml")
    assert record.still_in_use_bytes == int(3.1 * GIB)
    assert (record.host_ram_bytes, record.host_ram_measured) == (int(5.42 * GIB), True)
    assert said == [
        "Put po to sleep (level 1) in 0.12 s; it keeps 0.7 GiB of GPU memory and 5.4 GiB in "
        "host RAM."
    ]


def test_a_sleep_agent_that_cannot_sleep_is_stopped_with_a_line_that_says_why(
    workspace: Path,
) -> None:
    from agent_manager.observe.state import AgentMachine
    from agent_manager.switch.strategy import SwitchPlan

    spec = workspace / "agents" / "architect.yaml"
    spec.write_text(spec.read_text() + "\nswitch: sleep\n")
    ws = resolve_workspace(workspace)
    po = load_agent(ws, "po")
    old = dataclasses.replace(_container("architect", "c2"), spec_hash="an-older-spec")
    plan = SwitchPlan(
        containers=[old],
        keep=None,
        machines={"architect": AgentMachine("architect", AgentState.READY)},
    )
    said: list[str] = []

    staying = hot.sleep_others(ws, po, plan, said.append)

    assert staying == set()
    assert said == [
        "architect cannot sleep now (its spec changed since it started); "
        "stopping it instead (cold switch)."
    ]
    assert [c.id for c in plan.to_put_away] == ["c2"]
