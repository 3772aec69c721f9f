"""Pure: why did an agent fail to start? Log lines + exit code + state → one Failure.

The patterns are vLLM 0.33's own messages (FACTS.md §5), huggingface_hub's, and what Docker /
the NVIDIA container toolkit print when `docker compose up` cannot start the container. Rules
are tried in order, most specific first; the first rule with a matching line wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

UNRECOGNISED_TAIL = 30
MAX_MATCHED = 6

# vLLM prefixes lines with `(APIServer pid=7) ERROR 11-23 10:01:02 [file.py:12] `: strip it when
# quoting numbers, keep it in the lines we show (it tells which process failed).
_PREFIX = re.compile(r"^\(\S+ pid=\d+\)\s+[A-Z]+\s+\d\d-\d\d \d\d:\d\d:\d\d \[[^\]]*\]\s?")


@dataclass(frozen=True)
class Failure:
    """What happened (summary), what to do (fix), and the log lines that show it."""

    kind: str
    summary: str
    fix: str
    matched_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """Facts the caller knows that make the advice concrete."""

    agent: str
    exit_code: int | None = None
    state: str | None = None  # container state: exited, dead, ... or "not-created"
    # "pid 1234 (Xorg): 1.2 GiB" for each process NVML says holds GPU memory.
    gpu_holders: list[str] = field(default_factory=list)
    # The agent's spec file as the user would type it (the workspace may be anywhere: --home).
    spec_path: Path | None = None


@dataclass(frozen=True)
class _Rule:
    kind: str
    patterns: tuple[re.Pattern[str], ...]
    explain: Callable[[list[str], Context], tuple[str, str]]


def _rx(*texts: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(text, re.IGNORECASE) for text in texts)


def _message(line: str) -> str:
    return _PREFIX.sub("", line).strip()


def _search(lines: list[str], pattern: str) -> re.Match[str] | None:
    compiled = re.compile(pattern)
    for line in lines:
        match = compiled.search(_message(line))
        if match:
            return match
    return None


def _spec(ctx: Context) -> str:
    return str(ctx.spec_path) if ctx.spec_path is not None else f"the spec of {ctx.agent}"


def _no_runtime(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "Docker has no NVIDIA runtime: it could not give the container a GPU "
        '("could not select device driver").',
        "Install the NVIDIA Container Toolkit (package nvidia-container-toolkit), then run "
        "`sudo nvidia-ctk runtime configure --runtime=docker` and "
        "`sudo systemctl restart docker`. Check with `docker run --rm --gpus all ubuntu "
        "nvidia-smi`.",
    )


def _driver_too_old(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "The NVIDIA driver is too old for the vLLM image (vLLM 0.33 is built for CUDA 13).",
        "Update the NVIDIA driver to R580 or newer (`nvidia-smi` shows the version), or pin "
        f"an older image with image_tag in {_spec(ctx)}. On datacenter GPUs, "
        "VLLM_ENABLE_CUDA_COMPATIBILITY=1 in env: can bridge R535/R570.",
    )


def _image_pull(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(lines, r"(?:pull access denied for|manifest for|image)\s+([\w./:-]+)")
    image = f" {match.group(1)}" if match else ""
    return (
        f"The image{image} could not be pulled: it does not exist or the registry cannot be "
        "reached.",
        f"Check image_tag in {_spec(ctx)} (default vllm/vllm-openai:v0.33.0) and the network "
        "(`docker pull vllm/vllm-openai:v0.33.0`); behind a proxy, configure Docker's proxy.",
    )


def _port_taken(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(lines, r"(?:Bind for|listen tcp[46]?) \[?([\d.:a-f]*)\]?:(\d+)")
    where = f" {match.group(1) or '0.0.0.0'}:{match.group(2)}" if match else ""
    return (
        f"The host port{where} is already in use, so Docker could not publish the agent's API.",
        f"Stop what holds it (`ss -ltnp` shows it), or give the agent another port in "
        f"{_spec(ctx)}.",
    )


def _name_in_use(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(lines, r'The container name "?/?([\w.-]+)"? is already in use')
    name = f" {match.group(1)}" if match else ""
    return (
        f"A container named{name} already exists (created outside agent-manager, or by "
        "another instance).",
        f"Remove it with `agent-manager stop {ctx.agent}` or `docker rm -f{name}`, then launch "
        "again.",
    )


def _unknown_argument(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(lines, r"unrecognized arguments: (.*)")
    args = match.group(1).strip() if match else "?"
    return (
        f"vLLM 0.33 does not know the argument(s): {args}.",
        f"Remove or rename them in extra_args of {_spec(ctx)} or in your override file "
        "(e.g. the swap-space and disable-log-requests flags were removed; `command:` must "
        "not start with `serve`).",
    )


def _bad_value(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(lines, r"(Unknown quantization method: [^.]+)")
    what = match.group(1) if match else "An argument has a value vLLM refuses"
    return (
        f"{what}.",
        f"Fix quantization in {_spec(ctx)} (AWQ/GPTQ/FP8 checkpoints are detected "
        "automatically: the field can be left out).",
    )


def _gated(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(
        lines,
        r"(?:Access to model|gated repo for url https://huggingface\.co/)"
        r"\s*([\w.-]+/[\w.-]+)",
    )
    repo = f" {match.group(1)}" if match else ""
    return (
        f"The model repo{repo} is gated or private: Hugging Face answered 401 without a valid "
        "token.",
        "Accept the model's licence on its Hugging Face page, create a read token, and export "
        f"HF_TOKEN=<token> before `agent-manager launch {ctx.agent}` (or run "
        "`agent-manager download-models` with the token first).",
    )


def _not_found(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(lines, r"Invalid repository ID or local directory specified: '([^']+)'")
    repo = f" '{match.group(1)}'" if match else ""
    return (
        f"The model{repo} does not exist on Hugging Face (or is not a model folder).",
        f"Check the spelling of model (and revision) in {_spec(ctx)}; the id is "
        "<owner>/<name> as shown on huggingface.co.",
    )


def _max_len_above_model(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(
        lines,
        r"User-specified max_model_len \((\d+)\) is greater than the derived "
        r"max_model_len \(([^)]*)\)",
    )
    if match:
        summary = (
            f"max_context {match.group(1)} is longer than the model supports ({match.group(2)})."
        )
    else:
        summary = "max_context is longer than the model supports."
    return summary, f"Lower max_context in {_spec(ctx)} to the model's limit (or use 'auto')."


def _context_too_long(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(
        lines,
        r"max seq len \((\d+)\), \(([\d.]+) GiB KV cache is needed, which is larger than the "
        r"available KV cache memory \(([\d.]+) GiB\)",
    )
    estimate = _search(lines, r"estimated maximum model length is (\d+)")
    if match:
        summary = (
            f"The context ({match.group(1)} tokens) needs {match.group(2)} GiB of KV cache but "
            f"only {match.group(3)} GiB is left after the weights."
        )
    else:
        summary = "Not even one request of the full context fits in the KV cache."
    if estimate:
        summary += f" vLLM computed that at most {estimate.group(1)} tokens fit."
        first = f"Set max_context: {estimate.group(1)} (or lower)"
    else:
        first = "Lower max_context"
    return (
        summary,
        f"{first} in {_spec(ctx)}, or raise gpu_memory_fraction, or set kv_cache_dtype: fp8 "
        "(half the memory per token), or use max_context: auto.",
    )


def _no_kv_memory(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "No GPU memory is left for the KV cache after loading the weights.",
        f"Raise gpu_memory_fraction in {_spec(ctx)}, or use a smaller/quantized checkpoint "
        "(AWQ/GPTQ), or set enforce_eager: true to save CUDA-graph memory.",
    )


def _free_memory(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = _search(
        lines,
        r"Free memory on device (\S+) \(([\d.]+)/([\d.]+) GiB\) on startup is less than desired "
        r"GPU memory utilization \(([\d.]+), ([\d.]+) GiB\)",
    )
    if match:
        summary = (
            f"Only {match.group(2)} of {match.group(3)} GiB is free on {match.group(1)}, but "
            f"gpu_memory_fraction {match.group(4)} asks for {match.group(5)} GiB."
        )
    else:
        summary = "Less GPU memory is free than gpu_memory_fraction asks for."
    if ctx.gpu_holders:
        summary += " GPU memory is held by: " + "; ".join(ctx.gpu_holders) + "."
    return (
        summary,
        "Free the GPU (close what holds VRAM: see `agent-manager gpu-stats`), or lower "
        f"gpu_memory_fraction in {_spec(ctx)} below the free share.",
    )


def _oom(lines: list[str], ctx: Context) -> tuple[str, str]:
    warmup = _search(lines, r"out of memory occurred when warming up sampler")
    if warmup:
        return (
            "The GPU ran out of memory while warming up (too many sequences at once).",
            f"Lower max_num_seqs or gpu_memory_fraction in {_spec(ctx)}.",
        )
    tried = _search(lines, r"Tried to allocate ([\d.]+ [KMG]iB)")
    extra = f" (it tried to allocate {tried.group(1)} more)" if tried else ""
    return (
        f"CUDA ran out of memory while loading the model weights{extra}.",
        f"Use a smaller or quantized checkpoint (AWQ/GPTQ/FP8) in {_spec(ctx)}, lower "
        "max_context, or lower gpu_memory_fraction to leave room for other GPU users; "
        "`agent-manager plan` shows what fits.",
    )


def _killed(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        'vLLM was stopped while it was starting (SIGTERM/Ctrl-C: "KeyboardInterrupt: terminated").',
        f"Start it again with `agent-manager launch {ctx.agent}`.",
    )


_RULES: tuple[_Rule, ...] = (
    _Rule("no-nvidia-runtime", _rx(r"could not select device driver"), _no_runtime),
    _Rule(
        "driver-too-old",
        _rx(
            r"CUDA driver version is insufficient",
            r"forward compatibility",
            r"unsatisfied condition: cuda\s*>=\s*\d+",
            r"requirement error:.*cuda",
        ),
        _driver_too_old,
    ),
    _Rule(
        "image-pull",
        _rx(
            r"pull access denied",
            r"manifest unknown",
            r"manifest for \S+ not found",
            r"no such host",
            r"TLS handshake timeout",
            r"repository does not exist",
            r"Error response from daemon: Get \"https://",
        ),
        _image_pull,
    ),
    _Rule("port-taken", _rx(r"port is already allocated", r"address already in use"), _port_taken),
    _Rule(
        "name-in-use",
        _rx(r"The container name \S+ is already in use", r"Conflict\. The container name"),
        _name_in_use,
    ),
    _Rule("unknown-argument", _rx(r"unrecognized arguments:"), _unknown_argument),
    _Rule("invalid-value", _rx(r"Unknown quantization method:"), _bad_value),
    _Rule(
        "gated-repo",
        _rx(
            r"GatedRepoError",
            r"Cannot access gated repo",
            r"You are trying to access a gated repo",
            r"401 Client Error",
            r"Access to model \S+ is restricted",
        ),
        _gated,
    ),
    _Rule(
        "repo-not-found",
        _rx(
            r"RepositoryNotFoundError",
            r"Invalid repository ID or local directory specified",
            r"Repository Not Found for url",
        ),
        _not_found,
    ),
    _Rule(
        "context-above-model",
        _rx(r"User-specified max_model_len \(\d+\) is greater than the derived"),
        _max_len_above_model,
    ),
    _Rule(
        "context-too-long",
        # 0.11–0.21 spell it "models's max seq len", 0.23+ "model's": match both.
        _rx(
            r"To serve at least one request with the models?'s max seq len",
            r"estimated maximum model length is \d+",
            r"Cannot auto-fit max_model_len",
        ),
        _context_too_long,
    ),
    _Rule("no-kv-memory", _rx(r"No available memory for the cache blocks"), _no_kv_memory),
    _Rule(
        "free-memory",
        _rx(r"on startup is less than desired GPU memory utilization"),
        _free_memory,
    ),
    _Rule(
        "out-of-memory",
        _rx(
            r"Failed to load model - not enough GPU memory",
            r"CUDA out of memory",
            r"torch\.OutOfMemoryError",
            r"OutOfMemoryError",
        ),
        _oom,
    ),
    _Rule("interrupted", _rx(r"KeyboardInterrupt: terminated"), _killed),
)


def diagnose(lines: Sequence[str], ctx: Context) -> Failure:
    """Classify a failed start. Never raises; an unrecognised failure quotes the log's tail."""
    text = [line.rstrip("\n") for line in lines]
    for rule in _RULES:
        matched = [line for line in text if any(p.search(line) for p in rule.patterns)]
        if matched:
            summary, fix = rule.explain(text, ctx)
            return Failure(rule.kind, summary, fix, _dedupe(matched)[-MAX_MATCHED:])
    return _unrecognised(text, ctx)


def _unrecognised(lines: list[str], ctx: Context) -> Failure:
    if ctx.exit_code == 137:
        what = "The container was killed (exit code 137: out of host RAM, or SIGKILL)."
    elif ctx.exit_code is not None:
        what = f"vLLM exited with code {ctx.exit_code} for a reason agent-manager does not know."
    elif ctx.state:
        what = f"The container is {ctx.state} for a reason agent-manager does not know."
    else:
        what = "The agent failed for a reason agent-manager does not know."
    tail = [line for line in lines if line.strip()][-UNRECOGNISED_TAIL:]
    shown = f"the last {len(tail)} log lines are below" if tail else "the log is empty"
    return Failure(
        "unrecognised",
        f"{what} {shown[0].upper()}{shown[1:]}.",
        f"See the whole log with `agent-manager logs {ctx.agent}`.",
        tail,
    )


def _dedupe(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for line in lines:
        key = _message(line)
        if key not in seen:
            seen.add(key)
            kept.append(line)
    return kept
