#!/usr/bin/env python3
"""A stand-in for `vllm serve` 0.33.0 (the entrypoint of `vllm/vllm-openai:v0.33.0`).

Standard library only: in the stand-in image it runs on the host's Python through read-only
bind mounts, with no site-packages. It accepts exactly the argv vLLM 0.33.0 accepts (flag table
`serve-args-0.33.0.json`), logs lines shaped like vLLM's, listens on nothing while "loading",
then serves the OpenAI-compatible endpoints the project uses. Also runs directly on a host:

    python3 tests/standin/vllm_standin.py Qwen/Qwen2.5-7B-Instruct-AWQ --port 8123 \
        --served-model-name po

Environment knobs (all optional):
    STANDIN_FLAGS              path of the flag table (default: next to this file, then
                               /standin/serve-args-0.33.0.json)
    STANDIN_LOAD_SECONDS       how long "loading" takes, spread over the phases (default 2)
    STANDIN_FAIL               fail like vLLM: oom, kv, context, free-memory, gated, notfound,
                               crash, max-len
    STANDIN_TOKENS_PER_SECOND  generation speed (default 200)
    STANDIN_TTFT_SECONDS       delay before the first token (default 0.02)
    STANDIN_STATS_SECONDS      period of the "Engine 000: Avg prompt throughput" line (default 5)
    STANDIN_SLEEP_SECONDS, STANDIN_WAKE_SECONDS, STANDIN_WAKE_FAIL, STANDIN_SLEEP_RESIDUAL_GIB
                               sleep mode (--enable-sleep-mode + VLLM_SERVER_DEV_MODE=1);
                               see sleep_mode.py
    VLLM_API_KEY               as in vLLM: the API key when --api-key is absent
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from api_routes import ApiRoutes
from sleep_mode import GARBAGE, NO_SLEEP_ON_CPU, WAKE_FAILURES, SleepMode, cpu_platform

VERSION = "0.33.0"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_MAX_MODEL_LEN = 32768
PROG = "vllm serve"
USAGE = "usage: vllm serve [model_tag] [options]"
FLAG_TABLE_NAME = "serve-args-0.33.0.json"
QUANTIZATION_METHODS = (
    "awq auto_awq fp8 fbgemm_fp8 fp_quant modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed "
    "auto_gptq gptq gptq_marlin awq_marlin humming compressed-tensors experts_int8 quark "
    "moe_wna16 torchao inc mxfp4 gpt_oss_mxfp4 deepseek_v4_fp8 online fp8_per_tensor "
    "fp8_per_block fp8_per_channel int8_per_channel_weight_only nvfp4_per_token mxfp8"
).split()
FAILURES = ("oom", "kv", "context", "free-memory", "gated", "notfound", "crash", "max-len")
AUTH_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")
WORDS = (
    "the agent reads the plan and writes a short answer about models memory tokens cache "
    "context batches layers weights prompts streams servers ports queues graphs kernels"
).split()
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)


# --------------------------------------------------------------------------- logging


class Log:
    """vLLM's line format: `(Process pid=N) LEVEL MM-DD HH:MM:SS [file.py:line] message`.

    vLLM prefixes every line of a multi-line message (tracebacks included) with the header.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.api_pid = os.getpid()
        self.engine_pid = self.api_pid + 1  # the engine core is a child process in vLLM

    def _emit(self, process: str, pid: int, level: str, where: str, message: str) -> None:
        stamp = time.strftime("%m-%d %H:%M:%S")
        lines = message.split("\n")
        with self.lock:
            for line in lines:
                sys.stdout.write(f"({process} pid={pid}) {level} {stamp} [{where}] {line}\n")
            sys.stdout.flush()

    def api(self, message: str, where: str = "api_server.py:1", level: str = "INFO") -> None:
        self._emit("APIServer", self.api_pid, level, where, message)

    def engine(self, message: str, where: str = "core.py:1", level: str = "INFO") -> None:
        self._emit("EngineCore_DP0", self.engine_pid, level, where, message)

    def raw(self, message: str) -> None:
        """Lines printed outside vLLM's logger (uvicorn, Python's own traceback printing)."""
        with self.lock:
            for line in message.split("\n"):
                sys.stdout.write(f"(APIServer pid={self.api_pid}) {line}\n")
            sys.stdout.flush()


LOG = Log()


# --------------------------------------------------------------------------- argv


class ArgvError(Exception):
    pass


def flag_table_path() -> Path:
    configured = os.environ.get("STANDIN_FLAGS")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parent / FLAG_TABLE_NAME
    if beside.is_file():
        return beside
    repo_copy = Path(__file__).resolve().parents[2] / "src/agent_manager/data" / FLAG_TABLE_NAME
    if repo_copy.is_file():
        return repo_copy
    return Path("/standin") / FLAG_TABLE_NAME


def load_flags(path: Path) -> dict[str, dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    for entry in json.loads(path.read_text()):
        for name in entry.get("flags", ()):
            by_name[name] = entry
    return by_name


def _looks_like_flag(token: str) -> bool:
    # argparse treats '-1' as a value because no vLLM option looks like a negative number.
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def _resolve(name: str, flags: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """Find a flag as FlexibleArgumentParser does: '_' == '-', unique prefixes allowed."""
    if name in flags:
        return name, flags[name]
    if not name.startswith("--"):
        return None
    normal = "--" + name[2:].replace("_", "-")
    if normal in flags:
        return normal, flags[normal]
    matches = sorted(n for n in flags if n.startswith(normal) and n.startswith("--"))
    if len(matches) == 1:
        return matches[0], flags[matches[0]]
    if len(matches) > 1:
        raise ArgvError(f"ambiguous option: {name} could match {', '.join(matches)}")
    return None


def _convert(flag: str, entry: dict[str, Any], value: str) -> Any:
    kind = entry.get("type")
    if entry.get("choices") and value not in [str(c) for c in entry["choices"]]:
        allowed = ", ".join(repr(str(c)) for c in entry["choices"])
        raise ArgvError(f"argument {flag}: invalid choice: {value!r} (choose from {allowed})")
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise ArgvError(f"argument {flag}: invalid int value: {value!r}") from None
    if kind == "float":
        try:
            return float(value)
        except ValueError:
            raise ArgvError(f"argument {flag}: invalid float value: {value!r}") from None
    return value


def _flag_label(entry: dict[str, Any]) -> str:
    return "/".join(entry["flags"])


def _expand_optimization_level(argv: list[str]) -> list[str]:
    """vLLM rewrites `-O3` / `-O 3` to `--optimization-level 3` before argparse sees them."""
    out: list[str] = []
    for token in argv:
        if token.startswith("-O") and token != "-O" and token[2:3] not in (".", "="):
            out += ["--optimization-level", token[2:]]
        elif token == "-O":
            out.append("--optimization-level")
        else:
            out.append(token)
    return out


def parse_argv(argv: list[str], flags: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return {dest: value} for what argv sets (plus 'model_tag'), argparse's way."""
    argv = _expand_optimization_level(argv)
    parsed: dict[str, Any] = {}
    extras: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not _looks_like_flag(token):
            if "model_tag" not in parsed:
                parsed["model_tag"] = token
            else:
                extras.append(token)
            continue
        name, has_inline, inline = token.partition("=")
        found = _resolve(name, flags)
        if found is None and not name.startswith("--") and len(name) > 2:
            # `-q awq` style short options may carry their value attached: `-qawq`.
            short = _resolve(name[:2], flags)
            if short is not None and short[1].get("takes_value"):
                found, has_inline, inline = short, "=", name[2:]
        if found is None:
            extras.append(token)
            # argparse hands what follows an unknown option to the positionals.
            while i < len(argv) and not _looks_like_flag(argv[i]):
                if "model_tag" not in parsed:
                    parsed["model_tag"] = argv[i]
                else:
                    extras.append(argv[i])
                i += 1
            continue
        canonical, entry = found
        dest = entry["dest"]
        label = _flag_label(entry)
        if dest == "help":
            sys.stdout.write(f"{USAGE}\n\nStart the vLLM OpenAI Compatible API server.\n")
            raise SystemExit(0)
        if not entry.get("takes_value"):
            if has_inline:
                raise ArgvError(f"argument {label}: ignored explicit argument {inline!r}")
            long_names = [n for n in entry["flags"] if n.startswith("--")]
            parsed[dest] = not (canonical in long_names and canonical != long_names[0])
            continue
        nargs = entry.get("nargs")
        values: list[str] = []
        if has_inline:
            values.append(inline)
        elif nargs == "+":
            while i < len(argv) and not _looks_like_flag(argv[i]):
                values.append(argv[i])
                i += 1
            if not values:
                raise ArgvError(f"argument {label}: expected at least one argument")
        elif nargs == "?":
            if i < len(argv) and not _looks_like_flag(argv[i]):
                values.append(argv[i])
                i += 1
        else:
            if i >= len(argv) or _looks_like_flag(argv[i]):
                raise ArgvError(f"argument {label}: expected one argument")
            values.append(argv[i])
            i += 1
        converted = [_convert(label, entry, v) for v in values]
        if nargs == "+":
            parsed[dest] = converted
        elif nargs == "?":
            parsed[dest] = converted[0] if converted else True
        else:
            parsed[dest] = converted[0]
    if extras:
        raise ArgvError(f"unrecognized arguments: {' '.join(extras)}")
    return parsed


def argparse_exit(message: str) -> None:
    sys.stderr.write(f"{USAGE}\n{PROG}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(2)


# --------------------------------------------------------------------------- config


class Config:
    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.model: str = args.get("model_tag") or args.get("model") or DEFAULT_MODEL
        self.served_names: list[str] = args.get("served_model_name") or [self.model]
        self.port: int = args.get("port", 8000)
        self.host: str = args.get("host") or "0.0.0.0"
        keys = args.get("api_key")
        env_key = os.environ.get("VLLM_API_KEY")
        self.api_keys: list[str] = list(keys) if keys else ([env_key] if env_key else [])
        self.max_model_len = _max_model_len(args.get("max_model_len"))
        self.utilization: float = args.get("gpu_memory_utilization", 0.92)
        self.max_num_seqs: int = args.get("max_num_seqs") or 256
        self.enforce_eager: bool = bool(args.get("enforce_eager"))
        self.access_log = not args.get("disable_uvicorn_access_log", False)
        quiet = args.get("disable_access_log_for_endpoints") or ""
        self.quiet_paths = {p.strip() for p in quiet.split(",") if p.strip()}
        self.load_seconds = max(0.0, float(os.environ.get("STANDIN_LOAD_SECONDS", "2")))
        self.tokens_per_second = float(os.environ.get("STANDIN_TOKENS_PER_SECOND", "200"))
        self.ttft = max(0.0, float(os.environ.get("STANDIN_TTFT_SECONDS", "0.02")))
        self.stats_seconds = float(os.environ.get("STANDIN_STATS_SECONDS", "5"))
        self.fail = os.environ.get("STANDIN_FAIL", "").strip().lower()


def _max_model_len(value: Any) -> int:
    if value in (None, "auto", "-1"):
        return DEFAULT_MAX_MODEL_LEN
    text = str(value).strip()
    factor = 1
    if text[-1:] in "kK" and text[:-1]:
        factor, text = (1000 if text[-1] == "k" else 1024), text[:-1]
    elif text[-1:] in "mM" and text[:-1]:
        factor, text = (1000**2 if text[-1] == "m" else 1024**2), text[:-1]
    try:
        return int(float(text) * factor)
    except ValueError:
        return DEFAULT_MAX_MODEL_LEN


def non_default_args(args: dict[str, Any]) -> dict[str, Any]:
    shown = dict(args)
    for secret in ("api_key", "hf_token"):
        if secret in shown:
            shown[secret] = "[redacted]" if not isinstance(shown[secret], list) else ["[redacted]"]
    return shown


# --------------------------------------------------------------------------- failures


def _traceback(frames: list[tuple[str, int, str, str]], last: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for file, line, func, code in frames:
        lines.append(f'  File "{file}", line {line}, in {func}')
        lines.append(f"    {code}")
    lines.append(last)
    return "\n".join(lines)


SITE = "/usr/local/lib/python3.12/dist-packages"
API_FRAMES = [
    ("/usr/local/bin/vllm", 10, "<module>", "sys.exit(main())"),
    (f"{SITE}/vllm/entrypoints/cli/main.py", 73, "main", "args.dispatch_function(args)"),
    (f"{SITE}/vllm/entrypoints/cli/serve.py", 112, "cmd", "uvloop.run(run_server(args))"),
    (
        f"{SITE}/vllm/entrypoints/launchers/api_server/entry.py",
        204,
        "run_server",
        "await run_server_worker(listen_address, sock, args, **uvicorn_kwargs)",
    ),
]


def _api_failure(frames: list[tuple[str, int, str, str]], last: str) -> None:
    LOG.raw(_traceback(API_FRAMES + frames, last))


def _engine_failure(frames: list[tuple[str, int, str, str]], last: str) -> None:
    where = "core.py:1043"
    text = _traceback(
        [
            (
                f"{SITE}/vllm/v1/engine/core.py",
                1034,
                "run_engine_core",
                "engine_core = EngineCoreProc(*args, engine_index=dp_rank, **kwargs)",
            )
        ]
        + frames,
        last,
    )
    LOG.engine("EngineCore failed to start.\n" + text, where=where, level="ERROR")
    LOG.raw(
        _traceback(
            API_FRAMES
            + [
                (
                    f"{SITE}/vllm/v1/engine/utils.py",
                    1071,
                    "wait_for_engine_startup",
                    "raise RuntimeError(",
                )
            ],
            "RuntimeError: Engine core initialization failed. See root cause above. "
            "Failed core proc(s): {'EngineCore_DP0': 1}",
        )
    )


def fail(cfg: Config, kind: str) -> None:
    """Print what vLLM 0.33.0 prints for this failure (FACTS.md §5)."""
    model = cfg.model
    if kind == "gated":
        url = f"https://huggingface.co/{model}/resolve/main/config.json"
        _api_failure(
            [
                (
                    f"{SITE}/huggingface_hub/utils/_http.py",
                    657,
                    "hf_raise_for_status",
                    "raise _format(GatedRepoError, message, response) from e",
                )
            ],
            f"huggingface_hub.errors.GatedRepoError: 401 Client Error. "
            f"(Request ID: Root=1-6741a2b3-standin)\n\n"
            f"Cannot access gated repo for url {url}.\n"
            f"Access to model {model} is restricted. You must have access to it and be "
            f"authenticated to access it. Please log in.",
        )
    elif kind == "notfound":
        LOG.raw(
            f"huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. "
            f"(Request ID: Root=1-6741a2b3-standin)\n\n"
            f"Repository Not Found for url: https://huggingface.co/api/models/{model}/revision/main.\n"
            f"Please make sure you specified the correct `repo_id` and `repo_type`.\n"
            f"If you are trying to access a private or gated repo, make sure you are "
            f"authenticated. For more details, see https://huggingface.co/docs/huggingface_hub/authentication"
        )
        _api_failure(
            [
                (
                    f"{SITE}/vllm/transformers_utils/config.py",
                    612,
                    "get_config",
                    "raise ValueError(error_message) from e",
                )
            ],
            f"ValueError: Invalid repository ID or local directory specified: '{model}'.\n"
            "Please verify the following requirements:\n"
            "1. Provide a valid Hugging Face repository ID.\n"
            "2. Specify a local directory that contains a recognized configuration file.\n"
            "   - For Hugging Face models: ensure the presence of a 'config.json'.\n"
            "   - For Mistral models: ensure the presence of a 'params.json'.",
        )
    elif kind == "max-len":
        requested = cfg.args.get("max_model_len") or 65536
        _api_failure(
            [
                (
                    f"{SITE}/vllm/config/model.py",
                    2210,
                    "_get_and_verify_max_len",
                    "raise ValueError(msg)",
                )
            ],
            f"ValueError: User-specified max_model_len ({requested}) is greater than the "
            f"derived max_model_len (max_position_embeddings={DEFAULT_MAX_MODEL_LEN} or "
            f"model_max_length=None in model's config.json). To allow overriding this maximum, "
            f"set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN "
            f"must be used with extreme caution. If the model uses relative position encoding "
            f"(RoPE), positions exceeding derived_max_model_len lead to nan. If the model uses "
            f"absolute position encoding, positions exceeding derived_max_model_len will cause "
            f"a CUDA array out-of-bounds error.",
        )
    elif kind == "free-memory":
        wanted = round(15.6 * cfg.utilization, 2)
        _engine_failure(
            [(f"{SITE}/vllm/v1/worker/utils.py", 391, "request_memory", "raise ValueError(")],
            f"ValueError: Free memory on device cuda:0 (10.2/15.6 GiB) on startup is less than "
            f"desired GPU memory utilization ({cfg.utilization}, {wanted} GiB). Decrease GPU "
            f"memory utilization or reduce GPU memory used by other processes.",
        )
    elif kind == "oom":
        original = (
            "CUDA out of memory. Tried to allocate 136.00 MiB. GPU 0 has a total capacity of "
            "15.60 GiB of which 98.19 MiB is free. Including non-PyTorch memory, this process "
            "has 15.49 GiB memory in use. Of the allocated memory 15.01 GiB is allocated by "
            "PyTorch, and 181.42 MiB is reserved by PyTorch but unallocated."
        )
        LOG.engine(
            "Failed to load model - not enough GPU memory. Try lowering "
            "--gpu-memory-utilization to free memory for weights, increasing "
            "--tensor-parallel-size, or using --quantization. See "
            "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more tips. "
            f"(original error: {original})",
            where="gpu_model_runner.py:4512",
            level="ERROR",
        )
        _engine_failure(
            [(f"{SITE}/vllm/v1/worker/gpu_model_runner.py", 4520, "load_model", "raise e")],
            f"torch.OutOfMemoryError: {original}",
        )
    elif kind == "kv":
        _engine_failure(
            [
                (
                    f"{SITE}/vllm/v1/core/kv_cache_planning.py",
                    712,
                    "check_enough_kv_cache_memory",
                    "raise ValueError(",
                )
            ],
            "ValueError: No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine. See "
            "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.",
        )
    elif kind == "context":
        length = cfg.max_model_len
        needed = round(1.75 * length / DEFAULT_MAX_MODEL_LEN, 2)
        _engine_failure(
            [
                (
                    f"{SITE}/vllm/v1/core/kv_cache_planning.py",
                    735,
                    "check_enough_kv_cache_memory",
                    "raise ValueError(",
                )
            ],
            f"ValueError: To serve at least one request with the model's max seq len "
            f"({length}), ({needed} GiB KV cache is needed, which is larger than the available "
            f"KV cache memory (0.9 GiB). Based on the available memory, the estimated maximum "
            f"model length is {length // 2}. Try increasing `gpu_memory_utilization` when "
            f"initializing the engine. See "
            f"https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details. "
            f"or decreasing `max_model_len` when initializing the engine.",
        )
    else:  # crash
        _engine_failure(
            [
                (
                    f"{SITE}/vllm/v1/worker/gpu_worker.py",
                    356,
                    "compile_or_warm_up_model",
                    "self.model_runner.capture_model()",
                )
            ],
            "RuntimeError: CUDA error: an illegal memory access was encountered\n"
            "CUDA kernel errors might be asynchronously reported at some other API call, so the "
            "stacktrace below might be incorrect.",
        )


# --------------------------------------------------------------------------- startup


class Stop(Exception):
    """SIGTERM/SIGINT arrived while loading."""


STOP = threading.Event()


def _pause(seconds: float) -> None:
    if STOP.wait(seconds):
        raise Stop


def load(cfg: Config) -> None:
    """Print vLLM's startup sequence; raise SystemExit(1) where STANDIN_FAIL says so."""
    steps = 8
    step = cfg.load_seconds / steps
    LOG.api("Automatically detected platform cuda.", where="__init__.py:257")
    LOG.api(f"vLLM server version {VERSION}, serving model {cfg.model}", where="api_server.py:1923")
    LOG.api(f"non-default args: {non_default_args(cfg.args)}", where="utils.py:253")
    if "model" in cfg.args and "model_tag" not in cfg.args:
        LOG.api(
            "With `vllm serve`, you should provide the model as a positional argument or in a "
            "config file instead of via the `--model` option. The `--model` option will be "
            "removed in a future version.",
            where="argparse_utils.py:165",
            level="WARNING",
        )
    _pause(step)
    if cfg.fail in ("gated", "notfound", "max-len"):
        fail(cfg, cfg.fail)
        _exit_failed()
    quantization = cfg.args.get("quantization")
    if quantization and quantization not in QUANTIZATION_METHODS:
        _api_failure(
            [(f"{SITE}/vllm/config/model.py", 1012, "_verify_quantization", "raise ValueError(")],
            f"ValueError: Unknown quantization method: {quantization}. Must be one of "
            f"{QUANTIZATION_METHODS}.",
        )
        _exit_failed()
    LOG.api("Resolved architecture: Qwen2ForCausalLM", where="model.py:547")
    LOG.api(f"Using max model len {cfg.max_model_len}", where="model.py:1618")
    LOG.api(
        "Chunked prefill is enabled with max_num_batched_tokens=2048.", where="scheduler.py:230"
    )
    _pause(step)
    LOG.engine(
        f"Initializing a V1 LLM engine (v{VERSION}) with config: model='{cfg.model}', "
        f"max_seq_len={cfg.max_model_len}, served_model_name={cfg.served_names[0]}",
        where="core.py:94",
    )
    if cfg.fail == "free-memory":
        fail(cfg, cfg.fail)
        _exit_failed()
    _pause(step)
    LOG.engine(f"Starting to load model {cfg.model}...", where="gpu_model_runner.py:4300")
    _pause(step)
    if cfg.fail == "oom":
        fail(cfg, cfg.fail)
        _exit_failed()
    LOG.engine(f"Loading weights took {step * 2:.2f} seconds", where="default_loader.py:291")
    LOG.engine(
        f"Model loading took 5.42 GiB memory and {step * 2 + 0.1:.6f} seconds",
        where="gpu_model_runner.py:4402",
    )
    _pause(step)
    if not cfg.enforce_eager:
        LOG.engine("torch.compile took 0.00 s in total", where="monitor.py:34")
        LOG.engine("Estimated CUDA graph memory: 0.45 GiB total", where="gpu_worker.py:440")
    LOG.engine("Available KV cache memory: 6.12 GiB", where="gpu_worker.py:456")
    if cfg.fail in ("kv", "context", "crash"):
        _pause(step)
        fail(cfg, cfg.fail)
        _exit_failed()
    tokens = 114_592
    LOG.engine(
        f"GPU KV cache size: {tokens:,} tokens, Maximum concurrency for "
        f"{cfg.max_model_len:,} tokens per request: {tokens / cfg.max_model_len:.2f}x",
        where="kv_cache_utils.py:1310",
    )
    _pause(step)
    if not cfg.enforce_eager:
        LOG.engine(
            f"Graph capturing finished in {max(1, round(step))} secs, took 0.45 GiB",
            where="gpu_model_runner.py:4950",
        )
    LOG.engine(
        f"init engine (profile, create kv cache, warmup model) took {step * 3:.2f} s",
        where="core.py:250",
    )
    _pause(step)
    LOG.api("Supported tasks: ['generate']", where="api_server.py:1640")


def _exit_failed() -> None:
    time.sleep(0.1)
    raise SystemExit(1)


# --------------------------------------------------------------------------- serving


class Engine:
    """Counters and gauges behind /metrics, updated by every request served."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(cfg.max_num_seqs)
        self.running = 0
        self.waiting = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.interval_prompt = 0
        self.interval_generation = 0
        self.busy_since_stats = False

    def admit(self, prompt_tokens: int) -> None:
        """Queue (up to --max-num-seqs run at once), then prefill the prompt."""
        with self.lock:
            self.waiting += 1
            self.busy_since_stats = True
        self.slots.acquire()
        with self.lock:
            self.waiting -= 1
            self.running += 1
            self.prompt_tokens += prompt_tokens
            self.interval_prompt += prompt_tokens

    def first_token(self, seconds: float) -> None:
        with self.lock:
            self.ttft.observe(seconds)

    def generated(self) -> None:
        # Counted per token, as vLLM does per engine step, so /metrics moves during a stream.
        with self.lock:
            self.generation_tokens += 1
            self.interval_generation += 1

    def finish(self, reason: str, e2e: float) -> None:
        with self.lock:
            self.running -= 1
            self.success[reason] = self.success.get(reason, 0) + 1
            self.e2e.observe(e2e)
        self.slots.release()

    def kv_usage(self) -> float:
        return min(1.0, self.running * 0.02)

    def metrics(self) -> str:
        labels = f'engine="0",model_name="{self.cfg.served_names[0]}"'
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, str, Any]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for suffix, extra, value in samples:
                label_text = labels + ("," + extra if extra else "")
                out.append(f"{name}{suffix}{{{label_text}}} {float(value)}")

        with self.lock:
            metric(
                "vllm:num_requests_running",
                "gauge",
                "Number of requests in model execution batches.",
                [("", "", self.running)],
            )
            metric(
                "vllm:num_requests_waiting",
                "gauge",
                "Number of requests waiting to be processed.",
                [("", "", self.waiting)],
            )
            metric(
                "vllm:kv_cache_usage_perc",
                "gauge",
                "KV-cache usage. 1 means 100 percent usage.",
                [("", "", self.kv_usage())],
            )
            metric(
                "vllm:prompt_tokens",
                "counter",
                "Number of prefill tokens processed.",
                [("_total", "", self.prompt_tokens)],
            )
            metric(
                "vllm:generation_tokens",
                "counter",
                "Number of generation tokens processed.",
                [("_total", "", self.generation_tokens)],
            )
            metric(
                "vllm:request_success",
                "counter",
                "Count of successfully processed requests.",
                [
                    ("_total", f'finished_reason="{reason}"', count)
                    for reason, count in sorted(self.success.items())
                ],
            )
            metric(
                "vllm:time_to_first_token_seconds",
                "histogram",
                "Histogram of time to first token in seconds.",
                self.ttft.samples(),
            )
            metric(
                "vllm:e2e_request_latency_seconds",
                "histogram",
                "Histogram of e2e request latency in seconds.",
                self.e2e.samples(),
            )

        return "\n".join(out) + "\n"

    def stats_line(self) -> None:
        """vLLM logs throughput every few seconds while it has work (DEBUG when idle)."""
        period = self.cfg.stats_seconds
        while not STOP.wait(period):
            with self.lock:
                if not self.busy_since_stats and self.running == 0:
                    continue
                prompt, generation = self.interval_prompt, self.interval_generation
                self.interval_prompt = self.interval_generation = 0
                self.busy_since_stats = self.running > 0
                running, waiting = self.running, self.waiting
            LOG.api(
                f"Engine 000: Avg prompt throughput: {prompt / period:.1f} tokens/s, "
                f"Avg generation throughput: {generation / period:.1f} tokens/s, "
                f"Running: {running} reqs, Waiting: {waiting} reqs, "
                f"GPU KV cache usage: {self.kv_usage() * 100:.1f}%, "
                f"Prefix cache hit rate: 0.0%",
                where="loggers.py:236",
            )


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1

    def samples(self) -> list[tuple[str, str, Any]]:
        rows: list[tuple[str, str, Any]] = [
            ("_bucket", f'le="{bound}"', n)
            for bound, n in zip(self.buckets, self.counts, strict=True)
        ]
        rows.append(("_bucket", 'le="+Inf"', self.count))
        rows.append(("_count", "", self.count))
        rows.append(("_sum", "", self.total))
        return rows


def _words(seed_text: str, count: int) -> list[str]:
    seed = zlib.crc32(seed_text.encode())
    return [WORDS[(seed + i * 7) % len(WORDS)] for i in range(count)]


def _prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        parts = []
        for message in body["messages"]:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            parts.append(str(content or ""))
        return "\n".join(parts)
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # uvicorn's sockets have TCP_NODELAY (asyncio sets it); without it a response written as
    # headers then body waits for the client's delayed ACK (+40 ms per request).
    disable_nagle_algorithm = True
    server_version = "uvicorn"
    sys_version = ""
    cfg: Config
    engine: Engine
    sleep: SleepMode
    api: ApiRoutes

    # -- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access lines are written in uvicorn's format by _access()

    def _access(self, status: int) -> None:
        path = self.path.split("?", 1)[0]
        if not self.cfg.access_log or path in self.cfg.quiet_paths:
            return
        phrase = self.responses.get(status, ("",))[0]
        client = f"{self.client_address[0]}:{self.client_address[1]}"
        LOG.raw(f'INFO:     {client} - "{self.command} {self.path} HTTP/1.1" {status} {phrase}')

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response_only(status)
        self.send_header("date", self.date_time_string())
        self.send_header("server", "uvicorn")
        self.send_header("content-length", str(len(body)))
        if body:
            self.send_header("content-type", content_type)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._access(status)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode())

    def _error(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        self._json(
            status, {"error": {"message": message, "type": kind, "param": param, "code": status}}
        )

    def _authorized(self) -> bool:
        path = self.path.split("?", 1)[0]
        if not self.cfg.api_keys or not path.startswith(AUTH_PREFIXES):
            return True
        header = self.headers.get("Authorization", "")
        return any(header == f"Bearer {key}" for key in self.cfg.api_keys)

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "Invalid JSON body", "BadRequestError")
            return None
        if not isinstance(body, dict):
            self._error(400, "The request body must be a JSON object", "BadRequestError")
            return None
        return body

    # -- routes

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if not self._authorized():
            self._json(401, {"error": "Unauthorized"})
            return
        routes = {
            ("GET", "/health"): self._health,
            ("GET", "/ping"): self._health,
            ("POST", "/ping"): self._health,
            ("GET", "/version"): lambda: self._json(200, {"version": VERSION}),
            ("GET", "/load"): lambda: self._json(200, {"server_load": 0}),
            ("GET", "/metrics"): self._metrics,
            ("GET", "/v1/models"): self._models,
            **self.sleep.routes(self),
            **self.api.routes(self),
        }
        if self.api.generates():
            routes[("POST", "/v1/chat/completions")] = lambda: self._generate(chat=True)
            routes[("POST", "/v1/completions")] = lambda: self._generate(chat=False)
        handler = routes.get((method, path)) or self.api.dynamic(self, method, path)
        if handler is not None:
            handler()
        elif any(p == path for _, p in routes):
            self._json(405, {"detail": "Method Not Allowed"})
        else:
            self._json(404, {"detail": "Not Found"})

    def _health(self) -> None:
        self._send(200, b"")

    def _metrics(self) -> None:
        self._send(200, self.engine.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _models(self) -> None:
        created = int(START_TIME)
        cards = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": self.cfg.model,
                "parent": None,
                "max_model_len": self.cfg.max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{zlib.crc32(name.encode()):08x}",
                        "object": "model_permission",
                        "created": created,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in self.cfg.served_names
        ]
        self._json(200, {"object": "list", "data": cards})

    def _generate(self, chat: bool) -> None:
        body = self._body()
        if body is None:
            return
        model = body.get("model") or self.cfg.served_names[0]
        if model not in self.cfg.served_names:
            self._error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
            return
        if chat and not isinstance(body.get("messages"), list):
            self._error(400, "'messages' is required and must be a list", "BadRequestError")
            return
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 16
        if not isinstance(limit, int) or limit < 1:
            self._error(400, "max_tokens must be at least 1", "BadRequestError", "max_tokens")
            return
        prompt_text = _prompt_text(body)
        prompt_tokens = len(prompt_text.split()) + (
            4 * len(body.get("messages", [])) if chat else 0
        )
        if prompt_tokens + limit > self.cfg.max_model_len:
            self._error(
                400,
                f"This model's maximum context length is {self.cfg.max_model_len} tokens. "
                f"However, you requested {prompt_tokens + limit} tokens ({prompt_tokens} in the "
                f"messages, {limit} in the completion). Please reduce the length of the "
                f"messages or completion.",
                "BadRequestError",
            )
            return
        request_id = f"{'chatcmpl' if chat else 'cmpl'}-{os.urandom(16).hex()}"
        arrived = time.monotonic()
        # A sleeping (paused) engine queues the request: it waits here, it is not refused.
        ticket = self.sleep.hold()
        words = _words(prompt_text, limit)
        if self.sleep.garbage():  # level-2 weights mapped but not reloaded: vLLM's `!!!!!!`
            words = [GARBAGE] * limit
        self.engine.admit(prompt_tokens)
        reason = "length"
        try:
            if body.get("stream"):
                self._stream(chat, body, request_id, model, words, prompt_tokens, arrived, ticket)
            else:
                decoded = list(self._decode(words, arrived, ticket))
                self._json(200, self._full(chat, request_id, model, decoded, prompt_tokens))
        except (BrokenPipeError, ConnectionResetError):
            reason = "abort"
        finally:
            self.sleep.release()
            self.engine.finish(reason, time.monotonic() - arrived)

    def _decode(self, words: list[str], arrived: float, ticket: int) -> Iterator[str]:
        """Yield the words at the configured pace, counting each as a generated token; an
        abort (`/sleep` in mode abort, a shutdown without --shutdown-timeout) ends it early."""
        time.sleep(self.cfg.ttft)
        self.engine.first_token(time.monotonic() - arrived)
        for index, word in enumerate(words):
            if index and self.cfg.tokens_per_second > 0:
                time.sleep(1 / self.cfg.tokens_per_second)
            if self.sleep.aborted(ticket):
                return
            self.engine.generated()
            yield word

    def _full(
        self, chat: bool, request_id: str, model: str, words: list[str], prompt_tokens: int
    ) -> dict[str, Any]:
        text = " ".join(words)
        usage = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + len(words),
            "completion_tokens": len(words),
            "prompt_tokens_details": None,
        }
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "tool_calls": [],
                    "reasoning_content": None,
                },
                "logprobs": None,
                "finish_reason": "length",
                "stop_reason": None,
            }
        else:
            choice = {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": "length",
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        return {
            "id": request_id,
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": usage,
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }

    def _chunk(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        self._raw_chunk(f"data: {text}\n\n")

    def _raw_chunk(self, data: str) -> None:
        raw = data.encode()
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _start_stream(self) -> None:
        self.send_response_only(200)
        self.send_header("date", self.date_time_string())
        self.send_header("server", "uvicorn")
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._access(200)

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stream(
        self,
        chat: bool,
        body: dict[str, Any],
        request_id: str,
        model: str,
        words: list[str],
        prompt_tokens: int,
        arrived: float,
        ticket: int,
    ) -> None:
        self.send_response_only(200)
        self.send_header("date", self.date_time_string())
        self.send_header("server", "uvicorn")
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._access(200)
        created = int(time.time())
        kind = "chat.completion.chunk" if chat else "text_completion"
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        def event(choice: dict[str, Any]) -> dict[str, Any]:
            payload: dict[str, Any] = {
                "id": request_id,
                "object": kind,
                "created": created,
                "model": model,
                "choices": [choice],
            }
            if include_usage:
                payload["usage"] = None
            return payload

        if chat:
            self._chunk(
                event(
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                )
            )
        for index, word in enumerate(self._decode(words, arrived, ticket)):
            piece = word if index == 0 else " " + word
            last = index == len(words) - 1
            finish = "length" if last else None
            if chat:
                choice = {
                    "index": 0,
                    "delta": {"content": piece},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            else:
                choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": finish}
            if last:
                choice["stop_reason"] = None
            self._chunk(event(choice))
        if include_usage:
            self._chunk(
                {
                    "id": request_id,
                    "object": kind,
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "total_tokens": prompt_tokens + len(words),
                        "completion_tokens": len(words),
                    },
                }
            )
        self._chunk("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


START_TIME = time.time()


def serve(cfg: Config) -> None:
    engine = Engine(cfg)
    sleep = SleepMode(cfg.args, LOG, STOP)
    api = ApiRoutes(cfg.model, cfg.served_names, cfg.args.get("runner"))
    bound = {"cfg": cfg, "engine": engine, "sleep": sleep, "api": api}
    handler = type("BoundHandler", (Handler,), bound)
    server = ThreadingHTTPServer((cfg.host, cfg.port), handler)
    server.daemon_threads = True
    shown = "0.0.0.0" if cfg.host in ("", "0.0.0.0") else cfg.host
    LOG.api(f"Starting vLLM server on http://{shown}:{cfg.port}", where="api_server.py:1971")
    LOG.api("Available routes are:", where="launcher.py:46")
    for route, methods in (
        ("/health", "GET"),
        ("/ping", "GET, POST"),
        ("/version", "GET"),
        ("/load", "GET"),
        ("/metrics", "GET"),
        ("/v1/models", "GET"),
        *(
            [("/v1/chat/completions", "POST"), ("/v1/completions", "POST")]
            if api.generates()
            else []
        ),
        *api.route_lines(),
        *sleep.route_lines(),
    ):
        LOG.api(f"Route: {route}, Methods: {methods}", where="launcher.py:54")
    LOG.raw(f"INFO:     Started server process [{LOG.api_pid}]")
    LOG.raw("INFO:     Waiting for application startup.")
    stats = threading.Thread(target=engine.stats_line, daemon=True)
    stats.start()

    def stop_serving() -> None:
        STOP.wait()
        server.shutdown()

    threading.Thread(target=stop_serving, daemon=True).start()
    # The socket listens (ThreadingHTTPServer listened in __init__) before the ready line, so a
    # watcher that sees "Application startup complete." can connect at once.
    LOG.raw("INFO:     Application startup complete.")
    server.serve_forever(poll_interval=0.2)
    LOG.api("Shutting down FastAPI HTTP server.", where="launcher.py:110")
    LOG.raw("INFO:     Shutting down")
    # vLLM 0.33 (entrypoints/cli/serve.py): SIGTERM aborts in-flight requests unless
    # --shutdown-timeout gives them that many seconds to finish (default 0: abort).
    deadline = time.monotonic() + int(cfg.args.get("shutdown_timeout") or 0)
    while engine.running and time.monotonic() < deadline:
        time.sleep(0.02)
    sleep.abort_all()
    while engine.running and time.monotonic() < deadline + 1:
        time.sleep(0.02)
    server.server_close()
    LOG.raw("INFO:     Waiting for application shutdown.")
    LOG.raw("INFO:     Application shutdown complete.")


def _on_signal(signum: int, frame: Any) -> None:
    STOP.set()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        flags = load_flags(flag_table_path())
    except (OSError, ValueError) as error:
        sys.stderr.write(f"stand-in: cannot read the flag table: {error}\n")
        return 3
    try:
        args = parse_argv(argv, flags)
    except ArgvError as error:
        argparse_exit(str(error))
    if "served_model_name" in args and not (args.get("model_tag") or args.get("model")):
        LOG.raw(
            _traceback(
                API_FRAMES[:2],
                "ValueError: --served-model-name requires a model to be specified as a "
                "positional argument (vllm serve <model>)",
            )
        )
        return 1
    if args.get("enable_sleep_mode") and cpu_platform():
        LOG.raw(_traceback(API_FRAMES, NO_SLEEP_ON_CPU))
        return 1
    cfg = Config(args)
    if cfg.fail and cfg.fail not in FAILURES:
        sys.stderr.write(f"stand-in: STANDIN_FAIL={cfg.fail!r} is not one of {FAILURES}\n")
        return 3
    wake_fail = os.environ.get("STANDIN_WAKE_FAIL", "").strip().lower()
    if wake_fail not in WAKE_FAILURES:
        sys.stderr.write(
            f"stand-in: STANDIN_WAKE_FAIL={wake_fail!r} is not one of {WAKE_FAILURES}\n"
        )
        return 3
    try:
        load(cfg)
    except Stop:
        LOG.raw(_traceback(API_FRAMES, "KeyboardInterrupt: terminated"))
        return 1
    try:
        serve(cfg)
    except OSError as error:
        LOG.raw(_traceback(API_FRAMES, f"OSError: {error}"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
