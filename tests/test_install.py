"""The README's first command: scripts/install.sh with Debian's own Python (PEP 668).

/usr/bin/python3 here is Debian 12's, with the EXTERNALLY-MANAGED marker that makes
`pip install .` fail. The installer must make its own venv, link `agent-manager` into a bin
folder, and run the command it is given: as root, as a user who cannot write anywhere but their
HOME, and on a Python whose venv module has no ensurepip (python3-venv not installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, skip_unless_ci

pytestmark = pytest.mark.install

SYSTEM_PYTHON = "/usr/bin/python3"
RUNUSER = "/usr/sbin/runuser"

# Debian's venv without python3-venv: `-m venv` fails unless told --without-pip.
NO_ENSUREPIP = """#!/bin/sh
case " $* " in
  *" -m venv "*) case " $* " in *" --without-pip "*) ;; *)
    echo "The virtual environment was not created successfully because ensurepip is not" >&2
    echo "available.  On Debian/Ubuntu systems, you need to install the python3-venv" >&2
    exit 1 ;; esac ;;
esac
exec /usr/bin/python3 "$@"
"""


def _pip_env() -> dict[str, str]:
    """The package index this machine's pip uses, passed on to a user without our pip config."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    env = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        name = key.split(".", 1)[-1].upper().replace("-", "_")
        env[f"PIP_{name}"] = value.strip().strip("'")
    return env


@pytest.fixture(autouse=True)
def _system_python() -> None:
    if not Path(SYSTEM_PYTHON).exists():
        skip_unless_ci(f"no {SYSTEM_PYTHON}: the installer is tried on the system's own Python")


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder every user may enter (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="am-install-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _source_copy(dest: Path) -> Path:
    """The checkout's tracked files, readable by anyone (the clone may sit under a private HOME)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    (dest / "scripts" / "install.sh").chmod(0o755)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o644)
    return dest


def _base_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        **_pip_env(),
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }


def test_install_as_a_user_puts_the_command_in_local_bin_and_runs_it(open_tmp: Path) -> None:
    if os.geteuid() != 0 or not Path(RUNUSER).exists():
        skip_unless_ci("needs root and runuser to act as another user")
    source = _source_copy(open_tmp / "src")
    home = open_tmp / "home"
    home.mkdir()
    shutil.chown(home, "nobody")
    env = {**_base_env(home), "PYTHON": SYSTEM_PYTHON}
    done = subprocess.run(
        [RUNUSER, "-p", "-u", "nobody", "--", f"{source}/scripts/install.sh", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    link = home / ".local" / "bin" / "agent-manager"
    assert link.is_symlink()
    assert Path(os.readlink(link)) == home / ".local/share/agent-manager/venv/bin/agent-manager"
    assert '"agents"' in done.stdout  # the command it was given ran
    assert "is not on your PATH yet" in done.stderr
    # A new login shell on Debian has ~/.local/bin on PATH: the bare command works there.
    again = subprocess.run(
        [RUNUSER, "-p", "-u", "nobody", "--", "agent-manager", "--version"],
        capture_output=True,
        text=True,
        env={**env, "PATH": f"{home}/.local/bin:/usr/bin:/bin"},
        cwd=home,
    )
    assert again.stdout.startswith("agent-manager ")


def test_install_as_root_without_python3_venv(open_tmp: Path) -> None:
    fake_python = open_tmp / "python3"
    fake_python.write_text(NO_ENSUREPIP)
    fake_python.chmod(0o755)
    home = open_tmp / "home"
    home.mkdir()
    prefix, bin_dir = open_tmp / "opt", open_tmp / "bin"
    env = {
        **_base_env(home),
        "PYTHON": str(fake_python),
        "AGENT_MANAGER_PREFIX": str(prefix),
        "AGENT_MANAGER_BIN_DIR": str(bin_dir),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
    }
    done = subprocess.run(
        [str(REPO / "scripts" / "install.sh"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "has no ensurepip" in done.stderr
    assert done.stdout.startswith("agent-manager ")
    assert "not on your PATH" not in done.stderr
    assert (bin_dir / "agent-manager").resolve() == (prefix / "venv/bin/agent-manager").resolve()
    # Nothing went into the system Python, which PEP 668 protects.
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import agent_manager"], capture_output=True)
    assert probe.returncode != 0


def test_system_python_is_externally_managed() -> None:
    """The premise: a plain `pip install .` is refused by this Python."""
    stdlib = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not (Path(stdlib) / "EXTERNALLY-MANAGED").exists():
        skip_unless_ci(f"{SYSTEM_PYTHON} is not marked EXTERNALLY-MANAGED (not Debian/Ubuntu)")
    done = subprocess.run(
        [SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert "externally-managed-environment" in done.stdout + done.stderr
