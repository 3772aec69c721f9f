"""Will an agent fit the GPU? vLLM 0.33's memory arithmetic, done before vLLM does it.

The arithmetic (`plan_agent` and what it calls) is pure: plain values in, a `AgentPlan` out.
I/O stays at the edges: `checkpoint_info` reads config.json and weight sizes (cache, then hub),
`gpu_target_*` reads NVML; `plan_agents` and `ensure_fits` wire them together.

What vLLM 0.33 does (FACTS.md §6, `vllm/v1/worker/gpu_worker.py`):
- it requests `ceil(total x gpu_memory_utilization)` bytes, and refuses to start unless that much
  is free when it starts;
- from that budget it subtracts weights, non-torch memory, the activation peak of a dummy forward
  pass of `max_num_batched_tokens` tokens and its CUDA-graph estimate; the rest is KV cache;
- the KV cache must hold at least one request of `max_model_len` tokens, in blocks of 16.
The weights and KV figures are exact arithmetic; the other three are allowances (estimates),
each stated below with where its number comes from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from agent_manager.errors import GpuUnavailableError, LaunchError
from agent_manager.spec.agents import Agent, AgentSpec

GIB = 1024**3
MIB = 1024**2
BLOCK_SIZE = 16  # CacheConfig.DEFAULT_BLOCK_SIZE: KV memory is allocated in blocks of 16 tokens

# --- Allowances (estimates; not measured on a GPU by this project) -----------------------------
# CUDA context plus non-torch memory (cuBLAS/cuBLASLt workspaces, NCCL, allocator slack). FACTS §6
# counts them in vLLM's "consumed memory (weights + non-torch)". A CUDA context with lazy module
# loading is ~0.3-0.5 GiB on current GPUs; we allow 0.75 GiB, the middle of the 0.5-1 GiB range.
NON_TORCH_BYTES = 768 * MIB
# vLLM keeps 150 MiB of redundancy when it suggests --kv-cache-memory values (FACTS §6); we keep
# the same margin so "fits" never means "fits with zero bytes to spare".
REDUNDANCY_BYTES = 150 * MIB
# Per captured CUDA graph: the graph's own bookkeeping outside the shared memory pool. Our
# estimate (vLLM logs "Graph capturing finished ..., took 0.3-0.5 GiB" for ~50-70 graphs).
PER_GRAPH_BYTES = 5 * MIB
# Batch defaults of the API server (EngineArgs.get_batch_defaults, FACTS §2): below 70 GiB
# 256 sequences and 2048 batched tokens; H100-class cards get larger ones.
LARGE_GPU_BYTES = 70 * GIB
SMALL_GPU_BATCH = (256, 2048)
LARGE_GPU_BATCH = (1024, 8192)

Verdict = Literal["fits", "does not fit", "unknown"]


class PlanInputError(ValueError):
    """config.json lacks what the arithmetic needs."""


@dataclass(frozen=True)
class ModelShape:
    """The parts of a model's config.json the arithmetic uses."""

    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int | None
    vocab_size: int | None
    tie_word_embeddings: bool
    max_position_embeddings: int | None
    torch_dtype: str | None
    quant_method: str | None
    quant_bits: int | None
    quant_group_size: int | None
    attention_note: str | None = None  # set when the model is not standard full attention


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """Read a Hugging Face config.json (multimodal ones keep the LLM under text_config)."""
    text = dict(config)
    if isinstance(config.get("text_config"), dict):
        text.update(config["text_config"])

    def need(key: str) -> int:
        value = text.get(key)
        if not isinstance(value, int) or value <= 0:
            raise PlanInputError(f"config.json has no usable '{key}'")
        return value

    layers = need("num_hidden_layers")
    heads = need("num_attention_heads")
    hidden = need("hidden_size")
    kv_heads = text.get("num_key_value_heads") or heads  # absent means plain multi-head attention
    head_dim = text.get("head_dim") or hidden // heads
    quant = text.get("quantization_config") or config.get("quantization_config") or {}
    method = quant.get("quant_method") if isinstance(quant, dict) else None
    bits = quant.get("bits") if isinstance(quant, dict) else None
    if method == "fp8" and bits is None:
        bits = 8
    note = None
    if text.get("kv_lora_rank"):
        note = "uses MLA attention: its KV cache is smaller than the standard formula"
    elif text.get("use_sliding_window") or "sliding_attention" in (text.get("layer_types") or []):
        note = "uses sliding-window layers: their KV cache is smaller than the standard formula"
    elif any("mamba" in str(kind) or "linear" in str(kind) for kind in text.get("layer_types", [])):
        note = "is a hybrid (Mamba/linear attention) model: the standard KV formula does not apply"
    return ModelShape(
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        hidden_size=hidden,
        intermediate_size=text.get("intermediate_size"),
        vocab_size=text.get("vocab_size"),
        tie_word_embeddings=bool(text.get("tie_word_embeddings", False)),
        max_position_embeddings=text.get("max_position_embeddings"),
        torch_dtype=text.get("torch_dtype") or text.get("dtype"),
        quant_method=method,
        quant_bits=bits if isinstance(bits, int) else None,
        quant_group_size=quant.get("group_size") if isinstance(quant, dict) else None,
        attention_note=note,
    )


# --- Exact arithmetic --------------------------------------------------------------------------

_DTYPE_BYTES = {"float16": 2, "half": 2, "bfloat16": 2, "float32": 2, "float": 2}
_FP8_KV = {"fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla", "fp8_per_token_head"}


def model_dtype(shape: ModelShape, dtype: str = "auto") -> str:
    """The dtype vLLM runs the model in: --dtype, else the checkpoint's; AWQ/GPTQ run in fp16."""
    if dtype != "auto":
        return dtype
    if shape.quant_method in ("awq", "awq_marlin", "gptq", "gptq_marlin", "auto_awq", "auto_gptq"):
        return "float16"
    # vLLM serves float32 checkpoints in 16 bits unless --dtype float32 is given.
    if shape.torch_dtype in (None, "float32"):
        return "bfloat16"
    return str(shape.torch_dtype)


def kv_dtype_bytes(kv_cache_dtype: str, shape: ModelShape, dtype: str = "auto") -> int | None:
    """Bytes per KV element; None for cache types this planner does not model (nvfp4, ...)."""
    if kv_cache_dtype in _FP8_KV:
        return 1
    if kv_cache_dtype in ("auto", "float16", "bfloat16"):
        resolved = model_dtype(shape, dtype) if kv_cache_dtype == "auto" else kv_cache_dtype
        return 4 if resolved == "float32" and dtype != "auto" else _DTYPE_BYTES.get(resolved, 2)
    return None


def kv_bytes_per_token(shape: ModelShape, dtype_bytes: int, tensor_parallel: int = 1) -> int:
    """2 (K and V) x layers x KV heads per TP rank x head dim x bytes (FullAttentionSpec)."""
    kv_heads = max(1, shape.num_kv_heads // tensor_parallel)
    return 2 * shape.num_layers * kv_heads * shape.head_dim * dtype_bytes


def kv_bytes_for_context(bytes_per_token: int, tokens: int) -> int:
    """KV memory of one request of `tokens` tokens: whole blocks of 16."""
    return math.ceil(tokens / BLOCK_SIZE) * BLOCK_SIZE * bytes_per_token


def budget_bytes(total_bytes: int, fraction: float) -> int:
    """What vLLM requests: ceil(total x gpu_memory_utilization)."""
    return math.ceil(total_bytes * fraction)


def estimate_weight_bytes(shape: ModelShape, dtype: str = "auto") -> int | None:
    """Checkpoint size from the config when no file sizes are known; labelled "estimated".

    Linear layers at the quantization's bits plus one fp16 scale and zero point per group;
    embeddings and lm_head stay 16-bit (as AWQ/GPTQ checkpoints keep them).
    """
    if shape.intermediate_size is None or shape.vocab_size is None:
        return None
    h, q = shape.hidden_size, shape.num_attention_heads * shape.head_dim
    kv = shape.num_kv_heads * shape.head_dim
    linear = shape.num_layers * (h * q + 2 * h * kv + q * h + 3 * h * shape.intermediate_size)
    embeddings = shape.vocab_size * h * (1 if shape.tie_word_embeddings else 2)
    if shape.quant_bits:
        group = (
            shape.quant_group_size if shape.quant_group_size and shape.quant_group_size > 0 else 128
        )
        bits_per_weight = shape.quant_bits + (16 + shape.quant_bits) / group
    else:
        bits_per_weight = 8 * _DTYPE_BYTES.get(model_dtype(shape, dtype), 2)
    return int(linear * bits_per_weight / 8 + embeddings * 2)


# --- Allowances --------------------------------------------------------------------------------


def activation_peak_bytes(shape: ModelShape, batched_tokens: int, max_num_seqs: int) -> int:
    """Transient peak of vLLM's profiling forward pass, our estimate from the model's shapes.

    Per token in flight: the MLP's gate+up output (2 x intermediate) and its activation
    (1 x intermediate) plus ~4 hidden-size buffers (residual, norm, attention in/out), 16-bit.
    The sampler then holds fp32 logits for max_num_seqs requests, ~3 copies (logits, probs,
    sorted for top-p/top-k).
    """
    intermediate = shape.intermediate_size or 4 * shape.hidden_size
    per_token = (3 * intermediate + 4 * shape.hidden_size) * 2
    sampler = max_num_seqs * (shape.vocab_size or 0) * 4 * 3
    return batched_tokens * per_token + sampler


def cudagraph_capture_sizes(max_num_seqs: int, decode_query_len: int = 1) -> list[int]:
    """vLLM's default capture sizes up to min(2 x max_num_seqs x decode_query_len, 512)."""
    largest = min(2 * max_num_seqs * decode_query_len, 512)
    sizes = [1, 2, 4, *range(8, 256, 8), *range(256, largest + 1, 16)]
    return [size for size in sizes if size <= largest]


def cudagraph_bytes(
    shape: ModelShape, max_num_seqs: int, enforce_eager: bool, decode_query_len: int = 1
) -> int:
    """Our estimate of CUDA-graph memory: 0 in eager mode; else a fixed cost per graph
    (piecewise graphs for every capture size, full decode graphs up to max_num_seqs) plus the
    activations of the largest captured batch in the graphs' shared pool."""
    if enforce_eager:
        return 0
    sizes = cudagraph_capture_sizes(max_num_seqs, decode_query_len)
    decode = [size for size in sizes if size <= max_num_seqs * decode_query_len]
    pool = activation_peak_bytes(shape, max(sizes), 0)
    return (len(sizes) + len(decode)) * PER_GRAPH_BYTES + pool


# --- Inputs and outputs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    bytes: int | None
    source: str  # "local cache (2 files)", "hub file list", "estimated from config.json", ...
    estimated: bool = False


@dataclass(frozen=True)
class CheckpointFacts:
    """What could be learned about an agent's checkpoint, and what could not."""

    shape: ModelShape | None
    config_source: str
    weights: Weights
    problems: list[str] = field(default_factory=list)


class Holder(BaseModel):
    """A process holding VRAM on the target GPU."""

    label: str  # agent name, container name or "pid N"
    pid: int
    used_bytes: int | None
    agent: str | None


class GpuTarget(BaseModel):
    """The GPU planned against: a real one from NVML, or `--gpu-memory` on paper."""

    name: str
    source: Literal["nvml", "--gpu-memory"]
    total_bytes: int
    free_bytes: int | None  # None on paper: an idle card is assumed
    holders: list[Holder] = []
    notes: list[str] = []

    def free_after_stopping_agents(self) -> int | None:
        """Free memory once `launch` has stopped our running agents (it always does first)."""
        if self.free_bytes is None:
            return None
        ours = sum(h.used_bytes or 0 for h in self.holders if h.agent)
        return min(self.total_bytes, self.free_bytes + ours)


class Allowance(BaseModel):
    name: str
    bytes: int
    source: str


class AgentPlan(BaseModel):
    """One agent's verdict and the numbers behind it (the `plan` output, table and JSON)."""

    agent: str
    model: str
    revision: str | None
    verdict: Verdict
    gpu_memory_fraction: float
    budget_bytes: int
    weights_bytes: int | None
    weights_source: str
    weights_estimated: bool
    kv_cache_dtype: str
    kv_bytes_per_token: int | None
    context: int | None  # tokens planned (max_context, the model's limit, or the auto-fit one)
    context_source: str
    model_max_context: int | None
    kv_cache_bytes: int | None
    allowances: list[Allowance]
    needed_bytes: int | None
    headroom_bytes: int | None
    largest_context: int | None  # the largest max_context that fits this budget
    largest_context_fp8: int | None
    free_bytes: int | None
    reasons: list[str]  # why it does not fit
    fixes: list[str]
    unknowns: list[str]  # what the plan could not know
    notes: list[str]


class PlanReport(BaseModel):
    gpu: GpuTarget
    agents: list[AgentPlan]


# --- The plan ----------------------------------------------------------------------------------


def _extra_arg(spec: AgentSpec, flag: str) -> str | None:
    args = spec.extra_args
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _tokens(value: str) -> int | None:
    text = value.strip().lower()
    scale = 1
    if text.endswith("k"):
        text, scale = text[:-1], 1000
    try:
        return int(float(text) * scale)
    except ValueError:
        return None


def _round_context(tokens: int) -> int:
    """Contexts people write: multiples of 256 above 256, of the block size below."""
    if tokens >= 256:
        return tokens // 256 * 256
    return max(0, tokens // BLOCK_SIZE * BLOCK_SIZE)


def _fmt(value: int | float) -> str:
    return f"{value / GIB:.2f} GiB"


def plan_agent(agent: Agent, facts: CheckpointFacts, target: GpuTarget) -> AgentPlan:
    """The verdict for one agent on one GPU. Pure."""
    spec = agent.spec
    unknowns = list(facts.problems)
    notes: list[str] = []
    reasons: list[str] = []
    fixes: list[str] = []
    shape = facts.shape
    budget = budget_bytes(target.total_bytes, spec.gpu_memory_fraction)
    large = target.total_bytes >= LARGE_GPU_BYTES
    default_seqs, default_tokens = LARGE_GPU_BATCH if large else SMALL_GPU_BATCH
    seqs = spec.max_num_seqs or default_seqs
    batched_arg = _extra_arg(spec, "--max-num-batched-tokens")
    batched = (_tokens(batched_arg) if batched_arg else None) or default_tokens
    speculative = int((spec.speculative or {}).get("num_speculative_tokens") or 0)
    if (spec.speculative or {}).get("model"):
        notes.append("the speculative draft model's weights and KV cache are not counted")
    for flag in ("--kv-cache-memory-bytes", "--cpu-offload-gb", "--max-cudagraph-capture-size"):
        if _extra_arg(spec, flag) is not None:
            notes.append(f"{flag} in extra_args is not modelled; the figures ignore it")

    bpt: int | None = None
    model_max: int | None = None
    allowances: list[Allowance] = []
    if shape is not None:
        model_max = shape.max_position_embeddings
        if shape.attention_note:
            notes.append(f"{spec.model} {shape.attention_note}; the KV figure is an upper bound")
        dtype_bytes = kv_dtype_bytes(spec.kv_cache_dtype, shape, spec.dtype)
        if dtype_bytes is None:
            unknowns.append(f"KV cache dtype '{spec.kv_cache_dtype}' is not modelled")
        else:
            bpt = kv_bytes_per_token(shape, dtype_bytes, spec.tensor_parallel_size)
        allowances = [
            Allowance(
                name="CUDA context + non-torch",
                bytes=NON_TORCH_BYTES,
                source="allowance: CUDA context ~0.3-0.5 GiB plus cuBLAS/NCCL workspaces",
            ),
            Allowance(
                name="activation peak",
                bytes=activation_peak_bytes(shape, batched, seqs),
                source=f"estimate: dummy forward of {batched} batched tokens + sampler for "
                f"{seqs} sequences",
            ),
            Allowance(
                name="CUDA graphs",
                bytes=cudagraph_bytes(shape, seqs, spec.enforce_eager, 1 + speculative),
                source="enforce_eager: none captured"
                if spec.enforce_eager
                else f"estimate: {len(cudagraph_capture_sizes(seqs, 1 + speculative))} capture "
                f"sizes up to min(2 x {seqs} max_num_seqs, 512)",
            ),
            Allowance(
                name="redundancy",
                bytes=REDUNDANCY_BYTES,
                source="vLLM's 150 MiB margin for suggested KV sizes",
            ),
        ]

    weights = facts.weights
    if weights.estimated:
        notes.append(f"weights {weights.source}: no file sizes were available")
    fixed = (
        weights.bytes + sum(a.bytes for a in allowances)
        if weights.bytes is not None and shape is not None
        else None
    )

    # The context vLLM will use: the spec's, the model's own limit when unset, or auto-fit.
    largest: int | None = None
    largest_fp8: int | None = None
    if fixed is not None and bpt is not None:
        largest = _largest_context(budget - fixed, bpt, model_max)
        if shape is not None and spec.kv_cache_dtype not in _FP8_KV:
            fp8 = kv_bytes_per_token(shape, 1, spec.tensor_parallel_size)
            largest_fp8 = _largest_context(budget - fixed, fp8, model_max)
    context: int | None
    if isinstance(spec.max_context, int):
        context, context_source = spec.max_context, "max_context"
    elif spec.max_context == "auto":
        context, context_source = largest, "auto (vLLM fits it to memory)"
    else:
        context, context_source = model_max, "model's max_position_embeddings (max_context unset)"
        if model_max is None and shape is not None:
            unknowns.append("config.json has no max_position_embeddings")

    kv_cache = (
        kv_bytes_for_context(bpt, context) if bpt is not None and context is not None else None
    )
    needed = fixed + kv_cache if fixed is not None and kv_cache is not None else None
    headroom = budget - needed if needed is not None else None
    free = target.free_after_stopping_agents()

    verdict: Verdict = "unknown"
    if needed is not None and headroom is not None and context is not None:
        verdict = "fits"
        over_budget = False
        long_ok = "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in spec.env
        if model_max is not None and context > model_max and not long_ok:
            verdict = "does not fit"
            reasons.append(
                f"max_context {context} is above the model's limit of {model_max} tokens "
                "(vLLM refuses it)"
            )
            fixes.append(f"set max_context: {model_max} (or less)")
            room = budget - (fixed or 0)
            over_budget = kv_bytes_for_context(bpt or 0, model_max) > room
        if spec.max_context == "auto" and not largest:
            verdict = "does not fit"
            over_budget = True
            reasons.append("no memory is left for even one block of KV cache")
        elif headroom < 0:
            verdict = "does not fit"
            over_budget = True
            reasons.append(
                f"needs {_fmt(needed)} but the budget is {_fmt(budget)} "
                f"({spec.gpu_memory_fraction:.2f} x {_fmt(target.total_bytes)})"
            )
        if free is not None and free < budget:
            verdict = "does not fit"
            reasons.append(
                f"vLLM requests {_fmt(budget)} at start but only {_fmt(free)} is free "
                "(vLLM refuses to start below that)"
            )
        if over_budget:
            fixes += _fixes(spec, shape, target, budget, fixed or 0, bpt or 0, context, largest)
        fixes += _free_fixes(target, free, budget, needed)
    elif shape is None:
        unknowns.append("KV cache size unknown without config.json")
    if weights.bytes is None:
        unknowns.append(f"weights unknown ({weights.source})")
    return AgentPlan(
        agent=agent.name,
        model=spec.model,
        revision=spec.revision,
        verdict=verdict,
        gpu_memory_fraction=spec.gpu_memory_fraction,
        budget_bytes=budget,
        weights_bytes=weights.bytes,
        weights_source=weights.source,
        weights_estimated=weights.estimated,
        kv_cache_dtype=spec.kv_cache_dtype,
        kv_bytes_per_token=bpt,
        context=context,
        context_source=context_source,
        model_max_context=model_max,
        kv_cache_bytes=kv_cache,
        allowances=allowances,
        needed_bytes=needed,
        headroom_bytes=headroom,
        largest_context=largest,
        largest_context_fp8=largest_fp8,
        free_bytes=free,
        reasons=reasons,
        fixes=_unique(fixes),
        unknowns=unknowns,
        notes=notes,
    )


def _largest_context(room: int, bytes_per_token: int, model_max: int | None) -> int:
    """The largest max_context whose one request fits `room` bytes of KV cache."""
    if room <= 0:
        return 0
    tokens = room // (BLOCK_SIZE * bytes_per_token) * BLOCK_SIZE
    if model_max is not None:
        tokens = min(tokens, model_max)
    return _round_context(tokens)


def _fixes(
    spec: AgentSpec,
    shape: ModelShape | None,
    target: GpuTarget,
    budget: int,
    fixed: int,
    bpt: int,
    context: int,
    largest: int | None,
) -> list[str]:
    """Concrete changes, each with what it buys, for an agent whose numbers do not add up."""
    fixes: list[str] = []
    room = budget - fixed
    if largest:
        fixes.append(f"lower max_context to {largest} (the largest that fits this budget)")
    if shape is not None and spec.kv_cache_dtype not in _FP8_KV and room > 0:
        fp8 = _largest_context(room, kv_bytes_per_token(shape, 1, spec.tensor_parallel_size), None)
        if fp8 >= context:
            fixes.append(f"kv_cache_dtype: fp8 halves the KV cache; {context} tokens then fit")
        elif fp8:
            fixes.append(f"kv_cache_dtype: fp8 halves the KV cache; up to {fp8} tokens then fit")
    gap = fixed + kv_bytes_for_context(bpt, context) - budget
    if shape is not None and not spec.enforce_eager:
        seqs = spec.max_num_seqs or SMALL_GPU_BATCH[0]
        saved = cudagraph_bytes(shape, seqs, False)
        # Worth saying only when it changes the outcome: it closes the gap or buys context.
        if room > 0 or saved >= gap:
            fixes.append(
                f"enforce_eager: true saves about {_fmt(saved)} of CUDA graphs (slower tokens)"
            )
        if seqs > 4:
            smaller = cudagraph_bytes(shape, 4, False) + activation_peak_bytes(shape, 0, 4)
            current = saved + activation_peak_bytes(shape, 0, seqs)
            if room > 0 or current - smaller >= gap:
                fixes.append(
                    f"max_num_seqs: 4 (now {seqs}) saves about {_fmt(current - smaller)} "
                    "of CUDA graphs and sampler memory"
                )
    if room <= 0 or (shape is not None and fixed > budget * 0.8):
        if shape is not None and shape.quant_bits is None and shape.quant_method is None:
            quantized = estimate_weight_bytes(
                ModelShape(**{**shape.__dict__, "quant_bits": 4, "quant_group_size": 128})
            )
            size = f" (about {_fmt(quantized)})" if quantized else ""
            fixes.append(f"use a 4-bit AWQ/GPTQ checkpoint of this model{size}")
        else:
            fixes.append("use a smaller model: its weights take most of the budget")
        total = (fixed + kv_bytes_for_context(bpt, context)) / spec.gpu_memory_fraction
        fixes.append(
            f"or a GPU with at least {total / GIB:.1f} GiB "
            f"(at gpu_memory_fraction {spec.gpu_memory_fraction:.2f})"
        )
    fraction = _fraction_that_fits(target, fixed + kv_bytes_for_context(bpt, context))
    if fraction is not None and fraction > spec.gpu_memory_fraction:
        when = " if nothing else uses the GPU" if target.free_bytes is None else ""
        fixes.append(f"raise gpu_memory_fraction to {fraction:.2f}{when}")
    return fixes


def _fraction_that_fits(target: GpuTarget, needed: int) -> float | None:
    """The smallest fraction (2 decimals) whose budget holds `needed`, if memory allows it."""
    fraction = math.ceil(needed / target.total_bytes * 100) / 100
    ceiling = (
        0.98
        if target.free_bytes is None
        else (target.free_after_stopping_agents() or 0) / target.total_bytes
    )
    return fraction if fraction <= ceiling else None


def _free_fixes(target: GpuTarget, free: int | None, budget: int, needed: int | None) -> list[str]:
    if free is None or free >= budget:
        return []
    fixes = []
    others = [h for h in target.holders if not h.agent and h.used_bytes]
    if others:
        listed = ", ".join(f"{h.label} ({_fmt(h.used_bytes or 0)})" for h in others)
        fixes.append(f"free GPU memory held by {listed}")
    if needed is not None:
        fraction = math.floor(free / target.total_bytes * 100) / 100
        if budget_bytes(target.total_bytes, fraction) >= needed:
            fixes.append(f"lower gpu_memory_fraction to {fraction:.2f} (still fits, less KV cache)")
    return fixes


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- Edges: NVML, the checkpoint, launch's pre-flight ------------------------------------------


def gpu_target_on_paper(gib: float) -> GpuTarget:
    return GpuTarget(
        name=f"{gib:g} GiB GPU (on paper)",
        source="--gpu-memory",
        total_bytes=int(gib * GIB),
        free_bytes=None,
        notes=["free memory not known on paper: an idle card is assumed"],
    )


def gpu_target_from_nvml(gpu_index: int = 0) -> GpuTarget:
    """The real GPU (raises GpuUnavailableError), with who holds its memory now."""
    from agent_manager.runtime.gpu import take_snapshot

    snapshot = take_snapshot()
    if gpu_index >= len(snapshot.gpus):
        raise GpuUnavailableError(f"There is no GPU {gpu_index}.")
    gpu = snapshot.gpus[gpu_index]
    holders = [
        Holder(label=p.label(), pid=p.pid, used_bytes=p.used_bytes, agent=p.agent)
        for p in snapshot.processes
        if p.gpu_index == gpu_index
    ]
    notes = list(snapshot.notes)
    if len(snapshot.gpus) > 1:
        notes.append(
            f"{len(snapshot.gpus)} GPUs found; planned against GPU {gpu_index} ({gpu.name})"
        )
    ours = [h for h in holders if h.agent]
    if ours:
        held = ", ".join(f"{h.label} {_fmt(h.used_bytes or 0)}" for h in ours)
        notes.append(f"counted as free because launch stops running agents first: {held}")
    return GpuTarget(
        name=gpu.name,
        source="nvml",
        total_bytes=gpu.memory_total_bytes,
        free_bytes=gpu.memory_free_bytes,
        holders=holders,
        notes=notes,
    )


def plan_agents(agents: list[Agent], target: GpuTarget) -> PlanReport:
    from agent_manager.plan.checkpoint import read_checkpoint

    plans = [
        plan_agent(agent, read_checkpoint(agent.spec.model, agent.spec.revision), target)
        for agent in agents
    ]
    return PlanReport(gpu=target, agents=plans)


def ensure_fits(
    agent: Agent, *, force: bool = False, sleepers: Mapping[str, int] | None = None
) -> list[str]:
    """Raise an AgentManagerError explaining why `agent` cannot fit the GPU (unless `force`).

    `sleepers` (agent → VRAM it keeps asleep) stay on the card beside it.
    Returns warnings to show (e.g. "NVML unavailable: fit not checked").
    """
    from agent_manager.plan.sleepers import beside_sleepers

    try:
        target = beside_sleepers(gpu_target_from_nvml(), sleepers or {})
    except GpuUnavailableError as error:
        return [f"NVML unavailable: fit not checked ({error.message})"]
    plan = plan_agents([agent], target).agents[0]
    if plan.verdict == "unknown":
        return [f"fit of {agent.name} not checked: " + "; ".join(plan.unknowns)]
    if plan.verdict == "fits":
        return [f"{agent.name}: {note}" for note in plan.notes]
    reason = "; ".join(plan.reasons)
    if force:
        return [f"{agent.name} does not fit {target.name}: {reason}. Launching anyway (--force)."]
    raise LaunchError(
        f"{agent.name} does not fit {target.name}: {reason}.",
        hint=f"Run `agent-manager plan {agent.name}` for the arithmetic, change "
        f"{agent.path}, or launch anyway with --force.",
        details=[f"fix: {fix}" for fix in plan.fixes],
    )
