#!/usr/bin/env bash
# What a lent GPU machine (H100/H200, PyTorch, nvidia-ml-py; no Docker, no vLLM, no network) can
# prove about agent-manager's GPU figures. Prints them and, where $OUT is set, writes
# $OUT/device_check.json for docs/gpu-stats.md.
#
#   scripts/device_check.sh --fetch-wheels   HERE (PyPI reachable): download into .whl/ the
#                                            packages the device image lacks (pinned below)
#   scripts/device_check.sh                  THERE: install .whl/ into /tmp/site, run the checks
#   scripts/device_check.sh --dry            anywhere: the same steps without a GPU; they stop
#                                            with the reason (exit 3), proving the script runs
#
# The device run (carry .whl; about 1 minute):
#   run(command="bash scripts/device_check.sh", carry=[".whl"], timeout_s=300)
#
# Checks (scripts/device_check.py): `gpu-stats --json` on real NVML; NVML's total next to
# torch.cuda.mem_get_info's; the CUDA context's size (NVML's used memory before and after a
# fresh process initialises CUDA); a torch process holding a known amount, attributed by pid;
# the VRAM-free wait (the switch's own GpuWatch) timed when that process exits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHEELS="$ROOT/.whl"
SITE="${DEVICE_CHECK_SITE:-/tmp/site}"
PYTHON="${PYTHON:-python3}"

# What the device image lacks (its package list: /work/.library/device/KINDS.md), at the
# versions the project's venv runs. typer is there, but another minor: ours is pinned <0.30.
PINNED=(
    pydantic==2.14.4
    pydantic-core==2.50.5
    annotated-types==0.8.0
    typing-inspection==0.4.5
    typer==0.29.2
    docker==7.2.0
)

fetch_wheels() {
    mkdir -p "$WHEELS"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 --platform any -d "$WHEELS" "${PINNED[@]}"
    du -sh "$WHEELS"
    ls "$WHEELS"
}

install_wheels() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
        echo "device_check: the carried wheels are for CPython 3.12 (the device image); this" \
            "is $("$PYTHON" --version 2>&1). Use \`scripts/device_check.sh --dry\` here." >&2
        exit 2
    fi
    if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        echo "device_check: no wheels in $WHEELS; run \`scripts/device_check.sh --fetch-wheels\`" \
            "here first and carry .whl" >&2
        exit 2
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl
}

case "${1:-}" in
    --fetch-wheels)
        fetch_wheels
        exit 0
        ;;
    --dry)
        # Here the Python may not be the device's 3.12: check that the wheels install THERE
        # (pip's resolver for cp312/x86_64), then run the script on this machine's venv.
        SITE="$(mktemp -d)"
        trap 'rm -rf "$SITE"' EXIT
        ls "$WHEELS"/*.whl >/dev/null 2>&1 || { install_wheels; }
        "$PYTHON" -m pip install -q --dry-run --no-index --no-deps --only-binary=:all: \
            --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 \
            --target "$SITE" "$WHEELS"/*.whl
        echo "device_check: the ${#PINNED[@]} carried wheels install on the device's cp312 x86_64"
        DRY_PYTHON="$PYTHON"
        [[ -x "$ROOT/.venv/bin/python" ]] && DRY_PYTHON="$ROOT/.venv/bin/python"
        PYTHONPATH="$ROOT/src:$ROOT" "$DRY_PYTHON" scripts/device_check.py --dry
        ;;
    "")
        install_wheels
        PYTHONPATH="$SITE:$ROOT/src:$ROOT" PYTHONUNBUFFERED=1 "$PYTHON" scripts/device_check.py
        ;;
    *)
        echo "usage: scripts/device_check.sh [--fetch-wheels | --dry]" >&2
        exit 2
        ;;
esac
