"""`doctor`'s verdicts: plain values in, a `Check` out (OK / WARN / FAIL, what was found, how
to fix it). No I/O here, so tests pin every branch; `checks.py` gathers the facts."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from pydantic import BaseModel

from agent_manager.adapters import nvml
from agent_manager.observe import ports
from agent_manager.observe.ports import PortUse
from agent_manager.spec.agents import Agent
from agent_manager.spec.vllm_args import IMAGE, IMAGE_TAG
from agent_manager.units import GIB, format_bytes

# vllm/vllm-openai:v0.33.0 is built on CUDA 13, which needs an R580 or newer driver.
MIN_DRIVER_MAJOR = 580
# Below this the first download of even one default model (5-10 GiB) may not fit.
DISK_FAIL_GIB = 10.0
DISK_WARN_GIB = 30.0
# Organisations whose repos are (almost all) gated: a token is needed to download them.
GATED_ORGS = frozenset({"meta-llama", "mistralai", "google", "bigcode"})

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
