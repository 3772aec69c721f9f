"""`download-models` with the real huggingface_hub client against a local fake hub."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_manager.adapters import hf_cache
from agent_manager.adapters import hub as hub_adapter
from agent_manager.adapters.hf_cache import hub_cache
from agent_manager.models import downloads
from agent_manager.models.cache_state import CacheState, inspect_cache
from tests.fakes.fake_hub import FakeHub

pytestmark = pytest.mark.hub

KB = 1000

# A repo as the hub has them: safetensors shards plus the same weights as .bin, a GGUF, ONNX in
# a subfolder, docs. Only the safetensors, configs and tokenizer are for vLLM.
TYPICAL_REPO: dict[str, bytes] = {
    ".gitattributes": b"*.safetensors filter=lfs\n",
    "README.md": b"# model card\n",
    "LICENSE": b"Apache-2.0\n",
    "config.json": b'{"model_type": "qwen2", "num_hidden_layers": 2}',
    "generation_config.json": b'{"temperature": 0.7}',
    "tokenizer.json": b'{"version": "1.0"}' + b" " * 2000,
    "tokenizer_config.json": b'{"chat_template": "{{ messages }}"}',
    "special_tokens_map.json": b"{}",
    "vocab.json": b'{"a": 0}',
    "merges.txt": b"#version: 0.2\na b\n",
    "chat_template.jinja": b"{{ messages }}",
    "model.safetensors.index.json": json.dumps(
        {
            "weight_map": {
                "a": "model-00001-of-00002.safetensors",
                "b": "model-00002-of-00002.safetensors",
            }
        }
    ).encode(),
    "model-00001-of-00002.safetensors": os.urandom(200 * KB),
    "model-00002-of-00002.safetensors": os.urandom(100 * KB),
    "pytorch_model.bin": os.urandom(300 * KB),
    "pytorch_model.bin.index.json": b'{"weight_map": {"a": "pytorch_model.bin"}}',
    "model-q4_k_m.gguf": os.urandom(150 * KB),
    "onnx/model.onnx": os.urandom(120 * KB),
    "original/consolidated.pth": os.urandom(90 * KB),
}
NEEDED = [
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "merges.txt",
    "model.safetensors.index.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
]
NEEDED_BYTES = sum(len(TYPICAL_REPO[p]) for p in NEEDED)
NEEDED_TEXT = downloads.format_bytes(NEEDED_BYTES)  # "302.3 kB"


def small_repo(seed: bytes) -> dict[str, bytes]:
    return {
        "config.json": b'{"model_type": "llama"}',
        "tokenizer.json": b"{}",
        "tokenizer_config.json": b'{"model_max_length": 32768}',
        "model.safetensors": seed * (30 * KB // len(seed)),
    }


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The fake hub on a free loopback port, with HF_ENDPOINT pointing at it."""
    from huggingface_hub import constants

    # huggingface_hub reads this at import; with telemetry on it asks {ENDPOINT}/api/agent-
    # harnesses (the real hub if it was imported before HF_ENDPOINT was set).
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(hf_cache, "RETRY_DELAY_S", 0.0)
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


def make_workspace(root: Path, agents: dict[str, str]) -> Path:
    """A workspace whose agents serve the given models ('repo' or 'repo@revision')."""
    (root / "agents").mkdir(parents=True)
    (root / "compose").mkdir()
    for index, (name, model) in enumerate(agents.items()):
        repo, _, revision = model.partition("@")
        text = f"model: {repo}\nport: {8100 + index}\n"
        if revision:
            text += f"revision: {revision}\n"
        (root / "agents" / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def said(text: str) -> str:
    """Output with Rich's line wrapping undone, for matching whole sentences."""
    return " ".join(text.split())


def snapshot(repo: str, commit: str) -> Path:
    return hub_cache() / f"models--{repo.replace('/', '--')}" / "snapshots" / commit


def test_dry_run_lists_only_the_files_vllm_needs_and_the_total(cli, fake_hub, home):
    fake_hub.add_repo("org/typical", TYPICAL_REPO)
    make_workspace(home, {"dev": "org/typical"})

    result = cli("--home", str(home), "download-models", "--dry-run", "--json")

    assert result.code == 0, result.output
    (agent,) = json.loads(result.stdout)["agents"]
    assert [f["path"] for f in agent["files"]] == NEEDED
    assert agent["total_bytes"] == agent["remaining_bytes"] == NEEDED_BYTES
    assert fake_hub.bytes_served == 0
    assert not (hub_cache() / "models--org--typical").exists(), "a dry run writes nothing"

    text = cli("--home", str(home), "download-models", "--dry-run")
    assert text.code == 0
    assert "model-00001-of-00002.safetensors  200.0 kB  to download" in text.stdout
    assert "pytorch_model.bin" not in text.stdout and ".gguf" not in text.stdout
    assert f"11 files, {NEEDED_TEXT}" in text.stdout
    assert f"Total to download: {NEEDED_TEXT} into {hub_cache()}" in text.stdout


def test_download_fills_the_standard_hf_cache_layout(cli, fake_hub, home):
    commit = fake_hub.add_repo("org/typical", TYPICAL_REPO)
    make_workspace(home, {"dev": "org/typical"})

    result = cli("--home", str(home), "download-models")

    assert result.code == 0, result.output
    assert fake_hub.bytes_served == NEEDED_BYTES
    folder = hub_cache() / "models--org--typical"
    assert (folder / "refs" / "main").read_text() == commit
    snap = folder / "snapshots" / commit
    assert sorted(p.name for p in snap.iterdir()) == sorted(NEEDED)
    for name in NEEDED:
        assert (snap / name).is_symlink()
        assert (snap / name).resolve().parent == (folder / "blobs").resolve()
        assert (snap / name).read_bytes() == TYPICAL_REPO[name]
    assert inspect_cache("org/typical", None).state is CacheState.COMPLETE
    assert f"Fetched {NEEDED_TEXT} (11 files)" in said(result.stderr)
    assert f"into {hub_cache()}" in said(result.stderr)
    assert "dev" in result.stdout and "downloaded" in result.stdout


def test_huggingface_hub_offline_finds_the_downloaded_model(cli, fake_hub, home):
    """What vLLM does in the container with HF_HUB_OFFLINE=1: resolve files from the cache."""
    from huggingface_hub import hf_hub_download, scan_cache_dir

    commit = fake_hub.add_repo("org/typical", TYPICAL_REPO)
    make_workspace(home, {"dev": "org/typical"})
    assert cli("--home", str(home), "download-models").code == 0
    fake_hub.stop()  # no hub at all from here on

    path = hf_hub_download(
        "org/typical", "config.json", cache_dir=hub_cache(), local_files_only=True
    )
    assert Path(path) == snapshot("org/typical", commit) / "config.json"
    (repo,) = scan_cache_dir(hub_cache()).repos
    assert repo.repo_id == "org/typical"
    assert repo.size_on_disk == NEEDED_BYTES
    assert {r.commit_hash for r in repo.revisions} == {commit}


def test_rerun_after_success_downloads_nothing_and_says_so(cli, fake_hub, home):
    fake_hub.add_repo("org/typical", TYPICAL_REPO)
    make_workspace(home, {"dev": "org/typical"})
    assert cli("--home", str(home), "download-models").code == 0
    fake_hub.reset_counters()

    result = cli("--home", str(home), "download-models")

    assert result.code == 0, result.output
    assert fake_hub.bytes_served == 0
    assert [m for m, _ in fake_hub.requests] == ["GET"], "one API call, no file requests"
    assert "Nothing to download: every model is already complete" in said(result.stderr)
    assert "already complete" in result.stdout


def test_pinned_commit_complete_in_the_cache_needs_no_network(cli, fake_hub, home):
    commit = fake_hub.add_repo("org/small", small_repo(b"x"))
    make_workspace(home, {"po": f"org/small@{commit}"})
    assert cli("--home", str(home), "download-models").code == 0
    fake_hub.stop()

    result = cli("--home", str(home), "download-models")

    assert result.code == 0, result.output
    assert "already complete" in result.stdout


def test_interrupted_download_resumes_and_fetches_only_the_missing_bytes(cli, fake_hub, home):
    fake_hub.add_repo("org/typical", TYPICAL_REPO)
    make_workspace(home, {"dev": "org/typical"})
    cut = 150 * KB
    fake_hub.cut_after(cut)

    first = cli("--home", str(home), "download-models")

    assert first.code == 1
    assert "dev: " in said(first.stderr) and "org/typical" in said(first.stderr)
    assert "run download-models again" in said(first.stderr)
    assert fake_hub.bytes_served == cut
    assert inspect_cache("org/typical", None).state is CacheState.PARTIAL

    fake_hub.heal()
    dry = json.loads(cli("--home", str(home), "download-models", "--dry-run", "--json").stdout)
    assert dry["agents"][0]["remaining_bytes"] == NEEDED_BYTES - cut
    fake_hub.reset_counters()
    second = cli("--home", str(home), "download-models")

    assert second.code == 0, second.output
    assert fake_hub.bytes_served == NEEDED_BYTES - cut, "only what was missing"
    assert inspect_cache("org/typical", None).state is CacheState.COMPLETE
    commit = fake_hub.repos["org/typical"].refs["main"]
    shard = snapshot("org/typical", commit) / "model-00001-of-00002.safetensors"
    assert shard.read_bytes() == TYPICAL_REPO["model-00001-of-00002.safetensors"]


def test_ctrl_c_keeps_the_partial_file_and_the_next_run_resumes_it(cli, fake_hub, home):
    from agent_manager.cli import download_view

    fake_hub.add_repo("org/typical", TYPICAL_REPO)
    make_workspace(home, {"dev": "org/typical"})
    written = 0
    progress_for = download_view.progress_for

    class CtrlCMidway:
        """The CLI's own progress display, with a Ctrl-C once 120 kB have arrived."""

        def __init__(self, quiet: bool) -> None:
            self.shown = progress_for(quiet)

        def __enter__(self) -> CtrlCMidway:
            self.shown.__enter__()
            return self

        def __exit__(self, *exc: object) -> None:
            self.shown.__exit__(*exc)

        def __getattr__(self, name: str) -> object:
            return getattr(self.shown, name)

        def advance(self, nbytes: int) -> None:
            nonlocal written
            written += nbytes
            if written > 120 * KB:
                raise KeyboardInterrupt
            self.shown.advance(nbytes)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(download_view, "progress_for", CtrlCMidway)
        first = cli("--home", str(home), "download-models")

    assert first.code == 130
    assert "Interrupted" in said(first.stderr)
    assert "run download-models again to resume" in said(first.stderr)
    fake_hub.reset_counters()
    second = cli("--home", str(home), "download-models")
    assert second.code == 0, second.output
    assert fake_hub.bytes_served == NEEDED_BYTES - written


def test_refuses_when_the_disk_is_too_small_and_says_by_how_much(cli, fake_hub, home, monkeypatch):
    fake_hub.add_repo("org/typical", TYPICAL_REPO)
    make_workspace(home, {"dev": "org/typical"})
    seen: list[Path] = []

    def tiny_disk(path: Path) -> int:
        seen.append(path)
        return 100 * KB

    monkeypatch.setattr(downloads, "disk_free", tiny_disk)

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert seen == [hub_cache()]
    assert f"need {NEEDED_TEXT} ({NEEDED_BYTES:,} bytes) more" in said(result.stderr)
    assert "only 100.0 kB (100,000 bytes) free" in said(result.stderr)
    assert f"dev: org/typical needs {NEEDED_TEXT} more" in said(result.stderr)
    assert fake_hub.bytes_served == 0


def test_gated_repo_without_token_fails_alone_while_other_agents_download(cli, fake_hub, home):
    fake_hub.add_repo("org/gated", small_repo(b"g"), gated=True)
    fake_hub.add_repo("org/open", small_repo(b"o"))
    make_workspace(home, {"architect": "org/gated", "po": "org/open"})

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert "architect: org/gated is a gated repo and no Hugging Face token is set" in said(
        result.stderr
    )
    assert "HF_TOKEN" in said(result.stderr)
    assert "https://huggingface.co/org/gated" in said(result.stderr)
    assert "1 of 2 agents failed" in said(result.stderr)
    assert inspect_cache("org/open", None).state is CacheState.COMPLETE
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "FAILED" in rows["architect"]
    assert "downloaded" in rows["po"]


def test_gated_repo_with_a_token_that_was_granted_access_downloads(
    cli, fake_hub, home, monkeypatch
):
    fake_hub.valid_tokens.add("hf_granted")
    fake_hub.add_repo("org/gated", small_repo(b"g"), gated=True, granted_tokens={"hf_granted"})
    make_workspace(home, {"architect": "org/gated"})
    monkeypatch.setenv("HF_TOKEN", "hf_granted")

    result = cli("--home", str(home), "download-models")

    assert result.code == 0, result.output
    assert inspect_cache("org/gated", None).state is CacheState.COMPLETE


def test_gated_repo_with_a_token_not_granted_says_to_accept_the_licence(
    cli, fake_hub, home, monkeypatch
):
    fake_hub.valid_tokens.add("hf_other")
    fake_hub.add_repo("org/gated", small_repo(b"g"), gated=True)
    make_workspace(home, {"architect": "org/gated"})
    monkeypatch.setenv("HF_TOKEN", "hf_other")

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert (
        "architect: org/gated is a gated repo and the account of your HF_TOKEN has no access"
        in said(result.stderr)
    )
    assert "Accept the licence at https://huggingface.co/org/gated" in said(result.stderr)


def test_a_bad_token_is_named_as_the_problem(cli, fake_hub, home, monkeypatch):
    fake_hub.add_repo("org/open", small_repo(b"o"))
    make_workspace(home, {"po": "org/open"})
    monkeypatch.setenv("HF_TOKEN", "hf_revoked")

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert "po: The hub refused the Hugging Face token (401)" in said(result.stderr)
    assert "huggingface.co/settings/tokens" in said(result.stderr)


def test_a_repo_that_does_not_exist_is_named(cli, fake_hub, home):
    make_workspace(home, {"po": "org/no-such-model"})

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert f"po: org/no-such-model does not exist on {fake_hub.url}, or it is private" in said(
        result.stderr
    )
    assert "set HF_TOKEN" in said(result.stderr)


def test_a_revision_that_does_not_exist_is_named(cli, fake_hub, home):
    fake_hub.add_repo("org/open", small_repo(b"o"))
    make_workspace(home, {"po": "org/open@v9"})

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert "po: org/open has no revision 'v9'" in said(result.stderr)
    assert "'revision'" in said(result.stderr)


def test_no_network_is_a_clear_message(cli, home, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    make_workspace(home, {"po": "org/open"})

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert f"po: Cannot reach the hub at {closed} for org/open" in said(result.stderr)
    assert "Check the network connection" in said(result.stderr)


def test_pinned_revision_downloads_that_revision_not_the_default_branch(cli, fake_hub, home):
    v1 = fake_hub.add_repo("org/open", small_repo(b"1"), ref="v1")
    main = fake_hub.add_repo("org/open", small_repo(b"2"), ref="main")
    make_workspace(home, {"po": "org/open@v1"})

    assert cli("--home", str(home), "download-models").code == 0

    folder = hub_cache() / "models--org--open"
    assert (folder / "refs" / "v1").read_text() == v1
    assert (snapshot("org/open", v1) / "model.safetensors").read_bytes()[:1] == b"1"
    assert not snapshot("org/open", main).exists()
    assert inspect_cache("org/open", "v1").state is CacheState.COMPLETE
    assert inspect_cache("org/open", None).state is not CacheState.COMPLETE


def test_a_new_revision_reuses_the_files_it_shares_with_a_cached_one(cli, fake_hub, home):
    v1 = small_repo(b"1")
    fake_hub.add_repo("org/open", v1, ref="v1")
    main = fake_hub.add_repo("org/open", small_repo(b"2"), ref="main")
    make_workspace(home, {"po": "org/open@v1"})
    assert cli("--home", str(home), "download-models").code == 0
    (home / "agents" / "po.yaml").write_text("model: org/open\nport: 8100\n")
    fake_hub.reset_counters()

    result = cli("--home", str(home), "download-models")

    assert result.code == 0, result.output
    assert fake_hub.bytes_served == len(v1["model.safetensors"]), "only the changed weights"
    assert (snapshot("org/open", main) / "config.json").read_bytes() == v1["config.json"]
    assert inspect_cache("org/open", None).state is CacheState.COMPLETE


def test_a_repo_without_safetensors_gets_its_bin_weights_and_a_warning(cli, fake_hub, home):
    fake_hub.add_repo(
        "org/old",
        {
            "config.json": b"{}",
            "tokenizer.json": b"{}",
            "pytorch_model.bin": os.urandom(20 * KB),
            "training_args.bin": b"x" * 100,
            "model.gguf": os.urandom(10 * KB),
        },
    )
    make_workspace(home, {"po": "org/old"})

    result = cli("--home", str(home), "download-models", "--dry-run", "--json")

    (agent,) = json.loads(result.stdout)["agents"]
    assert [f["path"] for f in agent["files"]] == [
        "config.json",
        "tokenizer.json",
        "pytorch_model.bin",
    ]
    text = cli("--home", str(home), "download-models", "--dry-run")
    assert "po: org/old has no safetensors weights; vLLM will load the PyTorch" in said(text.stderr)


def test_a_repo_with_only_gguf_weights_is_refused_with_what_to_choose(cli, fake_hub, home):
    fake_hub.add_repo("org/quant", {"config.json": b"{}", "model-q4_k_m.gguf": b"g" * 100})
    make_workspace(home, {"po": "org/quant"})

    result = cli("--home", str(home), "download-models")

    assert result.code == 1
    assert "po: org/quant has no weights vLLM can load" in said(result.stderr)
    assert "safetensors" in said(result.stderr)
    assert fake_hub.bytes_served == 0


def test_dry_run_already_reports_a_gated_repo(cli, fake_hub, home):
    fake_hub.add_repo("org/gated", small_repo(b"g"), gated=True)
    make_workspace(home, {"architect": "org/gated"})

    result = cli("--home", str(home), "download-models", "--dry-run")

    assert result.code == 1
    assert "architect: org/gated is a gated repo" in said(result.stderr)


def test_only_the_named_agents_are_downloaded(cli, fake_hub, home):
    fake_hub.add_repo("org/a", small_repo(b"a"))
    fake_hub.add_repo("org/b", small_repo(b"b"))
    make_workspace(home, {"one": "org/a", "two": "org/b"})

    assert cli("--home", str(home), "download-models", "two").code == 0

    assert inspect_cache("org/b", None).state is CacheState.COMPLETE
    assert inspect_cache("org/a", None).state is CacheState.MISSING


def test_list_says_whether_each_model_is_complete_in_the_cache(cli, fake_hub, home):
    fake_hub.add_repo("org/a", small_repo(b"a"))
    fake_hub.add_repo("org/b", small_repo(b"b"))
    make_workspace(home, {"one": "org/a", "two": "org/b"})
    assert cli("--home", str(home), "download-models", "two").code == 0

    data = json.loads(cli("--home", str(home), "list", "--json").stdout)

    states = {a["name"]: a["model_cache"] for a in data["agents"]}
    assert states == {"one": "missing", "two": "complete"}


def test_repo_files_and_download_file_serve_the_planner(fake_hub):
    commit = fake_hub.add_repo("org/typical", TYPICAL_REPO)

    files = {f.path: f.size for f in hub_adapter.repo_files("org/typical", None)}
    path = hub_adapter.download_file("org/typical", None, "config.json")

    assert files["model-00001-of-00002.safetensors"] == 200 * KB
    assert set(files) == set(TYPICAL_REPO)
    assert path == snapshot("org/typical", commit) / "config.json"
    assert path.read_bytes() == TYPICAL_REPO["config.json"]
    fake_hub.stop()
    assert hub_adapter.download_file("org/typical", None, "config.json") == path, (
        "a cached file is found without the hub"
    )
    with pytest.raises(hub_adapter.HubUnreachableError, match="org/typical"):
        hub_adapter.repo_files("org/typical", None)


def test_a_dropped_connection_is_resumed_in_the_same_run(cli, fake_hub, home):
    fake_hub.add_repo("org/small", small_repo(b"s"))
    make_workspace(home, {"po": "org/small"})
    fake_hub.cut_after(10 * KB, then_down=False)  # the retry finds the hub back

    result = cli("--home", str(home), "download-models")

    assert result.code == 0, result.output
    assert fake_hub.bytes_served == sum(len(v) for v in small_repo(b"s").values())


def test_xet_backed_files_are_left_to_huggingface_hub(cli, fake_hub, home, monkeypatch):
    """Xet storage moves chunks, not files: huggingface_hub's own download does that, so a file
    whose metadata names a Xet hash never goes through the resumable fetcher."""
    import huggingface_hub

    files = small_repo(b"x")
    commit = fake_hub.add_repo("org/xet", files, xet=True)
    make_workspace(home, {"po": "org/xet"})
    asked: list[str] = []

    def hf_hub_download(repo_id: str, filename: str, *, revision: str, **options: object) -> str:
        asked.append(filename)
        path = snapshot(repo_id, revision) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[filename])  # what a Xet transfer would leave
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)

    result = cli("--home", str(home), "download-models")

    assert result.code == 0, result.output
    assert asked == ["model.safetensors"]
    assert fake_hub.bytes_served == sum(len(v) for k, v in files.items() if k != asked[0])
    assert inspect_cache("org/xet", None).state is CacheState.COMPLETE
    assert (snapshot("org/xet", commit) / "model.safetensors").read_bytes() == files[asked[0]]


def test_a_repo_with_an_empty_file_downloads_it(cli, fake_hub, home):
    """Real repos carry empty files (an empty added_tokens.json, say); they are whole as is."""
    repo = {**TYPICAL_REPO, "added_tokens.json": b""}
    commit = fake_hub.add_repo("org/empty-file", repo)
    make_workspace(home, {"dev": "org/empty-file"})
    result = cli("--home", str(home), "download-models")
    assert result.code == 0, result.output
    empty = snapshot("org/empty-file", commit) / "added_tokens.json"
    assert empty.is_file() and empty.read_bytes() == b""
    assert inspect_cache("org/empty-file", None).state is CacheState.COMPLETE


def test_the_empty_file_case_of_the_resuming_fetcher(tmp_path, monkeypatch):
    blob = tmp_path / "blobs" / "etag"
    blob.parent.mkdir()
    assert hf_cache._fetch_partial("http://unused", blob, 0, {}, None) == 0
    assert blob.read_bytes() == b""


def test_a_dry_run_without_the_hub_says_the_size_is_unknown_not_0_b(cli, home, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    make_workspace(home, {"dev": "org/typical"})
    result = cli("--home", str(home), "download-models", "--dry-run")
    assert "Total to download: unknown (no sizes for dev)" in said(result.stdout)
    assert "0 B" not in result.stdout
