"""The Pod KubeAI's controller builds for a vLLM `Model`, for tests to assert.

Mapping rules vendored from kubeai-project/kubeai v0.22.1 (commit
f442a2cd620cc0c903d0d0a5145bb70fb050503b; the Go sources are kept verbatim beside the chart
schema in tests/fixtures/export/kubeai-0.22.1/, Apache-2.0):
- `engine_vllm.go` `vLLMPodForModel`: command `python3 -m vllm.entrypoints.openai.api_server`,
  args `--model=<ref>` (or `/model` for pvc://), `--served-model-name=<metadata.name>`, then
  `spec.args`; env from `spec.env` sorted by key; a `dshm` Memory emptyDir at /dev/shm; startup
  probe 5400 x 2 s on /health, readiness 3 x 10 s, liveness 3 x 30 s; port 8000 "http";
- `model_controller.go` `getModelConfig`: `resourceProfile` NAME:N multiplies the profile's
  requests and limits by N; `spec.image` wins over the profile's image; `spec.envFrom` is
  appended to the container;
- `model_source.go`: hf:// adds `HF_TOKEN` from KubeAI's own Secret (key `token`, optional) as
  an `env` entry after the Model's env; pvc://NAME/PATH mounts the claim at /model (subPath
  PATH);
- `values.yaml` (chart kubeai 0.22.1): the stock resource profiles used below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "export" / "kubeai-0.22.1"
HF_SECRET = "kubeai-huggingface"  # `kubeai.huggingfaceSecretName` for a release named kubeai


def stock_profiles() -> dict[str, Any]:
    values = yaml.safe_load((SOURCES / "values.yaml").read_text())
    return values["resourceProfiles"]


def _quantity_times(value: Any, n: int) -> str:
    text = str(value)
    number = text.rstrip("KMGTPEi")
    unit = text[len(number) :]
    return f"{int(number) * n}{unit}"


def _probe(threshold: int, period: int, timeout: int) -> dict[str, Any]:
    return {
        "failureThreshold": threshold,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "successThreshold": 1,
        "httpGet": {"path": "/health", "port": "http"},
    }


def pod_for_model(model: dict[str, Any], profiles: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = model["spec"]
    profiles = profiles if profiles is not None else stock_profiles()
    name, count = spec["resourceProfile"].split(":")
    profile = profiles[name]
    n = int(count)
    requests = {k: _quantity_times(v, n) for k, v in profile.get("requests", {}).items()}
    limits = {k: _quantity_times(v, n) for k, v in profile.get("limits", {}).items()}
    scheme, ref = spec["url"].split("://", 1)
    model_flag = "/model" if scheme == "pvc" else ref
    env = [{"name": key, "value": spec.get("env", {})[key]} for key in sorted(spec.get("env", {}))]
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if scheme == "hf":
        env.append(
            {
                "name": "HF_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": HF_SECRET, "key": "token", "optional": True}
                },
            }
        )
    elif scheme == "pvc":
        claim, _, path = ref.partition("/")
        volumes.append({"name": "model", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "model", "mountPath": "/model", "subPath": path.lstrip("/")})
    container = {
        "name": "server",
        "image": spec["image"],
        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        "args": [f"--model={model_flag}", f"--served-model-name={model['metadata']['name']}"]
        + list(spec.get("args", [])),
        "env": env,
        "envFrom": list(spec.get("envFrom", [])),
        "resources": {"requests": requests, "limits": limits},
        "ports": [{"containerPort": 8000, "protocol": "TCP", "name": "http"}],
        "startupProbe": _probe(5400, 2, 2),
        "readinessProbe": _probe(3, 10, 2),
        "livenessProbe": _probe(3, 30, 3),
        "volumeMounts": mounts,
    }
    return {
        "metadata": {"namespace": model["metadata"].get("namespace")},
        "spec": {
            "tolerations": profile.get("tolerations"),
            "containers": [container],
            "volumes": volumes,
        },
    }
