"""Pure rendering: an Agent → the text of `compose/docker-compose-<agent>.yml`.

Same spec, same bytes. Nothing here touches Docker or the disk; `render_compose_text` is what
golden files pin down.
"""

from __future__ import annotations

import platform
import re
from typing import Any

import yaml

from agent_manager.adapters.compose import OFFLINE_ENV
from agent_manager.adapters.containers import (
    DEFAULT_INSTANCE,
    LABEL_AGENT,
    LABEL_PORT,
    LABEL_SERVED,
    LABEL_SPEC_HASH,
)
from agent_manager.spec.agents import Agent
from agent_manager.spec.env_check import REFERENCE, SECRET_ENV
from agent_manager.spec.serve_argv import image_ref, model_argument, serve_argv, sleeps
from agent_manager.spec.vllm_args import CONTAINER_PORT, STOP_GRACE_PERIOD_S, VLLM_VERSION

SERVICE = "vllm"
VLLM_CACHE_VOLUME = "agent-manager-vllm-cache"
# vLLM may download weights on first start and compile for minutes: be patient before the
# healthcheck counts failures. The CLI's readiness does not depend on it.
HEALTH_START_PERIOD = "20m"


def literal(value: str) -> str:
    """A user's value as Compose must read it: `$` doubled, so Compose never interpolates it.

    Without this, `revision: '${HF_TOKEN}'` put the host's token into vLLM's argv (visible in
    `docker inspect` and `ps`) and a `$HOME` in a path became `/root`.
    """
    return value.replace("$", "$$")


def _env_value(key: str, value: str) -> str:
    # The one place a user writes a `${VAR}` on purpose: a secret passed by reference
    # (spec validation allows nothing else under these names).
    return value if key in SECRET_ENV and REFERENCE.match(value) else literal(value)


def api_key_reference(variable: str) -> str:
    """`${VAR:?...}`: a hand-run `docker compose up` without the key set fails instead of serving
    everyone without one (`${VAR:-}` would start vLLM with an empty key, i.e. no key)."""
    return f"${{{variable}:?export {variable} (the API key clients must send; api_key_env)}}"


def render_compose(agent: Agent, machine: str | None = None) -> dict[str, Any]:
    """The compose file as data. `machine` is `platform.machine()` of the host by default: it
    picks the CPU image's architecture."""
    spec = agent.spec
    environment: dict[str, str] = {
        # By reference: compose reads the caller's environment; the token never lands here.
        "HF_TOKEN": "${HF_TOKEN:-}",
        "HF_HUB_OFFLINE": f"${{{OFFLINE_ENV}:-0}}",
    }
    if spec.api_key_env:
        environment["VLLM_API_KEY"] = api_key_reference(spec.api_key_env)
    if spec.engine == "cpu":
        # vllm/envs.py: GiB of RAM for the KV cache; OpenMP threads bound to cores ("auto"
        # leaves one core per NUMA node to the API server). `env:` may override the binding.
        environment["VLLM_CPU_KVCACHE_SPACE"] = str(spec.cpu_kv_cache_gib)
        environment["VLLM_CPU_OMP_THREADS_BIND"] = "auto"
    environment.update((key, _env_value(key, value)) for key, value in sorted(spec.env.items()))
    if sleeps(spec):
        # The sleep endpoints exist only in dev mode; the spec checker keeps such an agent
        # on a loopback bind, because no API key guards them.
        environment["VLLM_SERVER_DEV_MODE"] = "1"
    host = f"[{spec.bind}]" if ":" in spec.bind else spec.bind
    volumes: list[Any] = [
        "${HF_HOME:-~/.cache/huggingface}:/root/.cache/huggingface",
        f"{VLLM_CACHE_VOLUME}:/root/.cache/vllm",
    ]
    if spec.local_model:
        # Long syntax: a missing folder is an error, not an empty folder Docker creates.
        volumes.append(
            {
                "type": "bind",
                "source": literal(spec.model),
                "target": model_argument(agent),
                "read_only": True,
                # Compose would otherwise create an empty folder for a missing path.
                "bind": {"create_host_path": False},
            }
        )
    service: dict[str, Any] = {
        "image": image_ref(spec, machine if machine is not None else platform.machine()),
        "command": [literal(arg) for arg in serve_argv(agent)],
        "ports": [f"{host}:{spec.port}:{CONTAINER_PORT}"],
        # Shared memory between vLLM's processes: Docker's 64 MiB /dev/shm is too small.
        "ipc": "host",
        "environment": environment,
        "volumes": volumes,
    }
    if spec.engine != "cpu":
        service["deploy"] = {
            "resources": {
                "reservations": {
                    "devices": [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
                }
            }
        }
    else:
        # vLLM binds its OpenMP threads and memory to cores and NUMA nodes.
        service["cap_add"] = ["SYS_NICE"]
    service |= {
        # A crash must stay visible for diagnosis, not loop.
        "restart": "no",
        # vLLM drains in-flight requests on SIGTERM for --shutdown-timeout seconds; SIGKILL
        # comes only after that.
        "stop_grace_period": f"{STOP_GRACE_PERIOD_S}s",
        "healthcheck": {
            "test": [
                "CMD",
                "python3",
                "-c",
                "import urllib.request; "
                f"urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}/health', timeout=5)",
            ],
            "interval": "30s",
            "timeout": "10s",
            "retries": 3,
            "start_period": HEALTH_START_PERIOD,
        },
        "labels": {
            LABEL_AGENT: agent.name,
            LABEL_SERVED: literal(agent.served_name),
            LABEL_PORT: str(spec.port),
            LABEL_SPEC_HASH: agent.spec_hash(),
        },
    }
    return {
        "name": f"{DEFAULT_INSTANCE}-{agent.name}",
        "services": {SERVICE: service},
        "volumes": {VLLM_CACHE_VOLUME: {"name": VLLM_CACHE_VOLUME}},
    }


# YAML 1.2 plain scalars that are not strings but that PyYAML (a YAML 1.1 writer) leaves unquoted.
_YAML12_INF_NAN = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")


def _reads_as_number(text: str) -> bool:
    """Would Compose's YAML reader (YAML 1.2, Go) take this plain scalar for a number?

    PyYAML quotes what YAML 1.1 reads as a number, but not `1116667349e3` or `0o17`, which
    Compose reads as 1.116667349e+12 and 15: a spec hash or an env value would change on the way.
    Errs towards quoting: a needless quote costs nothing.
    """
    plain = text.replace("_", "")
    for parse in (lambda s: int(s, 0), lambda s: int(s, 10), float):
        try:
            parse(plain)
        except ValueError:
            continue
        return True
    return _YAML12_INF_NAN.fullmatch(text) is not None


class _ComposeDumper(yaml.SafeDumper):
    def represent_str(self, data: str) -> yaml.ScalarNode:
        if _reads_as_number(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return super().represent_str(data)


_ComposeDumper.add_representer(str, _ComposeDumper.represent_str)


def render_compose_text(agent: Agent, machine: str | None = None) -> str:
    header = (
        f"# Generated by agent-manager from agents/{agent.name}.yaml (vLLM {VLLM_VERSION}).\n"
        f"# Do not edit: `agent-manager compose {agent.name}` rewrites this file.\n"
        f"# To change what the spec does not cover, create\n"
        f"# compose/docker-compose-{agent.name}.override.yml: every agent-manager\n"
        f"# command applies it on top (docker compose -f this -f override) and\n"
        f"# never writes it.\n"
        f"# spec-hash: {agent.spec_hash()}\n"
    )
    body = yaml.dump(
        render_compose(agent, machine),
        Dumper=_ComposeDumper,
        sort_keys=False,
        default_flow_style=False,
        width=4096,
    )
    return header + body
