"""Secrets by reference: which Kubernetes Secret holds the HF token and an agent's API key, and
the `kubectl create secret` line that fills it from the user's shell. No value is ever read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_manager.errors import SpecError
from agent_manager.spec.agents import Agent

HF_TOKEN_KEY = "HF_TOKEN"
API_KEY_KEY = "VLLM_API_KEY"
HF_TOKEN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# `${NAME}`, `${NAME:-default}`, `${NAME:?message}`: Compose reads NAME from the caller's shell.
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class SecretRef:
    """A Secret named `name` holding one key, `key`, filled from the shell variable `shell_var`.

    The key is the environment variable vLLM reads, so `envFrom` can load the whole Secret.
    """

    name: str
    key: str
    shell_var: str

    def create_command(self, namespace: str | None = None) -> str:
        where = f" -n {namespace}" if namespace else ""
        return (
            f"kubectl create secret generic {self.name}{where} "
            f'--from-literal={self.key}="${self.shell_var}"'
        )


def referenced_var(value: str) -> str | None:
    """The shell variable a Compose-style `${NAME...}` value reads, if it is one."""
    match = _REFERENCE.match(value)
    return match.group(1) if match else None


def secret_for(var: str, key: str) -> SecretRef:
    """The Secret named after the shell variable: HF_TOKEN → hf-token, PO_API_KEY → po-api-key."""
    name = var.lower().replace("_", "-").strip("-")
    if not _DNS_LABEL.match(name) or len(name) > 63:  # pragma: no cover - env names map cleanly
        name = key.lower().replace("_", "-")
    return SecretRef(name=name, key=key, shell_var=var)


def hf_token_secret(agent: Agent) -> SecretRef:
    """HF_TOKEN from the shell by default; from another variable when the spec's env says so
    (e.g. `HF_TOKEN: ${ARCHITECT_HF_TOKEN}`)."""
    for key in HF_TOKEN_ENV:
        var = referenced_var(agent.spec.env.get(key, ""))
        if var:
            return secret_for(var, HF_TOKEN_KEY)
    return secret_for("HF_TOKEN", HF_TOKEN_KEY)


def api_key_secret(agent: Agent) -> SecretRef | None:
    """The agent's API key Secret, if clients must send a key. As in Compose, an explicit
    `env: {VLLM_API_KEY: ${VAR}}` wins over `api_key_env`."""
    explicit = agent.spec.env.get(API_KEY_KEY)
    if explicit is not None:
        var = referenced_var(explicit)
        if var is None:  # pragma: no cover - the spec validator only allows references
            raise SpecError(f"{agent.path}: 'env.{API_KEY_KEY}': must be a ${{VAR}} reference.")
        return secret_for(var, API_KEY_KEY)
    if agent.spec.api_key_env:
        return secret_for(agent.spec.api_key_env, API_KEY_KEY)
    return None


def is_secret_env(key: str) -> bool:
    return key in HF_TOKEN_ENV or key == API_KEY_KEY
