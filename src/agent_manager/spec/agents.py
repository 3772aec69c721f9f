"""Agent specs: `agents/<name>.yaml` → a validated `AgentSpec`, or a message naming file,
line and field with what is allowed."""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent_manager.errors import SpecError
from agent_manager.spec.settings import SETTINGS_FILE, load_settings
from agent_manager.spec.vllm_args import (
    GENERATION_KEYS,
    GGUF_QUANT_NAMES,
    KV_CACHE_DTYPES,
    QUANTIZATION_METHODS,
    VLLM_VERSION,
    ArgvProblem,
    check_flags,
    flag_table,
)
from agent_manager.spec.workspace import Workspace

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVED = re.compile(r"^[\w./:-]{1,128}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")

SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY")

# VLLM_* variables vLLM 0.33 reads that make sense for one server in a container.
KNOWN_VLLM_ENV = frozenset(
    "VLLM_SERVER_DEV_MODE VLLM_CACHE_ROOT VLLM_CONFIG_ROOT VLLM_ALLOW_LONG_MAX_MODEL_LEN "
    "VLLM_ENGINE_READY_TIMEOUT_S VLLM_KEEP_ALIVE_ON_ENGINE_DEATH VLLM_HTTP_TIMEOUT_KEEP_ALIVE "
    "VLLM_LOGGING_LEVEL VLLM_LOGGING_PREFIX VLLM_LOGGING_STREAM VLLM_LOGGING_COLOR "
    "VLLM_CONFIGURE_LOGGING VLLM_LOGGING_CONFIG_PATH VLLM_DISABLE_LOG_LOGO "
    "VLLM_DISABLE_COMPILE_CACHE VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS "
    "VLLM_ENABLE_STARTUP_PLAN VLLM_NO_USAGE_STATS VLLM_DO_NOT_TRACK VLLM_USE_MODELSCOPE "
    "VLLM_ENABLE_CUDA_COMPATIBILITY VLLM_API_KEY".split()
)

# Fields under vLLM's own names, and settings vLLM removed: what to write instead.
RENAMED_FIELDS = {
    "max_model_len": "max_context",
    "gpu_memory_utilization": "gpu_memory_fraction",
    "served_model_name": "served_name",
    "enable_prefix_caching": "prefix_caching",
    "tensor_parallel": "tensor_parallel_size",
    "speculative_config": "speculative",
    "api_key": "api_key_env",
    "environment": "env",
    "image": "image_tag",
}
REMOVED_SETTINGS = {
    "swap_space": (
        "vLLM removed its swap-space flag in 0.18. For CPU KV-cache offload put "
        "'--kv-offloading-size', '<GiB>' in extra_args; to offload weights use "
        "'--cpu-offload-gb', '<GiB>'."
    ),
    "gguf": "vLLM 0.33 cannot serve GGUF; use an AWQ/GPTQ/FP8 checkpoint.",
}

# Flags a spec field owns: passing them in extra_args too would fight the field.
OWNED_FLAGS = {
    "model": "model",
    "served_model_name": "served_name",
    "port": "port",
    "host": "bind",
    "gpu_memory_utilization": "gpu_memory_fraction",
    "max_model_len": "max_context",
    "kv_cache_dtype": "kv_cache_dtype",
    "max_num_seqs": "max_num_seqs",
    "enforce_eager": "enforce_eager",
    "tensor_parallel_size": "tensor_parallel_size",
    "quantization": "quantization",
    "dtype": "dtype",
    "enable_prefix_caching": "prefix_caching",
    "override_generation_config": "temperature / top_p",
    "speculative_config": "speculative",
    "revision": "revision",
    "trust_remote_code": "trust_remote_code",
    "api_key": "api_key_env (the key itself must never be written in a file)",
    "hf_token": "the HF_TOKEN environment variable (passed by reference)",
    "enable_sleep_mode": "switch (switch: sleep)",
}

# What `switch: sleep` sets in the container; the spec may not set it too.
DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"
SLEEP_FIELDS = ("switch", "sleep_level")

GGUF_HINT = "llama.cpp quant; vLLM 0.33 cannot serve GGUF — use an AWQ/GPTQ/FP8 checkpoint"


def _is_gguf_name(value: str) -> bool:
    return value.lower() in GGUF_QUANT_NAMES


class AgentSpec(BaseModel):
    """One agent: a model and how vLLM serves it. Field docs are repeated in agents/*.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Hugging Face repo id, e.g. Qwen/Qwen2.5-7B-Instruct-AWQ")
    revision: str | None = Field(None, description="branch, tag or commit of the repo")
    served_name: str | None = Field(None, description="name clients ask for (default: agent)")
    port: int = Field(description="host port the OpenAI API is published on")
    bind: str = Field("127.0.0.1", description="host address to publish on")
    max_context: int | Literal["auto"] | None = Field(None, description="--max-model-len")
    gpu_memory_fraction: float = Field(0.90, description="--gpu-memory-utilization")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    prefix_caching: bool | None = None
    kv_cache_dtype: str = "auto"
    max_num_seqs: int | None = Field(None, ge=1)
    enforce_eager: bool = False
    tensor_parallel_size: int = Field(1, ge=1)
    quantization: str | None = None
    dtype: str = "auto"
    trust_remote_code: bool = False
    speculative: dict[str, Any] | None = None
    image_tag: str | None = None
    api_key_env: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    extra_args: list[str] = Field(default_factory=list)
    # How another agent takes the GPU: stop this one (cold) or put it to sleep (vLLM sleep
    # mode: level 1 keeps the weights in host RAM, level 2 reloads them from disk on wake).
    switch: Literal["cold", "sleep"] = "cold"
    sleep_level: Literal[1, 2] = 1

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value.lower().endswith(".gguf") or ":" in value or "gguf" in value.lower():
            raise ValueError(f"'{value}' is a GGUF model; {GGUF_HINT}")
        if not _REPO_ID.match(value):
            raise ValueError(f"'{value}' is not a Hugging Face repo id like 'Qwen/Qwen2.5-7B'")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"{value} is outside 1-65535")
        return value

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an IP address (e.g. 127.0.0.1)") from None
        return value

    @field_validator("gpu_memory_fraction")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"{value} is outside (0, 1]; it is a fraction of total GPU memory")
        return value

    @field_validator("max_context")
    @classmethod
    def _context(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be a positive number of tokens, or 'auto'")
        return value

    @field_validator("quantization")
    @classmethod
    def _quantization(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if _is_gguf_name(value):
            raise ValueError(f"'{value}' is a {GGUF_HINT}")
        if value not in QUANTIZATION_METHODS:
            allowed = ", ".join(sorted(QUANTIZATION_METHODS))
            raise ValueError(f"'{value}' is not a vLLM {VLLM_VERSION} method; allowed: {allowed}")
        return value

    @field_validator("kv_cache_dtype")
    @classmethod
    def _kv_dtype(cls, value: str) -> str:
        if _is_gguf_name(value):
            raise ValueError(f"'{value}' is a {GGUF_HINT}")
        if value not in KV_CACHE_DTYPES and not value.startswith("turboquant_"):
            allowed = ", ".join(sorted(KV_CACHE_DTYPES))
            raise ValueError(f"'{value}' is not allowed; use one of {allowed}")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        flag = flag_table().lookup("--dtype")
        choices = flag.choices if flag and flag.choices else ()
        if _is_gguf_name(value):
            raise ValueError(f"'{value}' is a {GGUF_HINT}")
        if value not in choices:
            raise ValueError(f"'{value}' is not allowed; use one of {', '.join(choices)}")
        return value

    @field_validator("served_name")
    @classmethod
    def _served(cls, value: str | None) -> str | None:
        if value is not None and not _SERVED.match(value):
            raise ValueError("use letters, digits and . _ - / : only (no spaces)")
        return value

    @field_validator("image_tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _TAG.match(value):
            raise ValueError(f"'{value}' is not a Docker image tag (e.g. v{VLLM_VERSION})")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "give the NAME of an environment variable that holds the key (e.g. PO_API_KEY), "
                "never the key itself"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            _check_env_entry(key, val)
        return value

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, value: list[str]) -> list[str]:
        if any("swap-space" in arg or "swap_space" in arg for arg in value):
            raise ValueError(REMOVED_SETTINGS["swap_space"])
        try:
            found = check_flags(value)
        except ArgvProblem as problem:
            raise ValueError(f"{problem}; see `vllm serve --help` for {VLLM_VERSION}") from None
        for written, flag in found:
            if flag.dest in OWNED_FLAGS:
                raise ValueError(f"{written} is set by the field '{OWNED_FLAGS[flag.dest]}'")
        return value

    @model_validator(mode="after")
    def _sampling(self) -> AgentSpec:
        if self.tensor_parallel_size > 1:
            # One GPU is the product's promise; the compose file reserves exactly one.
            raise ValueError(
                "tensor_parallel_size above 1 needs several GPUs; agent-manager reserves one"
            )
        return self

    @model_validator(mode="after")
    def _dev_mode_env(self) -> AgentSpec:
        if self.switch == "sleep" and DEV_MODE_ENV in self.env:
            raise ValueError(f"env {DEV_MODE_ENV} is set by 'switch: sleep'; remove it from env")
        return self

    def generation_overrides(self) -> dict[str, float]:
        return {k: v for k in ("temperature", "top_p") if (v := getattr(self, k)) is not None}


def _check_env_entry(key: str, value: str) -> None:
    if not _ENV_NAME.match(key):
        raise ValueError(f"'{key}' is not a valid environment variable name")
    if key in SECRET_ENV and not _REFERENCE.match(value):
        where = "api_key_env: <VARIABLE NAME>" if key == "VLLM_API_KEY" else f"'${{{key}}}'"
        raise ValueError(
            f"{key} is a secret: never write it in a file; use {where} so it is passed by reference"
        )
    if not key.startswith("VLLM_") or key in KNOWN_VLLM_ENV:
        return
    suffix = key[len("VLLM_") :].lower()
    if suffix in GENERATION_KEYS:
        raise ValueError(f"vLLM reads no {key}; set the field '{suffix}' (default sampling)")
    flag = flag_table().lookup("--" + suffix.replace("_", "-"))
    if flag is not None:
        field = OWNED_FLAGS.get(flag.dest)
        fix = f"set the field '{field}'" if field else f"put '{flag.names[0]}' in extra_args"
        raise ValueError(f"vLLM {VLLM_VERSION} is configured by flags, not {key}; {fix}")
    if key in ("VLLM_PORT", "VLLM_HOST_IP"):
        raise ValueError(f"{key} is for distributed setups, not the HTTP port; set 'port'")
    raise ValueError(f"vLLM {VLLM_VERSION} reads no {key} (it would only log a warning)")


@dataclass(frozen=True)
class Agent:
    """A spec together with the name and file it came from."""

    name: str
    path: Path
    spec: AgentSpec

    @property
    def served_name(self) -> str:
        return self.spec.served_name or self.name

    def spec_hash(self) -> str:
        canonical = json.dumps(
            {"agent": self.name, "spec": self.spec.model_dump(mode="json")}, sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def parse_spec(name: str, path: Path, text: str, defaults: dict[str, Any] | None = None) -> Agent:
    """Validate one spec's text. Pure: the path only labels messages.

    `defaults` (the workspace's `agent-manager.yaml`) fill the fields the spec leaves out.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(
            f"{where}: this is not valid YAML ({problem}).",
            hint="Check indentation and the 'key: value' form on that line.",
        ) from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: expected 'field: value' lines, found {type(data).__name__}.",
            hint="Start from one of the default specs; `agent-manager list` shows where they are.",
        )
    lines = _key_lines(text)
    for key in data:
        if key in REMOVED_SETTINGS:
            raise SpecError(f"{path}:{lines.get(key, '?')}: '{key}': {REMOVED_SETTINGS[key]}")
    inherited = {k: v for k, v in (defaults or {}).items() if k not in data}
    try:
        spec = AgentSpec.model_validate({**inherited, **data})
    except ValidationError as exc:
        raise _spec_error(path, lines, exc) from None
    _check_sleep_bind(name, path, lines, spec, from_defaults="switch" in inherited)
    return Agent(name=name, path=path, spec=spec)


def _check_sleep_bind(
    name: str, path: Path, lines: dict[Any, int], spec: AgentSpec, from_defaults: bool
) -> None:
    """Sleep mode needs vLLM's dev mode, whose endpoints no API key guards: loopback only."""
    dev_mode = spec.switch == "sleep" or spec.env.get(DEV_MODE_ENV, "0") not in ("", "0")
    if not dev_mode or ipaddress.ip_address(spec.bind).is_loopback:
        return
    where = f"{path}:{lines['bind']}" if "bind" in lines else str(path)
    why = (
        f"'switch: sleep' (from the workspace defaults in {SETTINGS_FILE})"
        if from_defaults
        else "'switch: sleep'"
        if spec.switch == "sleep"
        else f"env {DEV_MODE_ENV}"
    )
    raise SpecError(
        f"{where}: {name} binds {spec.bind}, but {why} runs vLLM in dev mode, which serves "
        "/sleep, /wake_up, /collective_rpc and /reset_prefix_cache without authentication "
        "(api_key_env does not guard them): anyone who reaches the port could stop the model "
        "or run methods in its workers.",
        hint=f"Set 'bind: 127.0.0.1' in {path} (reach it from elsewhere through "
        "`agent-manager serve` or an SSH tunnel), or set 'switch: cold' for this agent.",
    )


def _key_lines(text: str) -> dict[Any, int]:
    """Top-level key → 1-based line number, for messages."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in node.value}


def _spec_error(path: Path, lines: dict[Any, int], exc: ValidationError) -> SpecError:
    error = exc.errors()[0]
    loc = error["loc"]
    field = str(loc[0]) if loc else ""
    where = f"{path}:{lines[field]}" if field in lines else str(path)
    if error["type"] == "extra_forbidden":
        suggestion = RENAMED_FIELDS.get(field) or next(
            iter(difflib.get_close_matches(field, list(AgentSpec.model_fields), n=1)), None
        )
        hint = f"Did you mean '{suggestion}'?" if suggestion else None
        return SpecError(
            f"{where}: unknown field '{field}'.",
            hint=hint or f"Allowed fields: {', '.join(AgentSpec.model_fields)}.",
        )
    if error["type"] == "missing":
        return SpecError(f"{path}: required field '{field}' is missing.")
    message = error["msg"].removeprefix("Value error, ").rstrip(".")
    dotted = ".".join(str(part) for part in loc)
    if error["type"] in (
        "int_type",
        "int_parsing",
        "float_parsing",
        "bool_parsing",
        "string_type",
        "dict_type",
        "list_type",
        "float_type",
        "bool_type",
        "literal_error",
    ):
        message = f"{message} (got {error.get('input')!r})"
    return SpecError(f"{where}: '{dotted}': {message}.")


def load_agent(ws: Workspace, name: str) -> Agent:
    path = ws.spec_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{display_path(path)} does not exist.") from None
    defaults = load_settings(ws).defaults.model_dump(exclude_none=True)
    return parse_spec(name, display_path(path), text, defaults)


def display_path(path: Path) -> Path:
    """The path as a user in the current directory would type it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def load_agents(ws: Workspace, names: list[str] | None = None) -> list[Agent]:
    """Load the named agents (all by default), and check what no single file can: ports."""
    agents = [load_agent(ws, name) for name in ws.resolve_agents(names)]
    if names is None:
        check_ports(agents)
        return agents
    # Named agents are checked against every other spec that loads; a broken spec elsewhere
    # is reported when it is used, not here.
    others = []
    for other in ws.agent_names():
        if other in {a.name for a in agents}:
            continue
        try:
            others.append(load_agent(ws, other))
        except SpecError:
            continue
    check_ports(agents + others)
    return agents


def check_ports(agents: list[Agent]) -> None:
    by_port: dict[int, Agent] = {}
    for agent in agents:
        other = by_port.get(agent.spec.port)
        if other is not None and _binds_overlap(other.spec.bind, agent.spec.bind):
            raise SpecError(
                f"{agent.path}: 'port': {agent.spec.port} is also used by {other.name} "
                f"({other.path}).",
                hint="Give each agent its own port (defaults: architect 8000, developer 8001, "
                "po 8002).",
            )
        by_port[agent.spec.port] = agent


def _binds_overlap(a: str, b: str) -> bool:
    wildcard = {"0.0.0.0", "::"}
    return a == b or a in wildcard or b in wildcard
