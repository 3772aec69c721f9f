"""A tiny Qwen2-architecture model made on the spot: nothing comes from a hub.

Random bf16 weights in safetensors (written by hand: the format is a JSON header and raw bytes),
a byte-level BPE tokenizer trained with `tokenizers` on a few sentences, and a ChatML chat
template. About 250 KB. head_dim is 64: vLLM's CPU attention kernel refuses 16.

    python3 tests/vllm_real/tiny_model.py DIR
"""

from __future__ import annotations

import json
import random
import struct
import sys
from pathlib import Path

HIDDEN = 64
HEADS = 1
KV_HEADS = 1
HEAD_DIM = 64
INTERMEDIATE = 128
LAYERS = 2
VOCAB = 384
MAX_POSITIONS = 1024
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CORPUS = [
    "The architect weighs designs and trade-offs before anyone writes code.",
    "The developer writes small modules, tests them, and ships them.",
    "The product owner says what users need and why it matters now.",
    "Hello! How can I help you today? Say hello in one word.",
    "Agents run on vLLM, one at a time, on a GPU or on the CPU.",
] * 20


def config() -> dict[str, object]:
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "vocab_size": VOCAB,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "use_sliding_window": False,
        "sliding_window": None,
        "max_window_layers": LAYERS,
        "attention_dropout": 0.0,
    }


def tensor_shapes() -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {
        "model.embed_tokens.weight": [VOCAB, HIDDEN],
        "model.norm.weight": [HIDDEN],
    }
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": [HIDDEN],
            p + "post_attention_layernorm.weight": [HIDDEN],
            p + "self_attn.q_proj.weight": [q, HIDDEN],
            p + "self_attn.q_proj.bias": [q],
            p + "self_attn.k_proj.weight": [kv, HIDDEN],
            p + "self_attn.k_proj.bias": [kv],
            p + "self_attn.v_proj.weight": [kv, HIDDEN],
            p + "self_attn.v_proj.bias": [kv],
            p + "self_attn.o_proj.weight": [HIDDEN, q],
            p + "mlp.gate_proj.weight": [INTERMEDIATE, HIDDEN],
            p + "mlp.up_proj.weight": [INTERMEDIATE, HIDDEN],
            p + "mlp.down_proj.weight": [HIDDEN, INTERMEDIATE],
        }
    return shapes


def _bf16(values: list[float]) -> bytes:
    """bfloat16 is the top half of a float32."""
    packed = struct.pack(f"<{len(values)}f", *values)
    return b"".join(packed[i + 2 : i + 4] for i in range(0, len(packed), 4))


def safetensors_bytes(seed: int = 0) -> bytes:
    rng = random.Random(seed)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    chunks: list[bytes] = []
    offset = 0
    for name, shape in tensor_shapes().items():
        count = 1
        for dim in shape:
            count *= dim
        if name.endswith("norm.weight"):
            values = [1.0] * count
        else:
            values = [rng.gauss(0.0, 0.05) for _ in range(count)]
        data = _bf16(values)
        header[name] = {
            "dtype": "BF16",
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return str(tokenizer.to_str())


def write_model(target: Path) -> Path:
    """Write the model folder (idempotent: same bytes every time); return it."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(config(), indent=2) + "\n")
    (target / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 0, "eos_token_id": 2, "max_new_tokens": 64}) + "\n"
    )
    (target / "model.safetensors").write_bytes(safetensors_bytes())
    (target / "tokenizer.json").write_text(tokenizer_json())
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": MAX_POSITIONS,
        "chat_template": CHAT_TEMPLATE,
    }
    (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    return target


if __name__ == "__main__":
    print(write_model(Path(sys.argv[1])))
