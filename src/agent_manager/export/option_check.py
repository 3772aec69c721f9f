"""Export options that become Kubernetes names or quantities, checked before anything renders.

They land in YAML and in the `kubectl create secret ... -n NS` lines of each file's header, so
a newline or a quote in one would add YAML keys or shell text; Kubernetes itself would refuse
such names anyway. Exit 2, naming the option.
"""

from __future__ import annotations

import re

from agent_manager.errors import UsageError

# RFC 1123 label (namespaces) and subdomain (PersistentVolumeClaims), as the API server checks.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A resource quantity as `kubectl` writes memory and storage: 24Gi, 512Mi, 1.5G, 100000.
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")


def _shown(value: str) -> str:
    return repr(value) if not value.isprintable() else f"'{value}'"


def namespace(value: str | None) -> str | None:
    if value is not None and not (_LABEL.fullmatch(value) and len(value) <= 63):
        raise UsageError(
            f"--namespace {_shown(value)} is not a Kubernetes namespace name.",
            hint="Use lower-case letters, digits and '-', at most 63 characters, e.g. "
            "--namespace agents.",
        )
    return value


def claim(option: str, value: str | None) -> str | None:
    if value is not None and not (_SUBDOMAIN.fullmatch(value) and len(value) <= 253):
        raise UsageError(
            f"{option} {_shown(value)} is not a PersistentVolumeClaim name.",
            hint="Use lower-case letters, digits, '-' and '.', e.g. --model-pvc models.",
        )
    return value


def quantity(option: str, value: str | None) -> str | None:
    if value is not None and not _QUANTITY.fullmatch(value):
        raise UsageError(
            f"{option} {_shown(value)} is not a Kubernetes quantity.",
            hint="Write a number with a unit, e.g. 24Gi or 512Mi.",
        )
    return value
