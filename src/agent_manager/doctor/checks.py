"""`doctor`: is this machine ready to serve the agents? One small check per fact.

Each check returns `Check`s (OK / WARN / FAIL, what was found, how to fix it). The deciding
functions (`*_verdict`) take plain values so tests pin every branch; the gatherers around them
ask Docker, NVML and the disk. One check that breaks cannot stop the others (`run_checks`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path

from pydantic import BaseModel

from agent_manager.adapters import compose, docker, nvml
from agent_manager.errors import AgentManagerError, SpecError
from agent_manager.models.cache_layout import hf_home, hub_cache
from agent_manager.runtime import ports
from agent_manager.runtime.ports import PortUse, port_holders, port_use
from agent_manager.spec.agents import Agent
from agent_manager.spec.loader import check_ports, load_agent
from agent_manager.spec.vllm_args import IMAGE, IMAGE_TAG
from agent_manager.spec.workspace import Workspace
from agent_manager.units import GIB, format_bytes

# vllm/vllm-openai:v0.33.0 is built on CUDA 13, which needs an R580 or newer driver.
MIN_DRIVER_MAJOR = 580
# Below this the first download of even one default model (5-10 GiB) may not fit.
DISK_FAIL_GIB = 10.0
DISK_WARN_GIB = 30.0
# Organisations whose repos are (almost all) gated: a token is needed to download them.
GATED_ORGS = frozenset({"meta-llama", "mistralai", "google", "bigcode"})
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
NVIDIA_HOOKS = ("nvidia-container-runtime-hook", "nvidia-container-runtime", "nvidia-ctk")

TOOLKIT_FIX = (
    "Install the NVIDIA Container Toolkit (docs.nvidia.com/datacenter/cloud-native/"
    "container-toolkit), then `sudo nvidia-ctk runtime configure --runtime=docker && "
    "sudo systemctl restart docker`."
)


class Status(str, Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


class Check(BaseModel):
    name: str
    status: Status
    detail: str
    fix: str | None = None


class DoctorReport(BaseModel):
    workspace: str
    checks: list[Check]
    failed: int
    warned: int

    @property
    def ok(self) -> bool:
        return self.failed == 0


def ok(name: str, detail: str) -> Check:
    return Check(name=name, status=Status.OK, detail=detail)


def warn(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name=name, status=Status.WARN, detail=detail, fix=fix)


def fail(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name=name, status=Status.FAIL, detail=detail, fix=fix)


# --- verdicts: plain values in, a Check out ------------------------------------------------------


def driver_verdict(driver_version: str | None, cuda_version: str | None) -> Check:
    name = "nvidia driver"
    if not driver_version:
        return warn(name, "NVML gives no driver version.", "Check `nvidia-smi`.")
    try:
        major = int(driver_version.split(".")[0])
    except ValueError:
        return warn(name, f"Unrecognised driver version '{driver_version}'.")
    cuda = f", CUDA {cuda_version}" if cuda_version else ""
    if major >= MIN_DRIVER_MAJOR:
        return ok(name, f"{driver_version}{cuda}: enough for {IMAGE}:{IMAGE_TAG} (CUDA 13).")
    return fail(
        name,
        f"{driver_version}{cuda} is older than R{MIN_DRIVER_MAJOR}, which {IMAGE}:{IMAGE_TAG} "
        "needs (it is built on CUDA 13).",
        f"Install NVIDIA driver {MIN_DRIVER_MAJOR} or newer and reboot. On datacenter and "
        "professional GPUs an R535/R570 driver can work instead with "
        "`env: {VLLM_ENABLE_CUDA_COMPATIBILITY: '1'}` in the agent's spec.",
    )


def vram_verdict(
    devices: Sequence[nvml.GpuDevice], agents: Sequence[Agent], running: Sequence[str] = ()
) -> Check:
    """vLLM refuses to start unless free >= gpu_memory_fraction x TOTAL memory.

    `running`: agents whose containers run now; launch stops them first, freeing their share.
    """
    name = "gpu memory"
    gpu = devices[0]  # the compose files reserve one GPU; Docker hands out the first
    free, total = gpu.memory_free_bytes, gpu.memory_total_bytes
    others = f" (+{len(devices) - 1} more GPU)" if len(devices) > 1 else ""
    found = f"{gpu.name}: {free / GIB:.1f} of {format_bytes(total)} free{others}"
    short = [a for a in agents if free < a.spec.gpu_memory_fraction * total]
    if not short:
        return ok(name, found + ".")
    needs = ", ".join(
        f"{a.name} {a.spec.gpu_memory_fraction:.2f} x {total / GIB:.1f} = "
        f"{format_bytes(a.spec.gpu_memory_fraction * total)}"
        for a in short
    )
    held = (
        f" Agent {', '.join(running)} is running and holds part of it; launch stops it first."
        if running
        else ""
    )
    return warn(
        name,
        f"{found}; vLLM needs that much free at start: {needs}.{held}",
        "Free GPU memory (`agent-manager gpu-stats` shows who holds it; `agent-manager stop`), "
        "or lower gpu_memory_fraction in the agent's spec.",
    )


def runtime_verdict(
    runtimes: Sequence[str], cdi_specs: Sequence[str], hooks: Sequence[str]
) -> Check:
    name = "gpu runtime"
    if "nvidia" in runtimes:
        return ok(name, "Docker has the 'nvidia' runtime.")
    if cdi_specs:
        return ok(name, f"CDI specs for NVIDIA GPUs: {', '.join(cdi_specs)}.")
    if hooks:
        return ok(name, f"NVIDIA Container Toolkit found ({', '.join(hooks)}).")
    return fail(
        name,
        "Docker cannot hand a GPU to containers: no 'nvidia' runtime (runtimes: "
        f"{', '.join(runtimes) or 'none'}), no NVIDIA CDI spec, no NVIDIA container hook.",
        TOOLKIT_FIX,
    )


def disk_verdict(path: Path, free_bytes: int) -> Check:
    name = "disk"
    free = free_bytes / GIB
    found = f"{format_bytes(free_bytes)} free for the Hugging Face cache ({path})"
    fix = (
        "Free space, or set HF_HOME to a folder on a larger disk (agent-manager mounts HF_HOME "
        "into the containers)."
    )
    if free < DISK_FAIL_GIB:
        return fail(name, f"{found}: too little for one model.", fix)
    if free < DISK_WARN_GIB:
        return warn(name, f"{found}: enough for one or two models, not all three.", fix)
    return ok(name, found + ".")


def hf_token_verdict(
    env: dict[str, str], token_file: Path | None, models: Sequence[str], cached: Sequence[str]
) -> Check:
    """`cached`: the models complete in the local cache (they start offline, no token)."""
    name = "hf token"
    if env.get("HF_TOKEN"):
        return ok(name, "HF_TOKEN is set (passed to the containers by reference).")
    to_fetch = [m for m in models if m not in cached]
    gated = [m for m in to_fetch if m.split("/")[0].lower() in GATED_ORGS]
    where = []
    if env.get("HUGGING_FACE_HUB_TOKEN"):
        where.append("HUGGING_FACE_HUB_TOKEN is set")
    if token_file is not None:
        where.append(f"a login token is in {token_file}")
    fix = (
        "Accept the model's licence on huggingface.co, then `export HF_TOKEN=hf_...` "
        "(the containers receive HF_TOKEN only)."
    )
    if gated:
        have = f" ({'; '.join(where)}, but the containers receive HF_TOKEN only)" if where else ""
        return warn(
            name,
            f"HF_TOKEN is not set{have}; {', '.join(gated)} come from an organisation that "
            "gates its models, so downloading needs a token.",
            fix,
        )
    if not to_fetch:
        return ok(name, "HF_TOKEN is not set; not needed: every agent's model is in the cache.")
    return ok(
        name,
        f"HF_TOKEN is not set: fine for public repos. Whether {', '.join(to_fetch)} "
        "need it is unknown offline (gated repos answer 401 on download).",
    )


def port_verdict(
    agent: Agent, use: PortUse, running_agent: str | None, holders: list[str]
) -> Check:
    verdict = ports.port_verdict(agent, use, running_agent, holders)
    status = {"ok": Status.OK, "warn": Status.WARN, "fail": Status.FAIL}[verdict.level]
    return Check(
        name=f"port {agent.spec.port}", status=status, detail=verdict.detail, fix=verdict.fix
    )


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
    dirs = info.cdi_spec_dirs or CDI_DIRS
    specs = sorted(
        str(p) for d in dirs if Path(d).is_dir() for p in Path(d).glob("nvidia*") if p.is_file()
    )
    hooks = [h for h in NVIDIA_HOOKS if shutil.which(h)]
    return [runtime_verdict(info.runtimes, specs, hooks)]


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
