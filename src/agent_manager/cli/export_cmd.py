"""`export kubeai` and `export production-stack`: the same agents, for a cluster.

Pure rendering (`agent_manager.export`); this module parses options, writes the files
atomically and reports what a target dropped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent_manager import ui
from agent_manager.cli.options import AgentsArg, workspace
from agent_manager.errors import UsageError

if TYPE_CHECKING:
    from agent_manager.export.limits import Notice
    from agent_manager.export.pod_size import PodMemory
    from agent_manager.spec.agents import Agent

app = typer.Typer(
    name="export",
    help="Export agents to KubeAI or production-stack.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ModelPvcOpt = Annotated[
    str | None,
    typer.Option(
        "--model-pvc",
        help="PersistentVolumeClaim holding agents whose model is a local directory "
        "(copied in as /<folder name>).",
    ),
]
_DURATION = re.compile(r"^([0-9]+)(s|m|h)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


def duration_s(text: str, option: str = "--scale-down-delay") -> int:
    """`90`, `90s`, `30m` or `1h` → seconds (the router's --idle-stop takes the same form)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(
            f"{option} '{text}' is not a duration.",
            hint="Use seconds or a number with s, m or h, e.g. 30m.",
        )
    return int(match.group(1)) * _UNIT_S[match.group(2) or "s"]


@app.command("kubeai")
def kubeai(
    agents: AgentsArg = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for <agent>.yaml (default: kubernetes/kubeai in the workspace); "
            "'-' prints them.",
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace of the Models.")
    ] = None,
    resource_profile: Annotated[
        str,
        typer.Option(
            "--resource-profile",
            help="KubeAI resource profile, NAME or NAME:COUNT; the count is the agent's GPU count.",
        ),
    ] = "nvidia-gpu-l4",
    min_replicas: Annotated[
        int, typer.Option("--min-replicas", min=0, help="0 scales an idle agent to zero.")
    ] = 0,
    scale_down_delay: Annotated[
        str,
        typer.Option(
            "--scale-down-delay",
            help="Idle time before KubeAI scales a Model down (like `serve --idle-stop`).",
        ),
    ] = "30s",
    max_replicas: Annotated[
        int,
        typer.Option(
            "--max-replicas",
            min=1,
            help="Most pods (and GPUs) KubeAI may scale an agent to under load.",
        ),
    ] = 1,
    model_pvc: ModelPvcOpt = None,
) -> None:
    """Write one KubeAI Model manifest per agent.

    Same vLLM flags and environment as the compose file, the model from hf:// (or a PVC), the
    HF token and API key from Secrets; a CPU agent gets a cpu:N profile that holds the memory
    `plan` works out. Only files it wrote are replaced, and manifests of removed agents go.
    Apply with `kubectl apply -f <folder>`.
    """
    from agent_manager.export import option_check
    from agent_manager.export.files import stale_manifests
    from agent_manager.export.kubeai import (
        TARGET_MARK,
        KubeAIOptions,
        render_model,
        render_model_text,
    )
    from agent_manager.spec.engine_choice import gpu_cluster
    from agent_manager.spec.loader import load_agents

    ws = workspace()
    # A cluster has GPUs: `engine: auto` exports as the GPU agent, whatever this machine is.
    chosen = load_agents(ws, agents or None, machine=gpu_cluster)
    options = KubeAIOptions(
        namespace=option_check.namespace(namespace),
        resource_profile=resource_profile,
        min_replicas=min_replicas,
        scale_down_delay_s=duration_s(scale_down_delay),
        model_pvc=option_check.claim("--model-pvc", model_pvc),
        max_replicas=max_replicas,
        cpu_memory=_planned_memory(chosen),
    )
    models = [render_model(agent, options) for agent in chosen]
    folder = out or ws.root / "kubernetes" / "kubeai"
    texts = {folder / f"{m.agent.name}.yaml": render_model_text(m, options) for m in models}
    notices = [n for m in models for n in m.notices]
    if _is_stdout(out):
        _print(texts, notices)
        return
    stale = stale_manifests(folder, TARGET_MARK, ws.agent_names(), set(texts))
    base = ws.root if out is None else folder.parent
    _write(texts, TARGET_MARK, base, notices, stale)


@app.command("production-stack")
def production_stack(
    agents: AgentsArg = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Values file (default: kubernetes/production-stack-values.yaml in the "
            "workspace); '-' prints it.",
        ),
    ] = None,
    request_cpu: Annotated[
        int, typer.Option("--request-cpu", min=1, help="CPUs each engine requests.")
    ] = 6,
    request_memory: Annotated[
        str, typer.Option("--request-memory", help="Memory each engine requests.")
    ] = "24Gi",
    startup_timeout: Annotated[
        str,
        typer.Option(
            "--startup-timeout",
            help="How long an engine may take to start (download, load, compile) before "
            "Kubernetes restarts it; 90s, 30m or 3h.",
        ),
    ] = "3h",
    pvc_storage: Annotated[
        str | None,
        typer.Option(
            "--pvc-storage",
            help="Give each engine a PersistentVolumeClaim of this size (e.g. 50Gi) for the "
            "HF cache, so a restart does not download the model again.",
        ),
    ] = None,
    model_pvc: ModelPvcOpt = None,
) -> None:
    """Write a Helm values file for vLLM production-stack.

    One servingEngineSpec.modelSpec entry per agent with the compose file's vLLM flags and
    environment, the HF token and API key from Secrets, and the router on; a CPU agent gets
    the memory `plan` works out, no GPU, no runtime class and a /dev/shm volume. Install with
    `helm install agents vllm/vllm-stack --version 0.1.12 -f <file>`.
    """
    from agent_manager.export import option_check
    from agent_manager.export.production_stack import (
        TARGET,
        StackOptions,
        render_values,
        render_values_text,
    )
    from agent_manager.spec.engine_choice import gpu_cluster
    from agent_manager.spec.loader import load_agents

    ws = workspace()
    # A cluster has GPUs: `engine: auto` exports as the GPU agent, whatever this machine is.
    chosen = load_agents(ws, agents or None, machine=gpu_cluster)
    options = StackOptions(
        request_cpu=request_cpu,
        request_memory=option_check.quantity("--request-memory", request_memory) or "",
        model_pvc=option_check.claim("--model-pvc", model_pvc),
        cpu_memory=_planned_memory(chosen),
        startup_timeout_s=duration_s(startup_timeout, "--startup-timeout"),
        pvc_storage=option_check.quantity("--pvc-storage", pvc_storage),
    )
    stack = render_values(chosen, options)
    path = out or ws.root / "kubernetes" / "production-stack-values.yaml"
    texts = {path: render_values_text(stack)}
    if _is_stdout(out):
        _print(texts, stack.notices)
        return
    _write(texts, TARGET, ws.root if out is None else path.parent, stack.notices, [])


def _is_stdout(out: Path | None) -> bool:
    return out is not None and str(out) == "-"


def _planned_memory(agents: list[Agent]) -> dict[str, PodMemory]:
    """CPU agents' pod memory from the planner (the local cache first, then the hub)."""
    from agent_manager.export.pod_size import pod_memory
    from agent_manager.plan.checkpoint import read_checkpoint
    from agent_manager.plan.cpu_budget import cpu_budget

    return {
        agent.name: pod_memory(
            *cpu_budget(agent, read_checkpoint(agent.spec.model, agent.spec.revision))
        )
        for agent in agents
        if agent.spec.engine == "cpu"
    }


def _print(texts: dict[Path, str], notices: list[Notice]) -> None:
    """Warnings on stderr, the documents on stdout for a pipe."""
    for notice in notices:
        ui.warn(notice.line())
    sys.stdout.write("---\n".join(texts.values()))
    sys.stdout.flush()


def _write(
    texts: dict[Path, str], target: str, base: Path, notices: list[Notice], stale: list[Path]
) -> None:
    """Warnings first (stderr), then the whole set or nothing, then the stale manifests go."""
    from agent_manager.export.files import write_set

    for notice in notices:
        ui.warn(notice.line())
    result = write_set(texts, target, base, stale)
    for path in result.written:
        ui.success(f"wrote {path}")
    for path in result.removed:
        ui.success(f"removed {path} (its agent is no longer in agents/)")
