"""The hostile-input corpus: one row per way a user (or the machine) can get things wrong.

Each `Case` says what to break in a fresh workspace (`setup`), which command to run, the exit
code, and words the message must contain (the file, field or agent it is about). The runner
(`test_hostile_input.py`) also checks, for every row: no traceback, no "Unexpected error", no
file lost or changed outside `may_change`, no temporary file left behind, and every compose
file it finds still valid YAML.

To add a case, append a row. `{ws}` in argv, env and `says` is the workspace folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PO = {
    "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
    "port": 8002,
    "max_context": 32768,
    "gpu_memory_fraction": 0.9,
}
HF_SHAPED = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"  # the shape of a token, not a real one
SK_SHAPED = "sk-" + "proj-0123456789abcdefghijklmnop"


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    says: tuple[str, ...] = ()
    setup: Callable[[Path], None] | None = None
    env: dict[str, str | None] = field(default_factory=dict)
    # fixtures from conftest.py the case needs (a silent hub, no GPU, a full disk, ...)
    needs: tuple[str, ...] = ()
    home: bool = True  # pass `--home {ws}` before argv
    in_ws: bool = False  # run from inside the workspace folder (the current-directory rule)
    as_user: str | None = None  # run in a subprocess as this user (tests run as root)
    may_change: tuple[str, ...] = ("compose/docker-compose-*.yml",)
    check: Callable[[Path], None] | None = None  # extra assertions on the workspace after
    max_seconds: float = 30


# --- setup helpers -------------------------------------------------------------------------------


def spec(name: str = "po", text: str | None = None, **fields: Any) -> Callable[[Path], None]:
    """Write agents/<name>.yaml: the po defaults with `fields` on top (None removes a field)."""

    def write(ws: Path) -> None:
        body = text
        if body is None:
            data = {**PO, **fields}
            body = yaml.safe_dump({k: v for k, v in data.items() if v is not None}, sort_keys=False)
        (ws / "agents" / f"{name}.yaml").write_text(body, encoding="utf-8")

    return write


def raw(relpath: str, content: bytes | str) -> Callable[[Path], None]:
    def write(ws: Path) -> None:
        path = ws / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return write


def folder(relpath: str, replace: bool = True) -> Callable[[Path], None]:
    def make(ws: Path) -> None:
        path = ws / relpath
        if replace and (path.is_file() or path.is_symlink()):
            path.unlink()
        elif replace and path.is_dir():
            import shutil

            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)

    return make


def as_file(relpath: str) -> Callable[[Path], None]:
    def make(ws: Path) -> None:
        import shutil

        shutil.rmtree(ws / relpath)
        (ws / relpath).write_text("not a folder\n")

    return make


def dangling(relpath: str) -> Callable[[Path], None]:
    def make(ws: Path) -> None:
        import shutil

        path = ws / relpath
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        path.symlink_to(ws / "gone-away")

    return make


def chmod(relpath: str, mode: int) -> Callable[[Path], None]:
    def make(ws: Path) -> None:
        (ws / relpath).chmod(mode)

    return make


def steps(*fns: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(ws: Path) -> None:
        for fn in fns:
            fn(ws)

    return run


def compose_has(agent: str, *present: str, absent: tuple[str, ...] = ()) -> Callable[[Path], None]:
    def check(ws: Path) -> None:
        text = (ws / "compose" / f"docker-compose-{agent}.yml").read_text()
        for needle in present:
            assert needle in text, f"{needle!r} not in the compose file"
        for needle in absent:
            assert needle not in text, f"{needle!r} must not be in the compose file"

    return check


def no_compose(agent: str) -> Callable[[Path], None]:
    def check(ws: Path) -> None:
        assert not (ws / "compose" / f"docker-compose-{agent}.yml").exists()

    return check


def missing(relpath: str) -> Callable[[Path], None]:
    def check(ws: Path) -> None:
        assert not (ws / relpath).exists(), f"{relpath} must not have been created"

    return check


def _relink(path: Path, target: str = "/dev/zero") -> None:
    path.unlink()
    path.symlink_to(target)


def exists(*relpaths: str) -> Callable[[Path], None]:
    def check(ws: Path) -> None:
        for relpath in relpaths:
            assert (ws / relpath).exists(), f"{relpath} was not created"

    return check


ALIAS_BOMB = """\
model: Qwen/Qwen2.5-7B-Instruct-AWQ
port: 8002
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
"""

DUPLICATE_PORT = """\
model: Qwen/Qwen2.5-7B-Instruct-AWQ
port: 8002
max_context: 32768
port: 8000
"""

DUPLICATE_ENV = """\
model: Qwen/Qwen2.5-7B-Instruct-AWQ
port: 8002
env:
  VLLM_LOGGING_LEVEL: INFO
  VLLM_LOGGING_LEVEL: DEBUG
"""


CASES: list[Case] = [
    # 1. `$` in user values never reaches Compose interpolation --------------------------------
    Case(
        "dollar-in-revision",
        ("compose", "po"),
        0,
        setup=spec(revision="${HF_TOKEN}"),
        check=compose_has("po", "$${HF_TOKEN}"),
    ),
    Case(
        "dollar-in-extra-args",
        ("compose", "po"),
        0,
        setup=spec(extra_args=["--chat-template", "$HOME/templates/chat.jinja"]),
        check=compose_has("po", "$$HOME/templates/chat.jinja"),
    ),
    Case(
        "dollar-in-env-value",
        ("compose", "po"),
        0,
        setup=spec(env={"VLLM_LOGGING_PREFIX": "[$USER] ${PATH}"}),
        check=compose_has("po", "[$$USER] $${PATH}"),
    ),
    Case(
        "dollar-in-speculative",
        ("compose", "po"),
        0,
        setup=spec(speculative={"method": "ngram", "num_speculative_tokens": 3, "model": "$X"}),
        check=compose_has("po", '"model":"$$X"'),
    ),
    Case(
        "secret-reference-stays-a-reference",
        ("compose", "po"),
        0,
        setup=spec(env={"HF_TOKEN": "${PO_HF_TOKEN}"}),
        check=compose_has("po", "HF_TOKEN: ${PO_HF_TOKEN}", absent=("$${PO_HF_TOKEN}",)),
    ),
    Case(
        "dollar-in-served-name",
        ("compose", "po"),
        2,
        ("po.yaml", "'served_name'"),
        setup=spec(served_name="${HF_TOKEN}"),
        check=no_compose("po"),
    ),
    # 2. a hub that accepts the connection and never answers ------------------------------------
    Case(
        "silent-hub-plan",
        ("plan", "po", "--gpu-memory", "24"),
        0,
        ("po", "did not answer within 1 s"),
        setup=spec(model="acme/Qwen2.5-7B-Instruct-AWQ-tuned"),  # not a shipped default
        needs=("silent_hub",),
        max_seconds=20,
    ),
    Case(
        "silent-hub-plan-goes-on-estimated",
        ("plan", "po", "--gpu-memory", "24"),
        0,
        ("estimated", "the hub did not answer"),
        setup=spec(model="acme/Qwen2.5-7B-Instruct-AWQ-tuned"),  # cached_po_config's model
        needs=("silent_hub", "cached_po_config"),
        max_seconds=20,
    ),
    Case(
        "silent-hub-download-dry-run",
        ("download-models", "po", "--dry-run"),
        1,
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "did not answer within 1 s", "HF_HUB_ETAG_TIMEOUT"),
        needs=("silent_hub",),
        max_seconds=20,
    ),
    # 3. spec files that are not agents/<lower-case>.yaml ---------------------------------------
    Case(
        "yml-extension-named-on-unknown-agent",
        ("compose", "coder"),
        2,
        ("coder.yml is not read", "mv", "coder.yaml"),
        setup=raw("agents/coder.yml", yaml.safe_dump({**PO, "port": 8010})),
    ),
    Case(
        "upper-case-spec-named-by-list",
        ("list",),
        0,
        ("Coder.yaml is not read", "rename it to coder.yaml"),
        setup=raw("agents/Coder.yaml", yaml.safe_dump({**PO, "port": 8010})),
    ),
    Case(
        "spaces-in-spec-name",
        ("list",),
        0,
        ("my agent.yaml is not read", "my-agent.yaml"),
        setup=raw("agents/my agent.yaml", yaml.safe_dump({**PO, "port": 8010})),
    ),
    Case(
        "unicode-spec-name",
        ("list",),
        0,
        ("código.yaml is not read",),
        setup=raw("agents/código.yaml", yaml.safe_dump({**PO, "port": 8010})),
    ),
    Case(
        "misnamed-spec-named-by-doctor",
        ("doctor",),
        1,
        ("Coder.yml", "Rename it to coder.yaml"),
        setup=raw("agents/Coder.yml", yaml.safe_dump({**PO, "port": 8010})),
        needs=("no_gpu", "docker_down"),
    ),
    # 4. operating-system errors get a sentence naming the path ---------------------------------
    Case(
        "non-utf8-spec",
        ("list",),
        2,
        ("po.yaml", "not UTF-8"),
        setup=raw("agents/po.yaml", b"model: Qwen/caf\xe9\nport: 8002\n"),
    ),
    Case(
        "spec-is-a-folder",
        ("list",),
        2,
        ("po.yaml is a folder",),
        setup=folder("agents/po.yaml"),
    ),
    Case(
        "compose-path-is-a-folder",
        ("compose", "po"),
        2,
        ("docker-compose-po.yml is a folder",),
        setup=folder("compose/docker-compose-po.yml"),
    ),
    Case(
        "agents-is-a-file",
        ("list",),
        2,
        ("agents is a file", "needs a folder"),
        setup=as_file("agents"),
    ),
    Case(
        "agents-is-a-dangling-link",
        ("list",),
        2,
        ("agents is a link to", "gone-away", "does not exist"),
        setup=dangling("agents"),
    ),
    Case(
        "agents-here-is-a-dangling-link",
        ("list",),
        2,
        ("agents is a link to", "does not exist"),
        setup=dangling("agents"),
        home=False,
        in_ws=True,
    ),
    Case(
        "compose-is-a-file",
        ("compose",),
        2,
        ("compose is a file",),
        setup=as_file("compose"),
    ),
    Case(
        "compose-is-a-dangling-link",
        ("compose",),
        2,
        ("compose is a link to", "does not exist"),
        setup=dangling("compose"),
    ),
    Case(
        "spec-link-to-nothing",
        ("compose", "po"),
        2,
        ("po.yaml is a link to", "does not exist"),
        setup=dangling("agents/po.yaml"),
    ),
    Case(
        "spec-is-a-link-to-dev-zero",
        ("list",),
        2,
        ("po.yaml is not a regular file",),
        setup=steps(raw("agents/po.yaml", ""), lambda ws: _relink(ws / "agents/po.yaml")),
        max_seconds=10,
    ),
    Case(
        "unreadable-compose-file-as-a-user",
        ("compose", "--check"),
        2,
        ("Permission denied", "docker-compose-po.yml"),
        setup=steps(
            raw("compose/docker-compose-po.yml", "services: {}\n"),
            chmod("compose/docker-compose-po.yml", 0o000),
        ),
        as_user="nobody",
    ),
    Case(
        "unreadable-spec-as-a-user",
        ("list",),
        2,
        ("Permission denied", "po.yaml"),
        setup=chmod("agents/po.yaml", 0o000),
        as_user="nobody",
    ),
    Case(
        "read-only-compose-folder-as-a-user",
        ("compose",),
        2,
        ("Permission denied", "docker-compose-architect.yml"),
        setup=chmod("compose", 0o555),
        as_user="nobody",
    ),
    Case(
        "disk-full-while-writing-compose",
        ("compose", "po"),
        1,
        ("No space left", "docker-compose-po.yml", "nothing was half-written"),
        setup=raw("compose/docker-compose-po.yml", "# an older generated file\nservices: {}\n"),
        needs=("disk_full",),
        may_change=(),
    ),
    Case(
        "home-typo-creates-nothing",
        ("--home", "{ws}/wrokspace", "list"),
        2,
        ("{ws}/wrokspace", "does not exist", "agent-manager init"),
        home=False,
        check=missing("wrokspace"),
    ),
    Case(
        "env-home-typo-creates-nothing",
        ("list",),
        2,
        ("AGENT_MANAGER_HOME", "does not exist", "agent-manager init"),
        env={"AGENT_MANAGER_HOME": "{ws}/nope"},
        home=False,
        check=missing("nope"),
    ),
    Case(
        "home-is-a-file",
        ("--home", "{ws}/agents/po.yaml", "list"),
        2,
        ("po.yaml", "is a file, not a folder"),
        home=False,
    ),
    Case(
        "home-without-agents-folder",
        ("--home", "{ws}/compose", "list"),
        2,
        ("has no agents/ folder", "agent-manager init"),
        home=False,
    ),
    Case(
        "relative-HOME",
        ("list",),
        2,
        ("HOME", "not an absolute path"),
        env={"HOME": "relative/home", "XDG_CONFIG_HOME": None},
        home=False,
    ),
    Case(
        "XDG_CONFIG_HOME-under-a-file",
        ("compose",),
        2,
        ("Cannot create the default workspace", "XDG_CONFIG_HOME"),
        env={"XDG_CONFIG_HOME": "{ws}/agents/po.yaml"},
        home=False,
    ),
    Case("gpu-memory-inf", ("plan", "--gpu-memory", "inf"), 2, ("--gpu-memory inf", "GiB")),
    Case("gpu-memory-nan", ("plan", "--gpu-memory", "nan"), 2, ("'--gpu-memory'",)),
    # 5. secrets written as values, under any name ----------------------------------------------
    Case(
        "hf-token-under-another-env-name",
        ("compose", "po"),
        2,
        ("po.yaml", "'env'", "MY_KEY", "Hugging Face token"),
        setup=spec(env={"MY_KEY": HF_SHAPED}),
        check=no_compose("po"),
    ),
    Case(
        "api-key-in-extra-args",
        ("compose", "po"),
        2,
        ("po.yaml", "'extra_args'", "sk-"),
        setup=spec(extra_args=["--chat-template", SK_SHAPED]),
        check=no_compose("po"),
    ),
    Case(
        "token-in-speculative",
        ("compose", "po"),
        2,
        ("po.yaml", "'speculative'", "Hugging Face token"),
        setup=spec(speculative={"method": "draft_model", "model": HF_SHAPED}),
        check=no_compose("po"),
    ),
    Case(
        "token-as-revision",
        ("compose", "po"),
        2,
        ("po.yaml", "'revision'", "Hugging Face token"),
        setup=spec(revision=HF_SHAPED),
        check=no_compose("po"),
    ),
    # 6. speculative keys and YAML aliases --------------------------------------------------------
    Case(
        "speculative-unknown-key",
        ("compose", "po"),
        2,
        ("'speculative'", "no key 'num_spec_tokens'", "num_speculative_tokens"),
        setup=spec(speculative={"method": "ngram", "num_spec_tokens": 3}),
    ),
    Case(
        "speculative-key-vllm-fills-in",
        ("compose", "po"),
        2,
        ("'speculative'", "target_model_config", "filled in by vLLM"),
        setup=spec(speculative={"method": "ngram", "target_model_config": {}}),
    ),
    Case(
        "speculative-known-keys-pass",
        ("compose", "po"),
        0,
        setup=spec(
            speculative={"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4}
        ),
        check=compose_has("po", "--speculative-config"),
    ),
    Case(
        "yaml-alias-bomb",
        ("compose", "po"),
        2,
        ("po.yaml:4", "alias '*a'", "not allowed"),
        setup=spec(text=ALIAS_BOMB),
        check=no_compose("po"),
    ),
    Case(
        "oversized-spec",
        ("list",),
        2,
        ("po.yaml", "MiB is not an agent spec"),
        setup=raw("agents/po.yaml", "# padding\n" * 120_000),
    ),
    # 7. loose numbers ----------------------------------------------------------------------------
    Case("port-true", ("compose", "po"), 2, ("'port'", "True"), setup=spec(port=True)),
    Case("port-as-text", ("compose", "po"), 2, ("'port'", "'8002'"), setup=spec(port="8002")),
    Case("port-out-of-range", ("compose", "po"), 2, ("'port'", "1-65535"), setup=spec(port=70000)),
    Case(
        "max-context-1e23-text",
        ("compose", "po"),
        2,
        ("'max_context'", "whole number of tokens", "'auto'"),
        setup=spec(text="model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\nmax_context: 1e23\n"),
    ),
    Case(
        "max-context-1e23-float",
        ("compose", "po"),
        2,
        ("'max_context'", "whole number"),
        setup=spec(max_context=1e23),
    ),
    Case(
        "max-context-huge-int",
        ("compose", "po"),
        2,
        ("'max_context'", "outside"),
        setup=spec(max_context=10**23),
    ),
    Case(
        "max-num-seqs-1e13",
        ("compose", "po"),
        2,
        ("'max_num_seqs'", "outside"),
        setup=spec(max_num_seqs=10**13),
    ),
    Case(
        "max-context-word",
        ("compose", "po"),
        2,
        ("'max_context'", "'lots'"),
        setup=spec(max_context="lots"),
    ),
    Case(
        "temperature-nan",
        ("compose", "po"),
        2,
        ("'temperature'", "finite"),
        setup=spec(text="model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\ntemperature: .nan\n"),
    ),
    Case(
        "gpu-fraction-inf",
        ("compose", "po"),
        2,
        ("'gpu_memory_fraction'", "finite"),
        setup=spec(
            text="model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\ngpu_memory_fraction: .inf\n"
        ),
    ),
    Case(
        "tensor-parallel-named",
        ("compose", "po"),
        2,
        ("'tensor_parallel_size'", "several GPUs"),
        setup=spec(tensor_parallel_size=2),
    ),
    Case(
        "enforce-eager-as-number",
        ("compose", "po"),
        2,
        ("'enforce_eager'",),
        setup=spec(enforce_eager=1),
    ),
    # 8. duplicate keys ---------------------------------------------------------------------------
    Case(
        "duplicate-port",
        ("compose", "po"),
        2,
        ("po.yaml:4", "'port' is given twice (first on line 2)"),
        setup=spec(text=DUPLICATE_PORT),
    ),
    Case(
        "duplicate-nested-key",
        ("compose", "po"),
        2,
        ("po.yaml:5", "'VLLM_LOGGING_LEVEL' is given twice"),
        setup=spec(text=DUPLICATE_ENV),
    ),
    # 9. the user's override file is checked, never written ---------------------------------------
    Case(
        "override-is-a-folder",
        ("compose", "--check"),
        2,
        ("docker-compose-po.override.yml is not a file",),
        setup=folder("compose/docker-compose-po.override.yml"),
    ),
    Case(
        "override-broken-yaml",
        ("compose", "--check"),
        2,
        ("docker-compose-po.override.yml:3", "not valid YAML", "never writes"),
        setup=raw("compose/docker-compose-po.override.yml", "services:\n  vllm: [\n"),
    ),
    Case(
        "override-not-a-mapping",
        ("compose", "po"),
        2,
        ("docker-compose-po.override.yml", "must be a Compose mapping"),
        setup=raw("compose/docker-compose-po.override.yml", "- just a list\n"),
    ),
    Case(
        "override-with-compose-tags-passes",
        ("compose", "po"),
        0,
        ("wrote",),
        setup=raw(
            "compose/docker-compose-po.override.yml",
            "services:\n  vllm:\n    deploy: !reset {}\n"
            "    ports: !override ['127.0.0.1:9000:8000']\n",
        ),
    ),
    Case(
        "launch-refuses-a-broken-override-before-touching-docker",
        ("launch", "po"),
        2,
        ("docker-compose-po.override.yml:3", "not valid YAML"),
        setup=raw("compose/docker-compose-po.override.yml", "services:\n  vllm: {image: [\n"),
        needs=("docker_down",),
    ),
    # 10. Ctrl-C before any container exists ------------------------------------------------------
    Case(
        "ctrl-c-before-any-container",
        ("launch", "po"),
        130,
        ("before any container of po was created", "nothing was left running"),
        needs=("interrupt_before_compose",),
    ),
    # 11. smaller points --------------------------------------------------------------------------
    Case(
        "init-creates-a-workspace",
        ("init", "{ws}/fresh"),
        0,
        ("created", "architect", "po"),
        home=False,
        may_change=("fresh*",),
        check=exists("fresh/agents/po.yaml", "fresh/compose"),
    ),
    Case(
        "init-over-a-file",
        ("init", "{ws}/agents/po.yaml"),
        2,
        ("po.yaml", "a file stands where a folder should be"),
        home=False,
    ),
    Case(
        "init-where-agents-is-a-file",
        ("init", "{ws}"),
        2,
        ("agents", "a file stands where a folder should be"),
        setup=as_file("agents"),
        home=False,
    ),
    Case(
        "init-leaves-an-existing-workspace",
        ("init", "{ws}"),
        0,
        ("already a workspace", "nothing was changed"),
        setup=spec(port=9102),
        home=False,
        may_change=(),
    ),
    Case(
        "orphan-compose-named-by-list",
        ("list",),
        0,
        ("docker-compose-oldbot.yml belongs to no agent",),
        setup=raw("compose/docker-compose-oldbot.yml", "services: {}\n"),
    ),
    Case("empty-spec", ("list",), 2, ("po.yaml is empty",), setup=spec(text="")),
    Case(
        "spec-is-a-list",
        ("list",),
        2,
        ("po.yaml", "found a list"),
        setup=spec(text="- model: x\n"),
    ),
    Case(
        "compose-on-empty-agents",
        ("compose",),
        0,
        ("No agents in", "nothing to write"),
        setup=folder("agents"),
    ),
    # already handled before this corpus existed: keep them handled --------------------------------
    Case(
        "broken-yaml",
        ("list",),
        2,
        ("po.yaml:4", "not valid YAML"),
        setup=spec(text="model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\nenv: [\n"),
    ),
    Case(
        "unknown-field",
        ("list",),
        2,
        ("po.yaml", "unknown field 'max_model_len'", "max_context"),
        setup=spec(max_model_len=4096),
    ),
    Case("missing-model", ("list",), 2, ("po.yaml", "'model' is missing"), setup=spec(model=None)),
    Case("env-not-a-mapping", ("list",), 2, ("'env'",), setup=spec(env=["A=1"])),
    Case("traversal-name", ("compose", "../x"), 2, ("not a valid agent name",)),
    Case("absolute-name", ("compose", "/etc/passwd"), 2, ("not a valid agent name",)),
    Case("unknown-agent", ("compose", "pp"), 2, ("Unknown agent 'pp'", "Did you mean po?")),
    Case(
        "shell-injection-in-model",
        ("compose", "po"),
        2,
        ("'model'", "repo id"),
        setup=spec(model="Qwen/Qwen2.5; rm -rf /"),
    ),
    Case(
        "shell-injection-in-served-name",
        ("compose", "po"),
        2,
        ("'served_name'", "no spaces"),
        setup=spec(served_name="po; docker rm -f $(docker ps -q)"),
    ),
    Case(
        "yaml-injection-in-served-name",
        ("compose", "po"),
        2,
        ("'served_name'",),
        setup=spec(served_name="po\nprivileged: true"),
    ),
    Case(
        "owned-flag-in-extra-args",
        ("compose", "po"),
        2,
        ("'extra_args'", "--port is set by the field 'port'"),
        setup=spec(extra_args=["--port", "9999"]),
    ),
    Case(
        "secret-env-written-out",
        ("compose", "po"),
        2,
        ("'env'", "HF_TOKEN is a secret", "passed by reference"),
        setup=spec(env={"HF_TOKEN": "plaintext"}),
    ),
    Case(
        "port-clash",
        ("compose",),
        2,
        ("'port': 8002 is also used by",),
        setup=spec("architect", port=8002),
    ),
    Case("docker-down", ("status",), 1, ("Docker",), needs=("docker_down",)),
    Case("docker-silent", ("status",), 1, ("Docker",), needs=("docker_silent",), max_seconds=20),
    Case("no-gpu-gpu-stats", ("gpu-stats",), 1, ("NVML",), needs=("no_gpu", "docker_down")),
    Case("no-gpu-plan", ("plan",), 1, ("--gpu-memory",), needs=("no_gpu",)),
]
