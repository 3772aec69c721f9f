"""Pure: the failure rules. Each turns matching log lines into what happened and what to do.

The patterns are vLLM's own messages (vLLM 0.33, FACTS.md §5; lines recorded from the real
vLLM 0.32 CPU server in tests/fixtures/vllm-0.32-cpu/), huggingface_hub's and PyTorch's, and
what Docker / the NVIDIA container toolkit print when `docker compose up` cannot start the
container. Rules are tried in order, most specific first; the first rule with a matching line
wins.
"""

from __future__ import annotations

from agent_manager.diagnosis.failure_cpu import (
    CPU_KV_NONE,
    CPU_KV_SPACE,
    SLEEP_UNSUPPORTED,
    cpu_kv_none,
    cpu_kv_space,
    sleep_unsupported,
)
from agent_manager.diagnosis.failure_memory import (
    context_too_long,
    free_memory,
    max_len_above_model,
    no_kv_memory,
    out_of_memory,
)
from agent_manager.diagnosis.failure_text import Context, Rule, rx, search, spec_file
from agent_manager.spec.vllm_args import MODEL_MOUNT


def _no_runtime(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "Docker has no NVIDIA runtime: it could not give the container a GPU "
        '("could not select device driver").',
        "Install the NVIDIA Container Toolkit (package nvidia-container-toolkit), then run "
        "`sudo nvidia-ctk runtime configure --runtime=docker` and "
        "`sudo systemctl restart docker`. Check with `docker run --rm --gpus all ubuntu "
        "nvidia-smi`.",
    )


def _driver_too_old(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "The NVIDIA driver is too old for the vLLM image (vLLM 0.33 is built for CUDA 13).",
        "Update the NVIDIA driver to R580 or newer (`nvidia-smi` shows the version), or pin "
        f"an older image with image_tag in {spec_file(ctx)}. On datacenter GPUs, "
        "VLLM_ENABLE_CUDA_COMPATIBILITY=1 in env: can bridge R535/R570.",
    )


def _image_pull(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r"(?:pull access denied for|manifest for|image)\s+([\w./:-]+)")
    image = f" {match.group(1)}" if match else ""
    return (
        f"The image{image} could not be pulled: it does not exist or the registry cannot be "
        "reached.",
        f"Check image_tag in {spec_file(ctx)} (default vllm/vllm-openai:v0.33.0) and the network "
        "(`docker pull vllm/vllm-openai:v0.33.0`); behind a proxy, configure Docker's proxy.",
    )


def _port_taken(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r"(?:Bind for|listen tcp[46]?) \[?([\d.:a-f]*)\]?:(\d+)")
    where = f" {match.group(1) or '0.0.0.0'}:{match.group(2)}" if match else ""
    return (
        f"The host port{where} is already in use, so Docker could not publish the agent's API.",
        f"Stop what holds it (`ss -ltnp` shows it), or give the agent another port in "
        f"{spec_file(ctx)}.",
    )


def _name_in_use(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r'The container name "?/?([\w.-]+)"? is already in use')
    name = f" {match.group(1)}" if match else ""
    return (
        f"A container named{name} already exists (created outside agent-manager, or by "
        "another instance).",
        f"Remove it with `agent-manager stop {ctx.agent}` or `docker rm -f{name}`, then launch "
        "again.",
    )


def _unknown_argument(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r"unrecognized arguments: (.*)")
    args = match.group(1).strip() if match else "?"
    return (
        f"vLLM 0.33 does not know the argument(s): {args}.",
        f"Remove or rename them in extra_args of {spec_file(ctx)} or in your override file "
        "(e.g. the swap-space and disable-log-requests flags were removed; `command:` must "
        "not start with `serve`).",
    )


def _bad_value(lines: list[str], ctx: Context) -> tuple[str, str]:
    # argparse: "vllm serve: error: argument --max-num-seqs: invalid int value: 'many'"
    # (a flag with an alias reads "argument --compilation-config/-cc: ...").
    parsed = search(lines, r"error: argument (-[\w.-]+)(?:/-[\w.-]+)*: (.+)")
    if parsed:
        return (
            f"vLLM refused the value of {parsed.group(1)}: {parsed.group(2).rstrip('.')}.",
            f"Fix {parsed.group(1)} in extra_args of {spec_file(ctx)} (or in your override "
            "file); `vllm serve --help` lists what each flag takes.",
        )
    match = search(lines, r"(Unknown quantization method: [^.]+)")
    what = match.group(1) if match else "An argument has a value vLLM refuses"
    return (
        f"{what}.",
        f"Fix quantization in {spec_file(ctx)} (AWQ/GPTQ/FP8 checkpoints are detected "
        "automatically: the field can be left out).",
    )


def _folder_missing(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r"bind source path does not exist: (\S+)")
    path = f" {match.group(1)}" if match else ""
    return (
        f"A folder the compose file mounts does not exist:{path}.",
        f"If it is the model folder, fix model: in {spec_file(ctx)} (an absolute path to a "
        "folder holding config.json, the tokenizer and the *.safetensors weights).",
    )


def _shm_too_small(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r"Insufficient space in /dev/shm[^:]*: ([^.]+)")
    detail = f" ({match.group(1)})" if match else ""
    return (
        f"/dev/shm is too small for vLLM's processes{detail}.",
        "The generated compose file sets `ipc: host`; if your override file replaces it, "
        "remove that or give the container `shm_size: 4g`.",
    )


def _gated(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(
        lines,
        r"(?:Access to model|gated repo for url https://huggingface\.co/(?:api/models/)?)"
        r"\s*([\w.-]+/[\w.-]+)",
    )
    repo = f" {match.group(1)}" if match else ""
    if search(lines, r"\b403\b|not in the authorized list|token has the correct permissions"):
        # 403: the token is valid, but this account may not read the repo (yet).
        where = f"https://huggingface.co/{match.group(1)}" if match else "the model's page"
        return (
            f"Hugging Face refused access to the model repo{repo} (403): the token works, but "
            "its account has no access to this gated repo yet, or the token may not read it.",
            f"Request access on {where} and wait for approval; with a fine-grained token, "
            "allow it to read gated repos (huggingface.co/settings/tokens).",
        )
    return (
        f"The model repo{repo} is gated or private: Hugging Face answered 401 without a valid "
        "token.",
        "Accept the model's licence on its Hugging Face page, create a read token, and export "
        f"HF_TOKEN=<token> before `agent-manager launch {ctx.agent}` (or run "
        "`agent-manager download-models` with the token first).",
    )


def _folder_empty(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r"local directory specified: '(/[^']*)'")
    where = f" (mounted at {match.group(1)})" if match else ""
    return (
        f"The local model folder{where} holds no model: vLLM found no config.json in it.",
        f"Point model: in {spec_file(ctx)} at a folder holding config.json, the tokenizer and "
        f"the *.safetensors weights (what `save_pretrained` writes); it is mounted at "
        f"{MODEL_MOUNT}/{ctx.agent}.",
    )


def _offline_not_cached(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "vLLM started offline (HF_HUB_OFFLINE=1) but the model is not in the Hugging Face cache.",
        f"Run `agent-manager download-models {ctx.agent}`, then launch again (or unset "
        "HF_HUB_OFFLINE in your override file so vLLM may download it).",
    )


def _not_found(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(lines, r"Invalid repository ID or local directory specified: '([^']+)'")
    repo = f" '{match.group(1)}'" if match else ""
    return (
        f"The model{repo} does not exist on Hugging Face (or is not a model folder).",
        f"Check the spelling of model (and revision) in {spec_file(ctx)}; the id is "
        "<owner>/<name> as shown on huggingface.co.",
    )


def _killed(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        'vLLM was stopped while it was starting (SIGTERM/Ctrl-C: "KeyboardInterrupt: terminated").',
        f"Start it again with `agent-manager launch {ctx.agent}`.",
    )


RULES: tuple[Rule, ...] = (
    Rule("no-nvidia-runtime", rx(r"could not select device driver"), _no_runtime),
    Rule(
        "driver-too-old",
        rx(
            r"CUDA driver version is insufficient",
            r"forward compatibility",
            r"unsatisfied condition: cuda\s*>=\s*\d+",
            r"requirement error:.*cuda",
            r"NVIDIA driver on your system is too old",
        ),
        _driver_too_old,
    ),
    Rule(
        "image-pull",
        rx(
            r"pull access denied",
            r"manifest unknown",
            r"manifest for \S+ not found",
            r"no such host",
            r"TLS handshake timeout",
            r"repository does not exist",
            r"Error response from daemon: Get \"https://",
        ),
        _image_pull,
    ),
    Rule("port-taken", rx(r"port is already allocated", r"address already in use"), _port_taken),
    Rule(
        "name-in-use",
        rx(r"The container name \S+ is already in use", r"Conflict\. The container name"),
        _name_in_use,
    ),
    Rule("model-folder-missing", rx(r"bind source path does not exist"), _folder_missing),
    Rule("unknown-argument", rx(r"unrecognized arguments:"), _unknown_argument),
    Rule(
        "invalid-value",
        rx(r"Unknown quantization method:", r"error: argument -\S+: (invalid|expected|ambig)"),
        _bad_value,
    ),
    Rule("shm-too-small", rx(r"Insufficient space in /dev/shm"), _shm_too_small),
    Rule(
        "gated-repo",
        rx(
            r"GatedRepoError",
            r"Cannot access gated repo",
            r"You are trying to access a gated repo",
            r"401 Client Error",
            r"Access to model \S+ is restricted",
        ),
        _gated,
    ),
    Rule("model-folder-empty", rx(r"local directory specified: '/"), _folder_empty),
    Rule(
        "offline-not-cached",
        rx(r"LocalEntryNotFoundError", r"outgoing traffic has been disabled"),
        _offline_not_cached,
    ),
    Rule(
        "repo-not-found",
        rx(
            r"RepositoryNotFoundError",
            r"Invalid repository ID or local directory specified",
            r"Repository Not Found for url",
        ),
        _not_found,
    ),
    Rule("sleep-unsupported", rx(SLEEP_UNSUPPORTED), sleep_unsupported),
    Rule("cpu-kv-space", rx(CPU_KV_SPACE), cpu_kv_space),
    Rule("cpu-kv-none", rx(CPU_KV_NONE), cpu_kv_none),
    Rule(
        "context-above-model",
        # Only vLLM's refusal: with VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 the same sentence is logged
        # as a warning on every start, without "To allow overriding" (vllm/config/model.py).
        rx(
            r"User-specified max_model_len \(\d+\) is greater than the derived.*To allow overriding"
        ),
        max_len_above_model,
    ),
    Rule(
        "context-too-long",
        # 0.11–0.21 spell it "models's max seq len", 0.23+ "model's": match both.
        rx(
            r"To serve at least one request with the models?'s max seq len",
            r"estimated maximum model length is \d+",
            r"Cannot auto-fit max_model_len",
        ),
        context_too_long,
    ),
    Rule("no-kv-memory", rx(r"No available memory for the cache blocks"), no_kv_memory),
    Rule(
        "free-memory",
        rx(r"on startup is less than desired GPU memory utilization"),
        free_memory,
    ),
    Rule(
        "out-of-memory",
        rx(
            r"Failed to load model - not enough GPU memory",
            r"CUDA out of memory",
            r"torch\.OutOfMemoryError",
            r"OutOfMemoryError",
        ),
        out_of_memory,
    ),
    Rule("interrupted", rx(r"KeyboardInterrupt: terminated"), _killed),
)
