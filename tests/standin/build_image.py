#!/usr/bin/env python3
"""Build the stand-in image `agent-manager-standin:0.33.0` locally; nothing is pulled.

    python3 tests/standin/build_image.py [--force]

`docker import` of a tiny tar of empty folders, with PATH set to the host Python's bin folder
and `ENTRYPOINT ["python3", "/standin/vllm_standin.py"]`. Python, the system libraries, the
stand-in script and the flag table are bind-mounted read-only when a container runs (see
`override.py`), so editing the script needs no rebuild. Fast and silent when already built.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host_python import (  # noqa: E402  (runs as a script, not only as a package module)
    CONTAINER_STANDIN_DIR,
    IMAGE,
    container_path_env,
    image_key,
)

KEY_LABEL = "io.agent-manager.standin-key"
FOLDERS = (
    ("tmp", 0o1777),
    ("standin", 0o755),
    ("standin-flags", 0o755),
    ("root", 0o700),
    ("root/.cache", 0o755),
    ("root/.cache/huggingface", 0o755),
    ("root/.cache/vllm", 0o755),
    ("etc", 0o755),
    ("usr", 0o755),
    ("dev", 0o755),
    ("proc", 0o755),
    ("sys", 0o755),
)


def rootfs_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in FOLDERS:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.mtime = 0
            tar.addfile(info)
    return buffer.getvalue()


def built_key() -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", IMAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout or "null") or {}
    return labels.get(KEY_LABEL)


def build(force: bool = False) -> bool:
    """Import the image unless an identical one exists; True when it was (re)built."""
    key = image_key()
    if not force and built_key() == key:
        return False
    changes = [
        f"ENV PATH={container_path_env()}",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        "ENV PYTHONUNBUFFERED=1",
        "ENV VLLM_USAGE_SOURCE=production-docker-image",
        f'ENTRYPOINT ["python3", "{CONTAINER_STANDIN_DIR}/vllm_standin.py"]',
        "WORKDIR /",
        f"LABEL {KEY_LABEL}={key}",
    ]
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    command += ["-", IMAGE]
    result = subprocess.run(command, input=rootfs_tar(), capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"docker import failed ({result.returncode}): {result.stderr.decode().strip()}"
        )
    return True


def main(argv: list[str]) -> int:
    started = time.monotonic()
    try:
        rebuilt = build(force="--force" in argv)
    except (RuntimeError, OSError) as error:
        print(f"stand-in image: {error}", file=sys.stderr)
        return 1
    verb = "built" if rebuilt else "up to date"
    print(f"stand-in image {IMAGE}: {verb} ({time.monotonic() - started:.1f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
