"""The default agents' models as shipped with agent-manager (data/default-models.json): their
config.json and weight size, so `plan` answers for the defaults offline on a fresh machine."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from agent_manager.plan.models import CheckpointFacts, Weights
from agent_manager.plan.shape import shape_from_config

SOURCE = "shipped with agent-manager"


@cache
def _shipped() -> dict[str, Any]:
    text = resources.files("agent_manager").joinpath("data/default-models.json").read_text()
    models: dict[str, Any] = json.loads(text)["models"]
    return models


def shipped_models() -> list[str]:
    return sorted(_shipped())


def shipped_facts(model: str, revision: str | None) -> CheckpointFacts | None:
    """What we ship for `model` on its main branch; None for any other model or revision."""
    entry = _shipped().get(model)
    if entry is None or revision not in (None, "main"):
        return None
    files = entry["safetensors_files"]
    return CheckpointFacts(
        shape=shape_from_config(entry["config"]),
        config_source=SOURCE,
        weights=Weights(bytes=entry["weights_bytes"], source=f"{SOURCE}, {files} safetensors"),
    )
