"""What a cluster target cannot express of a spec, in one place.

Each rule either refuses (a `SpecError`, exit 2, naming the file and field) or reports a
`Notice` (a field dropped or changed, printed as a warning and written into the output's
header). The mappings of the engine, hot-switch and local-model fields:
- `engine: cpu` → the pinned vLLM CPU image and no GPU (`image`, `gpu_count`);
- `switch: sleep` (and `sleep_level`) → dropped: neither target sleeps and wakes an engine on
  demand; KubeAI scales to zero instead (`drop_sleep`);
- a local model directory → a PersistentVolumeClaim the user fills (`model_source`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import NoReturn

from agent_manager.errors import SpecError
from agent_manager.export.argv import FlagGroup, k8s_literal
from agent_manager.export.secrets import is_secret_env, referenced_var
from agent_manager.spec.agents import Agent
from agent_manager.spec.vllm_args import IMAGE, IMAGE_TAG, VLLM_VERSION

# The CPU image for x86_64 nodes; the compose renderer picks the host's architecture instead.
CPU_IMAGE = ("vllm/vllm-openai-cpu", f"v{VLLM_VERSION}-x86_64")
# Flags and variables that only make sense with agent-manager's own sleep/wake switching.
SLEEP_ONLY_DESTS = frozenset({"enable_sleep_mode"})
DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"
# Where production-stack mounts a PVC-held model (KubeAI always uses /model).
MODEL_MOUNT = "/models"


@dataclass(frozen=True)
class Notice:
    """A spec field the target drops or changes, said once to the user and kept in the file."""

    agent: str
    field: str
    text: str

    def line(self) -> str:
        return f"{self.agent}: '{self.field}': {self.text}"


def refuse(agent: Agent, field: str, message: str, hint: str) -> NoReturn:
    raise SpecError(f"{agent.path}: '{field}': {message}", hint=hint)


def engine(agent: Agent) -> str:
    return agent.spec.engine


def gpu_count(agent: Agent) -> int:
    return 0 if engine(agent) == "cpu" else agent.spec.tensor_parallel_size


def image(agent: Agent) -> tuple[str, str]:
    """(repository, tag) of the pinned image the flags were checked against."""
    if engine(agent) == "cpu":
        return CPU_IMAGE
    return IMAGE, agent.spec.image_tag or IMAGE_TAG


def drop_sleep(
    agent: Agent, groups: list[FlagGroup], instead: str
) -> tuple[list[FlagGroup], list[Notice]]:
    """`switch: sleep` needs agent-manager to call /sleep and /wake_up; a cluster target does not,
    so the mode and its flags are dropped and reported."""
    if agent.spec.switch != "sleep":
        return groups, []
    kept = [g for g in groups if g.dest not in SLEEP_ONLY_DESTS]
    return kept, [
        Notice(agent.name, "switch", f"sleep has no equivalent here; dropped ({instead}).")
    ]


# Compose-only variables: launch's own offline switch (a pod downloads the model itself).
COMPOSE_ONLY_ENV = frozenset({"HF_HUB_OFFLINE"})


def cluster_env(agent: Agent) -> tuple[dict[str, str], list[Notice]]:
    """The container environment the compose file gives the agent (`render_compose`'s, so the
    CPU engine's VLLM_CPU_KVCACHE_SPACE and VLLM_CPU_OMP_THREADS_BIND come along), for a pod:
    secrets go by Secret (never here), dev endpoints stay closed, and a value Compose would read
    from the user's shell is refused: a pod has no such shell."""
    from agent_manager.compose.render import render_compose

    # The architecture only picks the image, never the environment.
    compose_env = render_compose(agent, machine="x86_64")["services"]["vllm"]["environment"]
    env: dict[str, str] = {}
    notices: list[Notice] = []
    for key, composed in compose_env.items():
        if is_secret_env(key) or key in COMPOSE_ONLY_ENV:
            continue
        if key == DEV_MODE_ENV:
            if key in agent.spec.env:
                notices.append(
                    Notice(
                        agent.name,
                        f"env.{key}",
                        "dropped: it opens vLLM's development endpoints (/sleep, "
                        "/collective_rpc, ...) to everything that reaches the pod.",
                    )
                )
            continue  # with `switch: sleep` alone, drop_sleep reports the mode
        value = agent.spec.env.get(key)
        if value is not None and "${" in value:
            var = referenced_var(value)
            refuse(
                agent,
                f"env.{key}",
                f"{'${' + var + '}' if var else value} is read from your shell by Compose; a pod "
                "has no such shell.",
                hint="Write the value itself in the spec, or put it in a Secret and add an "
                "envFrom to the exported manifest.",
            )
        # Compose's text has every `$` doubled (compose.render.literal); the container sees one.
        env[key] = k8s_literal(composed.replace("$$", "$"))
    return env, notices


@dataclass(frozen=True)
class ModelSource:
    """A hub repo (`repo`) or a directory the user copies into a PersistentVolumeClaim."""

    repo: str | None = None
    pvc: str | None = None
    subpath: str | None = None


def is_local_model(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~"))


def model_source(agent: Agent, pvc: str | None, target: str) -> tuple[ModelSource, list[Notice]]:
    """From the spec's `model` (the host path for a local directory, not where Compose mounts
    it)."""
    model = agent.spec.model
    if not is_local_model(model):
        return ModelSource(repo=model), []
    folder = PurePosixPath(model.rstrip("/")).name
    if pvc is None:
        refuse(
            agent,
            "model",
            f"{model} is a directory on this machine; {target} cannot read it.",
            hint=f"Copy it into a PersistentVolumeClaim (e.g. under /{folder}) and pass "
            f"--model-pvc <claim name>; the export then reads it from there.",
        )
    note = Notice(
        agent.name,
        "model",
        f"local directory: copy {model} into the PersistentVolumeClaim '{pvc}' as /{folder} "
        "before you apply this.",
    )
    return ModelSource(pvc=pvc, subpath=folder), [note]


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_name(
    agent: Agent, value: str, field: str, target: str, *, max_len: int, dots: bool, hint: str
) -> None:
    """A name the target turns into Kubernetes object names must be one."""
    pattern, allowed = (
        (_DNS_SUBDOMAIN, "lower-case letters, digits, '-' and '.'")
        if dots
        else (_DNS_LABEL, "lower-case letters, digits and '-', starting with a letter")
    )
    if pattern.match(value) and len(value) <= max_len:
        return
    refuse(
        agent,
        field,
        f"{target} names Kubernetes objects after '{value}', and Kubernetes allows only "
        f"{allowed} (at most {max_len} characters).",
        hint=hint,
    )
