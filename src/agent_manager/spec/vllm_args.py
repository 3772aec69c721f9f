"""vLLM 0.33.0's `vllm serve` flags, read from vLLM's own parser, and spec → argv.

`data/serve-args-0.33.0.json` is the flag table dumped from vLLM 0.33.0's argparse parser.
Every flag this project emits, and every flag a user passes through `extra_args`, must be in it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

VLLM_VERSION = "0.33.0"
IMAGE = "vllm/vllm-openai"
IMAGE_TAG = f"v{VLLM_VERSION}"
# vLLM's CPU images: one per architecture, tagged `<version>-<arch>` (FACTS.md §1).
CPU_IMAGE = "vllm/vllm-openai-cpu"
CONTAINER_PORT = 8000
# A local model folder is mounted read-only at <MODEL_MOUNT>/<agent> inside the container.
MODEL_MOUNT = "/models"
# A stop: SIGTERM, vLLM drains in-flight requests for SHUTDOWN_TIMEOUT_S (--shutdown-timeout),
# and Docker's SIGKILL comes at STOP_GRACE_PERIOD_S (the compose stop_grace_period).
SHUTDOWN_TIMEOUT_S = 25
STOP_GRACE_PERIOD_S = 30

# `--quantization` values of 0.33.0 (`QuantizationMethods`); the parser itself has no choices.
QUANTIZATION_METHODS = frozenset(
    "awq auto_awq fp8 fbgemm_fp8 fp_quant modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed "
    "auto_gptq gptq gptq_marlin awq_marlin humming compressed-tensors experts_int8 quark "
    "moe_wna16 torchao inc mxfp4 gpt_oss_mxfp4 deepseek_v4_fp8 online fp8_per_tensor "
    "fp8_per_block fp8_per_channel int8_per_channel_weight_only nvfp4_per_token mxfp8".split()
)
# `--kv-cache-dtype` values of 0.33.0 (`CacheDType`) that apply to standard attention.
KV_CACHE_DTYPES = frozenset(
    "auto float16 bfloat16 fp8 fp8_e4m3 fp8_e5m2 fp8_inc nvfp4 int8_per_token_head "
    "fp8_per_token_head".split()
)
# llama.cpp quant type names people copy from GGUF model pages.
GGUF_QUANT_NAMES = frozenset(
    "q2_k q3_k_s q3_k_m q3_k_l q4_0 q4_1 q4_k_s q4_k_m q5_0 q5_1 q5_k_s q5_k_m q6_k q8_0 "
    "iq2_xxs iq2_xs iq3_xxs iq3_s iq4_nl iq4_xs f16 bf16_gguf gguf".split()
)
# Keys `--override-generation-config` honours.
GENERATION_KEYS = (
    "temperature top_p top_k min_p repetition_penalty presence_penalty frequency_penalty "
    "max_new_tokens skip_special_tokens".split()
)


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    dest: str
    takes_value: bool
    nargs: str | None
    choices: tuple[str, ...] | None
    default: Any


class FlagTable:
    def __init__(self, entries: Iterable[dict[str, Any]]):
        self._by_name: dict[str, Flag] = {}
        for entry in entries:
            if "flags" not in entry:
                continue  # the positional model_tag
            flag = Flag(
                names=tuple(entry["flags"]),
                dest=entry["dest"],
                takes_value=bool(entry.get("takes_value")),
                nargs=entry.get("nargs"),
                choices=tuple(str(c) for c in entry["choices"]) if entry.get("choices") else None,
                default=entry.get("default"),
            )
            for name in flag.names:
                self._by_name[name] = flag

    def lookup(self, name: str) -> Flag | None:
        """Find a flag as vLLM's FlexibleArgumentParser does: '_' and '-' are the same."""
        if name in self._by_name:
            return self._by_name[name]
        if name.startswith("--"):
            return self._by_name.get("--" + name[2:].replace("_", "-"))
        return None

    def closest(self, name: str) -> str | None:
        long_names = [n for n in self._by_name if n.startswith("--")]
        match = difflib.get_close_matches(name.replace("_", "-"), long_names, n=1, cutoff=0.75)
        return match[0] if match else None

    def __contains__(self, name: str) -> bool:
        return self.lookup(name) is not None


@cache
def flag_table() -> FlagTable:
    text = (resources.files("agent_manager") / "data" / "serve-args-0.33.0.json").read_text()
    return FlagTable(json.loads(text))


class ArgvProblem(ValueError):
    """One reason vLLM 0.33.0 would refuse an argv (what argparse would say, in plain words)."""


def check_flags(args: list[str], table: FlagTable | None = None) -> list[tuple[str, Flag]]:
    """Walk flags the way argparse would and return (flag as written, Flag) pairs.

    Raises ArgvProblem for an unknown flag, a missing value, or a value outside the choices.
    """
    table = table or flag_table()
    found: list[tuple[str, Flag]] = []
    i = 0
    while i < len(args):
        token = _optimization_shorthand(args[i])
        if not token.startswith("-") or token == "-":
            raise ArgvProblem(f"'{token}' is not a flag (a value without a flag before it)")
        name, has_inline, inline = token.partition("=")
        if "." in name:
            # `--compilation-config.mode 3`, `-cc.mode=3`: one key of a config flag, whose
            # value vLLM reads as JSON (or as text), always the next word when not inline.
            found.append(_dotted(name, table))
            i += 1 if has_inline else 2
            if not has_inline and i > len(args):
                raise ArgvProblem(f"{name} needs a value")
            continue
        flag = table.lookup(name)
        if flag is None:
            close = table.closest(name)
            hint = f" (did you mean {close}?)" if close else ""
            raise ArgvProblem(f"vLLM {VLLM_VERSION} has no flag {name}{hint}")
        found.append((name, flag))
        i += 1
        if not flag.takes_value:
            if has_inline:
                raise ArgvProblem(f"{name} takes no value")
            continue
        values: list[str] = []
        if has_inline:
            values.append(inline)
        elif flag.nargs == "+":
            while i < len(args) and not args[i].startswith("--"):
                values.append(args[i])
                i += 1
        elif flag.nargs == "?":
            if i < len(args) and not args[i].startswith("-"):
                values.append(args[i])
                i += 1
        elif i < len(args) and not (args[i].startswith("-") and args[i][1:2].isalpha()):
            values.append(args[i])
            i += 1
        if not values and flag.nargs != "?":
            raise ArgvProblem(f"{name} needs a value")
        if flag.choices:
            for value in values:
                if value not in flag.choices:
                    allowed = ", ".join(flag.choices)
                    raise ArgvProblem(f"{name} {value}: invalid choice (allowed: {allowed})")
    return found


def cpu_arch(machine: str) -> str:
    """The CPU image's architecture suffix for `platform.machine()`: arm64 or x86_64."""
    return "arm64" if machine.lower() in ("aarch64", "arm64", "armv8l") else "x86_64"


def _optimization_shorthand(token: str) -> str:
    """vLLM reads `-O3`, `-O=3` and `-Odecode` as `--optimization-level=<value>`."""
    if token == "-O":
        return "--optimization-level"
    if token.startswith("-O="):
        return "--optimization-level=" + token[3:]
    if token.startswith("-O"):
        return "--optimization-level=" + token[2:]
    return token


def _dotted(name: str, table: FlagTable) -> tuple[str, Flag]:
    base = name.split(".", 1)[0]
    flag = table.lookup(base)
    if flag is None or not flag.takes_value:
        raise ArgvProblem(f"{name}: {base} is not a vLLM {VLLM_VERSION} config flag with keys")
    return name, flag
