"""Test images built locally, never pulled: `docker import` of a tar of empty folders.

The stand-in image (tests/standin/build_image.py) and the real-vLLM CPU image
(tests/vllm_real/engine.py) are both built this way; what runs in them (Python, the system
libraries, a venv) is bind-mounted read-only when a container starts. Each image carries a
label with a key of its recipe, so an identical image is not rebuilt. Standard library only.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Sequence


def empty_rootfs_tar(folders: Sequence[tuple[str, int]]) -> bytes:
    """A tar holding only the named folders, with their modes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in folders:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.mtime = 0
            tar.addfile(info)
    return buffer.getvalue()


def image_label(image: str, label: str) -> str | None:
    """The label's value on a local image; None when the image (or the label) is absent."""
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout or "null") or {}
    return labels.get(label)


def import_image(image: str, changes: Sequence[str], folders: Sequence[tuple[str, int]]) -> None:
    """`docker import` the empty folders as `image`, with Dockerfile `changes` applied."""
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    command += ["-", image]
    tar = empty_rootfs_tar(folders)
    result = subprocess.run(command, input=tar, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"docker import failed ({result.returncode}): {result.stderr.decode().strip()}"
        )
