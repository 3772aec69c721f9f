#!/usr/bin/env python3
"""Build the stand-in image `agent-manager-standin:0.33.0` locally; nothing is pulled.

    python3 tests/standin/build_image.py [--force]

`docker import` of a tiny tar of empty folders, with PATH set to the host Python's bin folder
and `ENTRYPOINT ["python3", "/standin/vllm_standin.py"]`. Python, the system libraries, the
stand-in script and the flag table are bind-mounted read-only when a container runs (see
`override.py`), so editing the script needs no rebuild. Fast and silent when already built.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from host_python import (  # noqa: E402  (runs as a script, not only as a package module)
    CONTAINER_STANDIN_DIR,
    IMAGE,
    container_path_env,
    image_key,
)

from tests.local_image import image_label, import_image  # noqa: E402

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


def build(force: bool = False) -> bool:
    """Import the image unless an identical one exists; True when it was (re)built."""
    key = image_key()
    if not force and image_label(IMAGE, KEY_LABEL) == key:
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
    import_image(IMAGE, changes, FOLDERS)
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
