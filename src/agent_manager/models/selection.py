"""Which files of a model repo vLLM needs to serve it — pure, from the repo's file list.

vLLM 0.33 (load format `auto`) reads the config, the tokenizer and chat template, and the
weights in safetensors; it falls back to PyTorch `.bin`/`.pt` files only when a repo has no
safetensors. Everything else (GGUF, ONNX, TensorFlow, Flax, Core ML, README, images,
subfolders such as `original/` or `onnx/`) is never read, and can be many gigabytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

# Small metadata vLLM or transformers may read: configs, generation config, tokenizer files
# (tokenizer.json, tokenizer_config.json, vocab.json/merges.txt, vocab.txt, tokenizer.model,
# *.tiktoken), special_tokens_map.json, chat_template.json/.jinja, preprocessor configs and
# the Python files of trust_remote_code models. All are kilobytes to a few megabytes.
METADATA_SUFFIXES = (".json", ".jinja", ".txt", ".model", ".tiktoken", ".py")
SAFETENSORS = ".safetensors"
PYTORCH_SUFFIXES = (".bin", ".pt")
# Checkpoints in the PyTorch formats that are training state, not weights (vLLM skips them too).
NOT_WEIGHTS = frozenset(
    {
        "training_args.bin",
        "optimizer.bin",
        "optimizer.pt",
        "scheduler.pt",
        "scaler.pt",
        "rng_state.pth",
    }
)
# Mistral's own single-file format next to the Hugging Face shards; vLLM's `auto` loader uses
# the shards when both exist.
MISTRAL_CONSOLIDATED = "consolidated"
NO_SAFETENSORS_WARNING = (
    "has no safetensors weights; vLLM will load the PyTorch .bin/.pt files instead "
    "(slower to load, and pickle files can run code: trust the repo)"
)


@dataclass(frozen=True)
class Selection:
    """The files to fetch, and what a user should know about the choice."""

    paths: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    has_weights: bool = True


def select_files(paths: Iterable[str]) -> Selection:
    """The subset of a repo's files vLLM needs, in download order (small files first)."""
    top = sorted(p for p in paths if "/" not in p)
    safetensors = [p for p in top if p.endswith(SAFETENSORS)]
    hf_shards = [p for p in safetensors if not p.startswith(MISTRAL_CONSOLIDATED)]
    warnings: list[str] = []
    if hf_shards:
        weights = hf_shards
        weight_suffix = SAFETENSORS
    elif safetensors:
        weights = safetensors
        weight_suffix = SAFETENSORS
    else:
        weights = [p for p in top if p.endswith(PYTORCH_SUFFIXES) and p not in NOT_WEIGHTS]
        weight_suffix = ".bin"
        if weights:
            warnings.append(NO_SAFETENSORS_WARNING)
    weight_set = set(weights)
    metadata = [p for p in top if p.endswith(METADATA_SUFFIXES) and _is_wanted_metadata(p)]
    # An index belongs to its weights: keep `model.safetensors.index.json`, drop
    # `pytorch_model.bin.index.json` when safetensors are what we fetch.
    metadata = [
        p
        for p in metadata
        if not p.endswith(".index.json") or _indexed_weights_kept(p, weight_suffix, weight_set)
    ]
    return Selection(
        paths=tuple(metadata + weights),
        warnings=tuple(warnings),
        has_weights=bool(weights),
    )


def _is_wanted_metadata(path: str) -> bool:
    name = PurePosixPath(path).name.lower()
    # requirements.txt / LICENSE.txt and the like are not read by anyone serving the model.
    if name.endswith(".txt") and not (name.startswith(("merges", "vocab", "added_tokens"))):
        return False
    return True


def _indexed_weights_kept(index: str, weight_suffix: str, weights: set[str]) -> bool:
    stem = index.removesuffix(".index.json")  # model.safetensors / pytorch_model.bin
    if (
        stem.startswith(MISTRAL_CONSOLIDATED)
        and weights
        and not any(w.startswith(MISTRAL_CONSOLIDATED) for w in weights)
    ):
        return False
    return stem.endswith(weight_suffix) or (weight_suffix == ".bin" and stem.endswith(".pt"))


def weights_listed_in_index(index: dict[str, object]) -> set[str]:
    """The shard files a `*.index.json` maps tensors to."""
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        return set()
    return {str(v) for v in weight_map.values()}
