"""Whether an agent's model is complete in the HF cache (offline), and which files vLLM needs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from agent_manager.adapters.hf_cache import hub_cache
from agent_manager.models.cache_state import CacheState, cache_state, inspect_cache
from agent_manager.models.selection import select_files
from agent_manager.spec.agents import parse_spec

COMMIT = "a" * 40
OTHER_COMMIT = "b" * 40
SHARDED = {
    "config.json": b"{}",
    "tokenizer.json": b"{}",
    "tokenizer_config.json": b"{}",
    "model.safetensors.index.json": json.dumps(
        {
            "weight_map": {
                "x": "model-00001-of-00002.safetensors",
                "y": "model-00002-of-00002.safetensors",
            }
        }
    ).encode(),
    "model-00001-of-00002.safetensors": b"1" * 64,
    "model-00002-of-00002.safetensors": b"2" * 64,
}


def put_in_cache(
    model: str,
    files: dict[str, bytes],
    *,
    commit: str = COMMIT,
    ref: str | None = "main",
    listing: dict[str, bytes] | None = None,
) -> Path:
    """Lay files out as huggingface_hub does: blobs, snapshot links, refs, trees/<commit>.json."""
    folder = hub_cache() / ("models--" + model.replace("/", "--"))
    snapshot = folder / "snapshots" / commit
    for name, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data + name.encode()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    snapshot.mkdir(parents=True, exist_ok=True)
    if ref:
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
    if listing is not None:
        tree = {
            "format_version": 1,
            "files": {
                name: {"size": len(data), "blob_id": "0" * 40} for name, data in listing.items()
            },
        }
        (folder / "trees").mkdir(parents=True, exist_ok=True)
        (folder / "trees" / f"{commit}.json").write_text(json.dumps(tree))
    return folder


def agent(model: str, revision: str | None = None):
    text = f"model: {model}\nport: 8000\n" + (f"revision: {revision}\n" if revision else "")
    return parse_spec("po", Path("agents/po.yaml"), text)


# -- cache state ------------------------------------------------------------------------------


def test_a_model_never_downloaded_is_missing():
    assert cache_state(agent("org/model")) is CacheState.MISSING


def test_every_needed_file_of_the_listing_present_is_complete():
    listing = {**SHARDED, "README.md": b"#", "pytorch_model.bin": b"0" * 128}
    put_in_cache("org/model", SHARDED, listing=listing)
    assert cache_state(agent("org/model")) is CacheState.COMPLETE


def test_a_missing_shard_makes_it_partial_and_is_named():
    present = {k: v for k, v in SHARDED.items() if k != "model-00002-of-00002.safetensors"}
    put_in_cache("org/model", present, listing=SHARDED)
    info = inspect_cache("org/model", None)
    assert info.state is CacheState.PARTIAL
    assert info.missing == ("model-00002-of-00002.safetensors",)


def test_a_link_whose_blob_is_gone_does_not_count():
    folder = put_in_cache("org/model", SHARDED, listing=SHARDED)
    target = (folder / "snapshots" / COMMIT / "model-00001-of-00002.safetensors").resolve()
    target.unlink()
    assert cache_state(agent("org/model")) is CacheState.PARTIAL


def test_without_a_listing_the_index_says_which_shards_are_needed():
    put_in_cache("org/model", SHARDED)
    assert cache_state(agent("org/model")) is CacheState.COMPLETE
    present = {k: v for k, v in SHARDED.items() if k != "model-00001-of-00002.safetensors"}
    put_in_cache("org/other", present)
    assert inspect_cache("org/other", None).missing == ("model-00001-of-00002.safetensors",)


def test_without_a_listing_a_config_alone_is_partial():
    """What the fit planner leaves behind: config.json fetched, weights not."""
    put_in_cache("org/model", {"config.json": b"{}"})
    assert cache_state(agent("org/model")) is CacheState.PARTIAL


def test_the_spec_revision_decides_which_snapshot_counts():
    put_in_cache("org/model", SHARDED, commit=COMMIT, ref="main", listing=SHARDED)
    put_in_cache("org/model", {"config.json": b"{}"}, commit=OTHER_COMMIT, ref="v2")
    assert cache_state(agent("org/model")) is CacheState.COMPLETE
    assert cache_state(agent("org/model", "v2")) is CacheState.PARTIAL
    assert cache_state(agent("org/model", COMMIT)) is CacheState.COMPLETE
    assert cache_state(agent("org/model", "c" * 40)) is CacheState.MISSING


def test_another_revision_in_the_cache_does_not_count():
    put_in_cache("org/model", SHARDED, commit=OTHER_COMMIT, ref=None, listing=SHARDED)
    assert cache_state(agent("org/model")) is CacheState.MISSING


def test_an_interrupted_first_file_is_partial():
    folder = put_in_cache("org/model", {}, ref="main")
    (folder / "snapshots" / COMMIT).rmdir()
    (folder / "blobs").mkdir()
    (folder / "blobs" / ("e" * 64 + ".incomplete")).write_bytes(b"half")
    assert cache_state(agent("org/model")) is CacheState.PARTIAL


def test_an_unreadable_cache_is_unknown(monkeypatch: pytest.MonkeyPatch):
    put_in_cache("org/model", SHARDED, listing=SHARDED)

    def refuse(*args: object, **kwargs: object) -> str:
        raise PermissionError("denied")

    monkeypatch.setattr(Path, "read_text", refuse)
    assert cache_state(agent("org/model")) is CacheState.UNKNOWN


# -- which files vLLM needs -------------------------------------------------------------------


def test_safetensors_win_over_every_other_weight_format():
    repo = [
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "tf_model.h5",
        "flax_model.msgpack",
        "model.onnx",
        "model.gguf",
        "model.tflite",
        "coreml/model.mlpackage",
        "onnx/model.onnx",
        "README.md",
        ".gitattributes",
        "tokenizer.json",
    ]
    selection = select_files(repo)
    assert selection.paths == ("config.json", "tokenizer.json", "model.safetensors")
    assert selection.warnings == ()


def test_tokenizer_chat_template_and_processor_files_are_kept():
    repo = [
        "added_tokens.json",
        "chat_template.jinja",
        "chat_template.json",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "preprocessor_config.json",
        "special_tokens_map.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "vocab.json",
        "vocab.txt",
        "qwen.tiktoken",
        "configuration_custom.py",
        "requirements.txt",
        "LICENSE.txt",
        "model.safetensors",
    ]
    kept = set(select_files(repo).paths)
    assert kept == set(repo) - {"requirements.txt", "LICENSE.txt"}


def test_mistral_consolidated_weights_are_skipped_next_to_hf_shards():
    repo = [
        "config.json",
        "params.json",
        "consolidated.safetensors",
        "model-00001-of-00001.safetensors",
        "model.safetensors.index.json",
    ]
    paths = select_files(repo).paths
    assert "consolidated.safetensors" not in paths
    assert "model-00001-of-00001.safetensors" in paths


def test_without_safetensors_bin_weights_are_taken_with_a_warning():
    repo = ["config.json", "pytorch_model.bin", "training_args.bin", "model.gguf"]
    selection = select_files(repo)
    assert selection.paths == ("config.json", "pytorch_model.bin")
    assert "no safetensors" in selection.warnings[0]


def test_a_repo_without_loadable_weights_says_so():
    selection = select_files(["config.json", "model.gguf"])
    assert not selection.has_weights
