"""How sizes are shown to people: one function for every byte count agent-manager prints."""

from __future__ import annotations

GIB = 1024**3
MIB = 1024**2
DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB")


def format_bytes(count: float | None, digits: int = 1, *, decimal: bool = False) -> str:
    """Bytes for people; "-" when unknown.

    GPU memory is counted in GiB, as NVML, vLLM and nvidia-smi do ("14.1 GiB"); file sizes
    (`decimal=True`) in decimal units scaled to fit, as the hub shows them ("302.3 kB").
    """
    if count is None:
        return "-"
    if not decimal:
        return f"{count / GIB:.{digits}f} GiB"
    for unit in DECIMAL_UNITS[:-1]:
        if abs(count) < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.{digits}f} {unit}"
        count /= 1000
    return f"{count:.{digits}f} {DECIMAL_UNITS[-1]}"
