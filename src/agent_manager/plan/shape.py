"""A model's shape, read from its config.json: what the memory arithmetic needs, nothing else.

Pure: a dict in, a `ModelShape` out. The context limit is derived the way vLLM 0.33 derives
`max_model_len` (`_get_and_verify_max_len` in `vllm/config/model.py`): the smallest of the
length keys config.json carries, times the RoPE scaling factor for the RoPE types whose
`max_position_embeddings` is not already scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The keys vLLM reads a model's length from; the smallest one present wins.
_LENGTH_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
# RoPE types whose max_position_embeddings already includes the scaling: vLLM does not
# multiply by `factor` for these (YaRN, LongRoPE and Llama 3 leave it scaled).
_PRESCALED_ROPE = {"su", "longrope", "llama3", "yarn", "deepseek_yarn", "deepseek_llama_scaling"}


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
    context_limit: int | None = None  # vLLM's derived max_model_len (RoPE scaling included)


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
        attention_note=_attention_note(text),
        context_limit=context_limit(text),
    )


def _attention_note(text: dict[str, Any]) -> str | None:
    layer_types = [str(kind) for kind in text.get("layer_types") or []]
    if text.get("kv_lora_rank"):
        return "uses MLA attention: its KV cache is smaller than the standard formula"
    if text.get("use_sliding_window") or "sliding_attention" in layer_types:
        return "uses sliding-window layers: their KV cache is smaller than the standard formula"
    if any("mamba" in kind or "linear" in kind for kind in layer_types):
        return "is a hybrid (Mamba/linear attention) model: the standard KV formula does not apply"
    return None


def context_limit(text: dict[str, Any]) -> int | None:
    """The longest max_context vLLM accepts for this model without VLLM_ALLOW_LONG_MAX_MODEL_LEN."""
    lengths = [
        value
        for key in _LENGTH_KEYS
        if isinstance(value := text.get(key), int) and not isinstance(value, bool) and value > 0
    ]
    if not lengths:
        return None
    limit = float(min(lengths))
    if "gemma3" not in str(text.get("model_type") or ""):  # Gemma 3's length is already scaled
        limit *= _rope_factor(text)
    return int(limit)


def _rope_factor(text: dict[str, Any]) -> float:
    rope = text.get("rope_parameters") or text.get("rope_scaling")
    if not isinstance(rope, dict) or not rope:
        return 1.0
    # Nested per layer type ({"full_attention": {...}, "sliding_attention": {...}}) or flat.
    nested = all(isinstance(value, dict) for value in rope.values())
    factor = 1.0
    for params in rope.values() if nested else [rope]:
        kind = params.get("rope_type") or params.get("type") or "default"
        if kind not in _PRESCALED_ROPE:
            value = params.get("factor", factor)
            factor = float(value) if isinstance(value, (int, float)) else 1.0
    return factor
