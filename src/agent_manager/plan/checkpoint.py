"""What the planner needs to know about a checkpoint: its config.json and the size of its weights.

The local Hugging Face cache first (works offline), then what we ship for the default models
(plan/shipped.py), then the hub's file metadata; what none can tell is reported as unknown,
never guessed silently. Estimates from config.json are labelled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent_manager.adapters.hf_cache import snapshot_dir
from agent_manager.adapters.hub import RepoFile
from agent_manager.errors import AgentManagerError
from agent_manager.plan.memory import estimate_weight_bytes
from agent_manager.plan.models import CheckpointFacts, Weights
from agent_manager.plan.shape import PlanInputError, shape_from_config
from agent_manager.plan.shipped import shipped_facts

INDEX_FILE = "model.safetensors.index.json"


def local_weight_bytes(snapshot: Path) -> tuple[int, int] | None:
    """(bytes, files) of the snapshot's safetensors, when every shard is in the cache."""
    index = snapshot / INDEX_FILE
    names: set[str]
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            names = set(weight_map.values())
        except (OSError, ValueError, AttributeError):
            return None
    else:
        names = {path.name for path in snapshot.glob("*.safetensors")}
    if not names:
        return None
    total = 0
    for name in names:
        try:
            total += (snapshot / name).stat().st_size  # follows the blob symlink
        except OSError:  # a shard not downloaded (yet)
            return None
    return total, len(names)


def _hub_weight_bytes(model: str, listing: list[RepoFile]) -> tuple[int, int]:
    files = [f for f in listing if _is_root_safetensors(f.path)]
    if not files:
        raise AgentManagerError(f"{model} has no *.safetensors files on the hub")
    # Mistral-style repos carry the same weights twice; vLLM loads the sharded copy.
    if len(files) > 1:
        files = [f for f in files if f.path != "consolidated.safetensors"] or files
    return sum(f.size for f in files), len(files)


def _is_root_safetensors(path: str) -> bool:
    return "/" not in path and path.endswith(".safetensors")


def _ask_hub(model: str, revision: str | None) -> tuple[list[RepoFile] | None, str | None]:
    """The repo's file list, or why the hub could not give it.

    One API call that fails at once when offline. config.json is fetched only after the hub
    has answered here: huggingface_hub retries a failed download with backoff for ~25 s, which
    would stall `plan` and `launch` on a machine without network.
    """
    from agent_manager.adapters import hub

    try:
        return hub.repo_files(model, revision), None
    except AgentManagerError as error:
        return None, error.message
    except Exception as error:  # noqa: BLE001 - a plan says what it could not learn
        return None, str(error)


def read_checkpoint(model: str, revision: str | None) -> CheckpointFacts:
    """Never raises: what could not be learned goes into `problems`."""
    problems: list[str] = []
    # A local model folder (an absolute path) is read like a cache snapshot; no hub to ask.
    folder = model.startswith("/")
    snapshot = Path(model) if folder else snapshot_dir(model, revision)
    local_config = snapshot / "config.json" if snapshot is not None else None
    if local_config is not None and not local_config.is_file():
        local_config = None
    local = local_weight_bytes(snapshot) if snapshot is not None else None
    listing: list[RepoFile] | None = None
    hub_problem: str | None = "a local folder" if folder else None
    shipped = None if folder else shipped_facts(model, revision)
    if shipped is not None and (local_config is None or local is None):
        return shipped  # a default model not (fully) cached: no hub round trip needed
    if not folder and (local_config is None or local is None):
        listing, hub_problem = _ask_hub(model, revision)

    shape = None
    config_source = "unknown"
    try:
        if local_config is not None:
            config, config_source = _read_json(local_config), "local cache"
        elif listing is not None:
            from agent_manager.adapters import hub

            config = _read_json(hub.download_file(model, revision, "config.json"))
            config_source = "hub"
        else:
            raise AgentManagerError(f"hub not reached ({hub_problem})")
        shape = shape_from_config(config)
    except AgentManagerError as error:
        problems.append(f"config.json not in the cache and not from the hub: {error.message}")
    except PlanInputError as error:
        problems.append(str(error))
    except Exception as error:  # noqa: BLE001 - a plan says what it could not learn, never crashes
        problems.append(f"config.json of {model} could not be read: {error}")

    if local is not None:
        weights = Weights(bytes=local[0], source=f"local cache, {local[1]} safetensors files")
    else:
        # The hub's own reason is already in `problems` (config.json); say it once.
        why = "hub not reached" if hub_problem else ""
        if listing is not None:
            try:
                size, count = _hub_weight_bytes(model, listing)
                weights = Weights(bytes=size, source=f"hub file list, {count} safetensors files")
            except AgentManagerError as error:
                why = error.message
        if listing is None or why:
            estimate = estimate_weight_bytes(shape) if shape is not None else None
            if estimate is not None:
                weights = Weights(
                    bytes=estimate, source="estimated from config.json", estimated=True
                )
            else:
                weights = Weights(bytes=None, source=f"not in the cache; hub: {why}")
    if hub_problem and local_config is not None and not folder:
        # config.json came from the cache, so the plan goes on; say why weights are estimated.
        problems.append(f"the hub did not answer, weights estimated ({hub_problem})")
    return CheckpointFacts(
        shape=shape, config_source=config_source, weights=weights, problems=problems
    )


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
