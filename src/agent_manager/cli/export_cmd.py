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


def duration_s(text: str) -> int:
    """`90`, `90s`, `30m` or `1h` → seconds (the router's --idle-stop takes the same form)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(
            f"--scale-down-delay '{text}' is not a duration.",
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
    model_pvc: ModelPvcOpt = None,
) -> None:
    """Write one KubeAI Model manifest per agent.

    Same vLLM flags as the compose file, the model from hf:// (or a PVC), the HF token and API
    key from Secrets. Apply with `kubectl apply -f <folder>`.
    """
    from agent_manager.export.kubeai import KubeAIOptions, render_model, render_model_text
    from agent_manager.spec.engine_choice import gpu_cluster
    from agent_manager.spec.loader import load_agents

    ws = workspace()
    options = KubeAIOptions(
        namespace=namespace,
        resource_profile=resource_profile,
        min_replicas=min_replicas,
        scale_down_delay_s=duration_s(scale_down_delay),
        model_pvc=model_pvc,
    )
    models = [
        render_model(agent, options)
        for agent in load_agents(ws, agents or None, machine=gpu_cluster)
    ]
    folder = out or ws.root / "kubernetes" / "kubeai"
    texts = {folder / f"{m.agent.name}.yaml": render_model_text(m, options) for m in models}
    _emit(texts, _is_stdout(out), [n for m in models for n in m.notices])


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
    model_pvc: ModelPvcOpt = None,
) -> None:
    """Write a Helm values file for vLLM production-stack.

    One servingEngineSpec.modelSpec entry per agent with the compose file's vLLM flags, the
    HF token and API key from Secrets, and the router on. Install with
    `helm install agents vllm/vllm-stack -f <file>`.
    """
    from agent_manager.export.production_stack import (
        StackOptions,
        render_values,
        render_values_text,
    )
    from agent_manager.spec.engine_choice import gpu_cluster
    from agent_manager.spec.loader import load_agents

    ws = workspace()
    options = StackOptions(
        request_cpu=request_cpu, request_memory=request_memory, model_pvc=model_pvc
    )
    stack = render_values(load_agents(ws, agents or None, machine=gpu_cluster), options)
    path = out or ws.root / "kubernetes" / "production-stack-values.yaml"
    _emit({path: render_values_text(stack)}, _is_stdout(out), stack.notices)


def _is_stdout(out: Path | None) -> bool:
    return out is not None and str(out) == "-"


def _emit(texts: dict[Path, str], to_stdout: bool, notices: list[Notice]) -> None:
    """Warnings first (stderr), then the files, or the documents on stdout for a pipe."""
    from agent_manager.fsio import write_text_atomic

    for notice in notices:
        ui.warn(notice.line())
    if to_stdout:
        sys.stdout.write("---\n".join(texts.values()))
        sys.stdout.flush()
        return
    for path, text in texts.items():
        write_text_atomic(path, text)
        ui.success(f"wrote {path}")
