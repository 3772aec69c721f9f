"""The export targets as tests see them: their vendored schemas, KubeAI's CEL rules, the
argv production-stack's chart template builds from a modelSpec entry, and the agents exported."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator

from agent_manager.spec.agents import Agent, parse_spec
from agent_manager.spec.engine_choice import gpu_cluster
from agent_manager.spec.loader import load_agents
from agent_manager.spec.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
FIXTURES = REPO / "tests" / "fixtures" / "export"
KUBEAI_SCHEMA = json.loads((FIXTURES / "kubeai-model-v1.openapi.json").read_text())
STACK_SCHEMA = json.loads((FIXTURES / "production-stack-values.schema.json").read_text())
KUBEAI_URL_SCHEMES = ("hf://", "pvc://", "ollama://", "s3://", "gs://", "oss://")


def default_agents() -> list[Agent]:
    return load_agents(Workspace(REPO, "repo"), machine=gpu_cluster)


def full_agent() -> Agent:
    """The golden spec with every field set (tests/golden/full.yaml)."""
    return parse_spec("full", Path("agents/full.yaml"), (GOLDEN / "full.yaml").read_text())


def check_golden(text: str, path: Path) -> None:
    """Exact expected output; UPDATE_GOLDEN=1 rewrites it after an intended change."""
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def kubeai_problems(manifest: dict[str, Any]) -> list[str]:
    """What the API server would refuse: the CRD's OpenAPI schema, then its CEL rules."""
    problems = [e.message for e in Draft7Validator(KUBEAI_SCHEMA).iter_errors(manifest)]
    spec = manifest.get("spec", {})
    if len(manifest.get("metadata", {}).get("name", "")) > 40:
        problems.append("name must not exceed 40 characters.")
    if not str(spec.get("url", "")).startswith(KUBEAI_URL_SCHEMES):
        problems.append("url must start with a known scheme")
    if "maxReplicas" in spec and spec.get("minReplicas", 0) > spec["maxReplicas"]:
        problems.append("minReplicas should be less than or equal to maxReplicas.")
    return problems


def stack_problems(values: dict[str, Any]) -> list[str]:
    return [e.message for e in Draft202012Validator(STACK_SCHEMA).iter_errors(values)]


def chart_argv(entry: dict[str, Any]) -> list[str]:
    """`vllm serve` argv as helm/templates/deployment-vllm-multi.yaml (vllm-stack 0.1.12)
    writes it for one modelSpec entry (LoRA, tools, LMCache and chat templates left out)."""
    argv = [entry["modelURL"], "--host", "0.0.0.0", "--port", "8000"]
    config = entry.get("vllmConfig")
    if config is not None:
        if "enableChunkedPrefill" in config:
            on = config["enableChunkedPrefill"]
            argv.append("--enable-chunked-prefill" if on else "--no-enable-chunked-prefill")
        on = config.get("enablePrefixCaching")
        argv.append("--enable-prefix-caching" if on else "--no-enable-prefix-caching")
        for key, flag in (
            ("maxModelLen", "--max-model-len"),
            ("dtype", "--dtype"),
            ("tensorParallelSize", "--tensor-parallel-size"),
            ("maxNumSeqs", "--max-num-seqs"),
            ("gpuMemoryUtilization", "--gpu_memory_utilization"),
        ):
            if key in config:
                argv += [flag, str(config[key])]  # Helm's `quote` of a YAML number
        argv += config.get("extraArgs", [])
    if entry.get("modelRevision"):
        argv += ["--revision", entry["modelRevision"]]
    return argv
