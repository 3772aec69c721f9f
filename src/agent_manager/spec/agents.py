"""Agent specs: `agents/<name>.yaml` → a validated `AgentSpec`, or a message naming file,
line and field with what is allowed."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent_manager.errors import SpecError
from agent_manager.spec import serving
from agent_manager.spec.cpu_block import CpuChoice
from agent_manager.spec.env_check import ENV_NAME, OWNED_FLAGS, check_env_entry
from agent_manager.spec.messages import REMOVED_SETTINGS, spec_error
from agent_manager.spec.sleep_rules import (
    DEV_MODE_ENV,
    check_sleep_bind,
    cpu_sleep_notice,
    cpu_sleep_notice_for,
)
from agent_manager.spec.validate import (
    GGUF_HINT,
    IMAGE_TAG_NAME,
    LOCAL_MODEL,
    MAX_CONTEXT_TOKENS,
    MAX_NUM_SEQS,
    REPO_ID,
    SERVED_NAME,
    check_speculative,
    refuse_secret_values,
    whole_number,
)
from agent_manager.spec.vllm_args import (
    GGUF_QUANT_NAMES,
    KV_CACHE_DTYPES,
    QUANTIZATION_METHODS,
    VLLM_VERSION,
    ArgvProblem,
    check_flags,
    flag_table,
)
from agent_manager.spec.yaml_load import load_spec_mapping

# vLLM's CPU engine: the KV cache takes this many GiB of RAM unless the spec says otherwise
# (VLLM_CPU_KVCACHE_SPACE; vLLM's own docs suggest 4 when it is unset).
CPU_KV_CACHE_GIB = 4

Engine = Literal["cuda", "cpu"]
EngineChoice = Literal["auto", "cuda", "cpu"]


class AgentSpec(BaseModel):
    """One agent: a model and how vLLM serves it. Field docs are repeated in agents/*.yaml."""

    # strict: YAML already gives ints, floats and bools; `port: true` or `max_context: "1e23"`
    # must not be coerced into numbers. No NaN or infinity anywhere.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    model: str = Field(
        description="Hugging Face repo id (e.g. Qwen/Qwen2.5-7B-Instruct-AWQ) or the absolute "
        "path of a local model folder, mounted read-only and served under the agent's name"
    )
    engine: EngineChoice = Field("auto", description="vLLM image: NVIDIA GPU, CPU, or auto")
    cpu: CpuChoice | None = Field(None, description="model and context on the CPU engine")
    revision: str | None = Field(None, description="branch, tag or commit of the repo")
    served_name: str | None = Field(None, description="name clients ask for (default: agent)")
    port: int = Field(description="host port the OpenAI API is published on")
    bind: str = Field("127.0.0.1", description="host address to publish on")
    max_context: int | Literal["auto"] | None = Field(None, description="--max-model-len")
    gpu_memory_fraction: float = Field(0.90, description="--gpu-memory-utilization")
    cpu_kv_cache_gib: int = Field(
        CPU_KV_CACHE_GIB, ge=1, description="engine cpu: VLLM_CPU_KVCACHE_SPACE, GiB of RAM"
    )
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    prefix_caching: bool | None = None
    kv_cache_dtype: str = "auto"
    max_num_seqs: int | None = None
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
    # What clients reach through `serve` (spec/serving.py has the why of each).
    tool_parser: serving.ToolParser = Field(None, description="--tool-call-parser (none: off)")
    reasoning_parser: serving.ReasoningParser = Field(None, description="--reasoning-parser")
    task: serving.Task = Field("generate", description="generate, pooling or transcription")
    aliases: serving.Aliases = Field(default_factory=list, description="more model names")
    idle_minutes: float = Field(serving.DEFAULT_IDLE_MINUTES, ge=0, description="0 = never")

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value.lower().endswith(".gguf") or ":" in value or "gguf" in value.lower():
            raise ValueError(f"'{value}' is a GGUF model; {GGUF_HINT}")
        if value.startswith("/"):
            if not LOCAL_MODEL.match(value) or "/../" in value + "/":
                raise ValueError(
                    f"'{value}': a local model folder must be a plain absolute path "
                    "(letters, digits and . _ - + @ only, no '..')"
                )
            return value
        if value.startswith(("~", ".")):
            raise ValueError(
                f"'{value}': give a local model folder as an absolute path (e.g. /srv/models/x)"
            )
        if not REPO_ID.match(value):
            raise ValueError(
                f"'{value}' is not a Hugging Face repo id like 'Qwen/Qwen2.5-7B' "
                "nor an absolute path to a model folder"
            )
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

    @field_validator("max_context", mode="before")
    @classmethod
    def _context(cls, value: Any) -> Any:
        if value is None or value == "auto":
            return value
        try:
            return whole_number(value, 1, MAX_CONTEXT_TOKENS, "tokens")
        except ValueError as error:
            raise ValueError(f"{error}, or 'auto'") from None

    @field_validator("max_num_seqs", mode="before")
    @classmethod
    def _num_seqs(cls, value: Any) -> Any:
        return None if value is None else whole_number(value, 1, MAX_NUM_SEQS, "sequences")

    @field_validator("tensor_parallel_size", mode="before")
    @classmethod
    def _tensor_parallel(cls, value: Any) -> Any:
        whole_number(value, 1, 64, "GPUs")
        if value > 1:
            # One GPU is the product's promise; the compose file reserves exactly one.
            raise ValueError(
                "tensor_parallel_size above 1 needs several GPUs; agent-manager reserves one"
            )
        return value

    @field_validator("revision", "served_name", "model")
    @classmethod
    def _no_secret(cls, value: str | None) -> str | None:
        if value is not None:
            refuse_secret_values(value)
        return value

    @field_validator("speculative")
    @classmethod
    def _speculative(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_speculative(value)
        return value

    @field_validator("quantization", "kv_cache_dtype", "dtype")
    @classmethod
    def _not_gguf(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in GGUF_QUANT_NAMES:
            raise ValueError(f"'{value}' is a {GGUF_HINT}")
        return value

    @field_validator("quantization")
    @classmethod
    def _quantization(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value not in QUANTIZATION_METHODS:
            allowed = ", ".join(sorted(QUANTIZATION_METHODS))
            raise ValueError(f"'{value}' is not a vLLM {VLLM_VERSION} method; allowed: {allowed}")
        return value

    @field_validator("kv_cache_dtype")
    @classmethod
    def _kv_dtype(cls, value: str) -> str:
        if value not in KV_CACHE_DTYPES and not value.startswith("turboquant_"):
            allowed = ", ".join(sorted(KV_CACHE_DTYPES))
            raise ValueError(f"'{value}' is not allowed; use one of {allowed}")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        flag = flag_table().lookup("--dtype")
        choices = flag.choices if flag and flag.choices else ()
        if value not in choices:
            raise ValueError(f"'{value}' is not allowed; use one of {', '.join(choices)}")
        return value

    @field_validator("served_name")
    @classmethod
    def _served(cls, value: str | None) -> str | None:
        if value is not None and not SERVED_NAME.match(value):
            raise ValueError("use letters, digits and . _ - / : only (no spaces)")
        return value

    @field_validator("image_tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not IMAGE_TAG_NAME.match(value):
            raise ValueError(f"'{value}' is not a Docker image tag (e.g. v{VLLM_VERSION})")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(
                "give the NAME of an environment variable that holds the key (e.g. PO_API_KEY), "
                "never the key itself"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            check_env_entry(key, val)
        return value

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, value: list[str]) -> list[str]:
        refuse_secret_values(value)
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

    @property
    def local_model(self) -> bool:
        """The model is a folder on this machine, not a Hugging Face repo."""
        return self.model.startswith("/")

    @model_validator(mode="after")
    def _dev_mode_env(self) -> AgentSpec:
        if self.switch == "sleep" and DEV_MODE_ENV in self.env:
            raise ValueError(f"env {DEV_MODE_ENV} is set by 'switch: sleep'; remove it from env")
        return self

    def generation_overrides(self) -> dict[str, float]:
        return {k: v for k in ("temperature", "top_p") if (v := getattr(self, k)) is not None}


@dataclass(frozen=True)
class Agent:
    """A spec together with the name and file it came from."""

    name: str
    path: Path
    spec: AgentSpec
    # One-line notices about how the spec was read (e.g. sleep turned off on the CPU engine);
    # the commands that run the agent show them.
    notices: tuple[str, ...] = ()
    engine_note: str | None = None  # why `engine: auto` chose the CPU, in one line

    @property
    def served_name(self) -> str:
        return self.spec.served_name or self.name

    @property
    def aliases(self) -> list[str]:
        return self.spec.aliases

    def with_engine(self, engine: Engine, why: str = "`--engine cpu` was asked for") -> Agent:
        """The same agent on another engine (`launch --engine`, `engine: auto`). On the CPU its
        `cpu:` block replaces model and context, and sleep mode, which does not run there,
        becomes a cold switch (said in a notice)."""
        update: dict[str, Any] = {"engine": engine}
        notices = self.notices
        if engine == "cpu" and self.spec.cpu is not None:
            update.update(self.spec.cpu.model_dump(exclude_none=True))
        if engine == "cpu" and self.spec.switch == "sleep":
            update["switch"] = "cold"
            notices += (cpu_sleep_notice(self.name, why),)
        return Agent(self.name, self.path, self.spec.model_copy(update=update), notices)

    def spec_hash(self) -> str:
        # Defaults left out: a new field with a default does not make running agents stale.
        # Fields only the router reads (aliases, idle) do not change what the container runs.
        spec = self.spec.model_dump(mode="json", exclude_defaults=True, exclude=serving.ROUTER_ONLY)
        # The CPU block shows in the model it put in place; cuda was the default before auto:
        # leaving both out keeps the hash of every agent that ran before they existed.
        spec.pop("cpu", None)
        if spec.get("engine") == "cuda":
            del spec["engine"]
        canonical = json.dumps({"agent": self.name, "spec": spec}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def parse_spec(name: str, path: Path, text: str, defaults: dict[str, Any] | None = None) -> Agent:
    """Validate one spec's text. Pure: the path only labels messages.

    `defaults` (the workspace's `agent-manager.yaml`) fill the fields the spec leaves out.
    """
    data, lines = load_spec_mapping(path, text)
    for key in data:
        if key in REMOVED_SETTINGS:
            raise SpecError(f"{path}:{lines.get(key, '?')}: '{key}': {REMOVED_SETTINGS[key]}")
    inherited = {k: v for k, v in (defaults or {}).items() if k not in data}
    try:
        spec = AgentSpec.model_validate({**inherited, **data})
    except ValidationError as exc:
        raise spec_error(path, lines, exc, list(AgentSpec.model_fields)) from None
    check_sleep_bind(name, path, lines, spec, from_defaults="switch" in inherited)
    notice = cpu_sleep_notice_for(name, path, lines, data, spec)
    if notice is not None:
        spec = spec.model_copy(update={"switch": "cold"})
    return Agent(name=name, path=path, spec=spec, notices=(notice,) if notice else ())
