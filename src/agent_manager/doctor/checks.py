"""`doctor`: is this machine ready to serve the agents? One small check per fact.

Each check gathers facts from Docker, NVML and the disk and hands them to a pure verdict
(`verdicts.py`). One check that breaks cannot stop the others (`run_checks`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from agent_manager.adapters import compose, docker, nvml
from agent_manager.adapters.gpu_runtime import nvidia_cdi_specs, nvidia_hooks
from agent_manager.adapters.hf_cache import hf_home, hub_cache
from agent_manager.doctor.verdicts import (
    Check,
    DoctorReport,
    Status,
    disk_verdict,
    driver_verdict,
    fail,
    hf_token_verdict,
    ok,
    port_verdict,
    runtime_verdict,
    vram_verdict,
    warn,
)
from agent_manager.errors import AgentManagerError, SpecError
from agent_manager.observe.ports import PortUse, port_holders, port_use
from agent_manager.spec.agents import Agent
from agent_manager.spec.loader import check_ports, load_agent
from agent_manager.spec.vllm_args import IMAGE, IMAGE_TAG
from agent_manager.spec.workspace import Workspace


def check_docker() -> list[Check]:
    info = docker.get_docker().engine_info()
    return [ok("docker", f"Docker Engine {info.version} (API {info.api_version}) is reachable.")]


def check_compose() -> list[Check]:
    return [ok("compose", f"Docker Compose {compose.compose_version()} (v2 plugin).")]


def check_gpu_runtime() -> list[Check]:
    try:
        info = docker.get_docker().engine_info()
    except AgentManagerError:
        return [warn("gpu runtime", "Not checked: Docker is not reachable (see 'docker').")]
    specs = nvidia_cdi_specs(info.cdi_spec_dirs)
    return [runtime_verdict(info.runtimes, specs, nvidia_hooks())]


def check_nvml(ws: Workspace) -> list[Check]:
    try:
        devices = nvml.get_nvml().devices()
    except AgentManagerError as error:
        return [
            fail("nvml", error.message, error.hint),
            warn("nvidia driver", "Not checked: NVML cannot be read (see 'nvml')."),
        ]
    names = ", ".join(f"{d.index}: {d.name}" for d in devices)
    checks = [ok("nvml", f"NVML reads {len(devices)} GPU(s) ({names}).")]
    checks.append(driver_verdict(devices[0].driver_version, devices[0].cuda_driver_version))
    checks.append(vram_verdict(devices, _loadable_agents(ws), _running_agents()))
    return checks


def _running_agents() -> list[str]:
    try:
        return sorted(
            {c.agent for c in docker.get_docker().list_agent_containers(False) if c.running}
        )
    except AgentManagerError:
        return []


def check_disk() -> list[Check]:
    path = hub_cache()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return [disk_verdict(path, free_bytes(probe))]


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_hf_token(ws: Workspace) -> list[Check]:
    from agent_manager.models.cache_state import CacheState, cache_state

    agents = _loadable_agents(ws)
    models = sorted({a.spec.model for a in agents})
    cached = []
    for agent in agents:
        try:
            if cache_state(agent) is CacheState.COMPLETE:
                cached.append(agent.spec.model)
        except Exception:  # noqa: BLE001 - an unreadable cache only means "not cached"
            continue
    token_file = hf_home() / "token"
    return [
        hf_token_verdict(
            dict(os.environ), token_file if token_file.is_file() else None, models, cached
        )
    ]


def check_image(ws: Workspace) -> list[Check]:
    tags = sorted({a.spec.image_tag or IMAGE_TAG for a in _loadable_agents(ws)} or {IMAGE_TAG})
    missing = [
        f"{IMAGE}:{t}" for t in tags if not docker.get_docker().image_present(f"{IMAGE}:{t}")
    ]
    if not missing:
        return [ok("image", f"{', '.join(f'{IMAGE}:{t}' for t in tags)} is pulled.")]
    return [
        warn(
            "image",
            f"{', '.join(missing)} is not pulled yet; the first launch downloads it (several GB).",
            f"`docker pull {missing[0]}` now, while nothing waits for it.",
        )
    ]


def check_agent_ports(ws: Workspace) -> list[Check]:
    agents = _loadable_agents(ws)
    try:
        running = {
            c.port: c.agent for c in docker.get_docker().list_agent_containers(False) if c.port
        }
    except AgentManagerError:
        running = {}
    checks = []
    for agent in agents:
        use = port_use(agent.spec.bind, agent.spec.port)
        holders: list[str] = []
        if use is PortUse.IN_USE and agent.spec.port not in running:
            holders = port_holders(agent.spec.port)
        checks.append(port_verdict(agent, use, running.get(agent.spec.port), holders))
    return checks


def check_specs(ws: Workspace) -> list[Check]:
    from agent_manager.compose.files import ComposeState, compose_state

    names = ws.agent_names()
    not_read = [
        warn(
            "specs",
            f"{path} is not read (only agents/<lower-case name>.yaml is).",
            f"Rename it to {better}.",
        )
        for path, better in ws.misnamed_specs().items()
    ]
    if not names:
        return [
            fail("specs", f"No agents in {ws.agents_dir}.", "Add agents/<name>.yaml."),
            *not_read,
        ]
    checks: list[Check] = []
    agents = []
    for name in names:
        try:
            agents.append(load_agent(ws, name))
        except AgentManagerError as error:  # a bad spec, or one the OS will not let us read
            checks.append(fail("specs", error.message, error.hint))
    try:
        check_ports(agents)
    except SpecError as error:
        checks.append(fail("specs", error.message, error.hint))
    if not checks:
        checks.append(ok("specs", f"{len(agents)} valid: {', '.join(a.name for a in agents)}."))
    checks += not_read
    checks += [
        warn("compose files", f"{orphan} belongs to no agent (its spec is gone).", "Delete it.")
        for orphan in ws.orphan_compose_files()
    ]
    states = {a.name: compose_state(ws, a) for a in agents}
    stale = [n for n, s in states.items() if s is not ComposeState.CURRENT]
    if stale:
        listing = ", ".join(f"{n} ({states[n].value})" for n in stale)
        checks.append(
            warn(
                "compose files",
                f"Not current: {listing}.",
                "`agent-manager compose` rewrites them (launch also does, for its agent).",
            )
        )
    elif agents:
        checks.append(ok("compose files", f"{len(agents)} current in {ws.compose_dir}."))
    return checks


def _loadable_agents(ws: Workspace) -> list[Agent]:
    agents = []
    for name in ws.agent_names():
        try:
            agents.append(load_agent(ws, name))
        except AgentManagerError:
            continue  # reported by the 'specs' check
    return agents


# --- running them -------------------------------------------------------------------------------


def all_checks(ws: Workspace) -> list[tuple[str, Callable[[], list[Check]]]]:
    return [
        ("docker", check_docker),
        ("compose", check_compose),
        ("gpu runtime", check_gpu_runtime),
        ("nvml", lambda: check_nvml(ws)),
        ("disk", check_disk),
        ("hf token", lambda: check_hf_token(ws)),
        ("image", lambda: check_image(ws)),
        ("ports", lambda: check_agent_ports(ws)),
        ("specs", lambda: check_specs(ws)),
    ]


def run_checks(
    ws: Workspace, checks: Sequence[tuple[str, Callable[[], list[Check]]]]
) -> DoctorReport:
    results: list[Check] = []
    for name, run in checks:
        try:
            results.extend(run())
        except AgentManagerError as error:
            results.append(fail(name, error.message, error.hint))
        except Exception as error:  # noqa: BLE001 - one broken check must not hide the others
            results.append(
                fail(
                    name,
                    f"The check itself failed: {type(error).__name__}: {error}",
                    "Run `agent-manager --debug doctor` and report it.",
                )
            )
    return DoctorReport(
        workspace=str(ws.root),
        checks=results,
        failed=sum(c.status is Status.FAIL for c in results),
        warned=sum(c.status is Status.WARN for c in results),
    )
