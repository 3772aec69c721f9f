"""The `env` of a spec: names vLLM reads, secrets passed by reference, and the flags each spec
field owns (so neither env nor extra_args can fight a field)."""

from __future__ import annotations

import re

from agent_manager.spec.validate import secret_shape
from agent_manager.spec.vllm_args import GENERATION_KEYS, VLLM_VERSION, flag_table

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A reference Compose resolves from the caller's environment: `${NAME}`, `${NAME:-x}`, `${NAME:?x}`.
REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")

SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY")

# VLLM_* variables vLLM 0.33 reads that make sense for one server in a container.
KNOWN_VLLM_ENV = frozenset(
    "VLLM_SERVER_DEV_MODE VLLM_CACHE_ROOT VLLM_CONFIG_ROOT VLLM_ALLOW_LONG_MAX_MODEL_LEN "
    "VLLM_ENGINE_READY_TIMEOUT_S VLLM_KEEP_ALIVE_ON_ENGINE_DEATH VLLM_HTTP_TIMEOUT_KEEP_ALIVE "
    "VLLM_LOGGING_LEVEL VLLM_LOGGING_PREFIX VLLM_LOGGING_STREAM VLLM_LOGGING_COLOR "
    "VLLM_CONFIGURE_LOGGING VLLM_LOGGING_CONFIG_PATH VLLM_DISABLE_LOG_LOGO "
    "VLLM_DISABLE_COMPILE_CACHE VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS "
    "VLLM_ENABLE_STARTUP_PLAN VLLM_NO_USAGE_STATS VLLM_DO_NOT_TRACK VLLM_USE_MODELSCOPE "
    "VLLM_ENABLE_CUDA_COMPATIBILITY VLLM_API_KEY "
    # Keeps /v1/responses results, so that GET /v1/responses/{id} and previous_response_id
    # work (off by default: the store grows until the agent stops).
    "VLLM_ENABLE_RESPONSES_API_STORE "
    # The CPU engine's thread binding (vllm/envs.py; VLLM_CPU_KVCACHE_SPACE is cpu_kv_cache_gib).
    "VLLM_CPU_OMP_THREADS_BIND VLLM_CPU_NUM_OF_RESERVED_CPU".split()
)

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
    "shutdown_timeout": "agent-manager (it drains before the compose stop_grace_period)",
    "enable_auto_tool_choice": "tool_parser",
    "tool_call_parser": "tool_parser",
    "reasoning_parser": "reasoning_parser",
    "runner": "task",
}


def check_env_entry(key: str, value: str) -> None:
    if not ENV_NAME.match(key):
        raise ValueError(f"'{key}' is not a valid environment variable name")
    if key in SECRET_ENV and not REFERENCE.match(value):
        where = "api_key_env: <VARIABLE NAME>" if key == "VLLM_API_KEY" else f"'${{{key}}}'"
        raise ValueError(
            f"{key} is a secret: never write it in a file; use {where} so it is passed by reference"
        )
    kind = secret_shape(value)
    if kind is not None:
        raise ValueError(
            f"the value of {key} looks like {kind}: never write a secret in a spec; export it "
            f"and write '${{VARIABLE}}' so it is passed by reference"
        )
    if key == "VLLM_CPU_KVCACHE_SPACE":
        raise ValueError("set the field 'cpu_kv_cache_gib' instead (GiB of RAM for the KV cache)")
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
