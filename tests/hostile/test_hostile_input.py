"""Run every row of the hostile-input corpus (`cases.py`) and hold it to the same contract."""

from __future__ import annotations

import fnmatch
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, CliResult, skip_unless_ci
from tests.hostile.cases import CASES, Case


@pytest.fixture
def world_ws() -> Iterator[Path]:
    """A workspace every user can reach (tmp_path is root-only), with the default agents."""
    root = Path(tempfile.mkdtemp(prefix="am-hostile-"))
    root.chmod(0o755)
    ws = root / "ws"
    shutil.copytree(REPO / "agents", ws / "agents")
    (ws / "compose").mkdir()
    yield ws
    for path in [root, *root.rglob("*")]:  # undo chmod 000/555 so the folder can go
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(root)


def _snapshot(ws: Path) -> dict[str, bytes | None]:
    """Every file under the workspace (None for folders and links) by relative path."""
    files: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(ws):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(ws))
            files[rel] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return files


def _fill(text: str, ws: Path) -> str:
    return text.replace("{ws}", str(ws))


@functools.cache
def _reachable_by(user: str) -> str | None:
    """None when `user` can run this venv's CLI, else why not (a clone under a folder of mode
    700, as home folders are on Ubuntu: only its owner may enter it)."""
    done = _run_as(user, ["--version"], dict(os.environ))
    if done.code == 0:
        return None
    return (done.stderr.strip() or f"exit {done.code}").splitlines()[-1]


def _skip_unless_reachable_by(user: str) -> None:
    why = _reachable_by(user)
    if why is not None:
        skip_unless_ci(
            f"the user {user} cannot run {Path(sys.executable).parent / 'agent-manager'} "
            f"({why}): this clone sits under a private folder. Clone it under a folder "
            f"{user} may enter to run these cases."
        )


def _run_as(user: str, argv: list[str], env: dict[str, str]) -> CliResult:
    exe = str(Path(sys.executable).parent / "agent-manager")
    uid = {"nobody": 65534}[user]
    done = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", exe, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(
    case: Case,
    world_ws: Path,
    cli: Callable[..., CliResult],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = world_ws
    for name in case.needs:
        request.getfixturevalue(name)
    for key, value in case.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, _fill(value, ws))
    if case.setup is not None:
        case.setup(ws)
    if case.in_ws:
        monkeypatch.chdir(ws)
    before = _snapshot(ws)
    argv = [_fill(arg, ws) for arg in case.argv]
    if case.home:
        argv = ["--home", str(ws), *argv]

    if case.as_user:
        _skip_unless_reachable_by(case.as_user)
    start = time.monotonic()
    if case.as_user:
        env = {**os.environ, "HF_HOME": str(ws.parent / "hf"), "XDG_CONFIG_HOME": str(ws.parent)}
        result = _run_as(case.as_user, argv, env)
    else:
        result = cli(*argv)
    elapsed = time.monotonic() - start

    out = result.output
    print(f"[{case.id}] exit {result.code}\n{out}")  # shown with -s or on failure
    assert result.code == case.code, out
    assert "Traceback" not in out, out
    assert "Unexpected error" not in out, out
    # Rich may fold a long path over two lines; the words must be there either way.
    flat = " ".join(out.split())
    for needle in case.says:
        assert " ".join(_fill(needle, ws).split()) in flat, f"{needle!r} not in:\n{out}"
    assert elapsed < case.max_seconds, f"took {elapsed:.1f} s"

    after = _snapshot(ws)
    for rel, content in before.items():
        if any(fnmatch.fnmatch(rel, pattern) for pattern in case.may_change):
            continue
        assert rel in after, f"{rel} was lost"
        assert after[rel] == content, f"{rel} was changed"
    for rel, content in after.items():
        assert not rel.endswith(".tmp"), f"temporary file left behind: {rel}"
        if rel not in before:
            allowed = any(fnmatch.fnmatch(rel, pattern) for pattern in case.may_change)
            assert allowed, f"{rel} was created"
        if content is not None and fnmatch.fnmatch(rel, "compose/docker-compose-*.yml"):
            if ".override." not in rel:
                assert isinstance(yaml.safe_load(content), dict), f"{rel} is not whole YAML"
    if case.check is not None:
        case.check(ws)


def test_the_corpus_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_the_readme_and_the_reliability_page_state_the_corpus_size() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"{len(CASES)} hostile-input cases" in readme
    page = " ".join((REPO / "docs" / "reliability.md").read_text().split())
    codes = [case.code for case in CASES]
    assert (
        f"{len(CASES)} rows ({codes.count(2)} refused with exit 2, {codes.count(1)} machine "
        f"failures with exit 1, {codes.count(0)} accepted inputs"
    ) in page
