#!/usr/bin/env bash
# Install agent-manager from this checkout, then run `agent-manager ARGS...` if any are given:
#
#   ./scripts/install.sh launch po
#
# Works with a distribution's own Python (Debian 12, Ubuntu 24.04: PEP 668 refuses `pip install`
# there) because it never installs into that Python: it makes a private venv and links the
# `agent-manager` command into a folder on PATH.
#   - as a user: venv in ${XDG_DATA_HOME:-~/.local/share}/agent-manager/venv, command in ~/.local/bin
#   - as root:   venv in /opt/agent-manager/venv, command in /usr/local/bin
# AGENT_MANAGER_PREFIX and AGENT_MANAGER_BIN_DIR choose other folders; PYTHON another Python
# (3.10 or newer). Running it again upgrades in place. When the Python lacks ensurepip (Debian
# and Ubuntu without the python3-venv package) the venv is made without pip and pip is added
# from the system's pip wheel (/usr/share/python-wheels) or, failing that, from PyPI.
# Uninstall: rm -r "$AGENT_MANAGER_PREFIX" and the link in the bin folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

say() { printf '[install.sh] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [[ "$(id -u)" == "0" ]]; then
    PREFIX="${AGENT_MANAGER_PREFIX:-/opt/agent-manager}"
    BIN_DIR="${AGENT_MANAGER_BIN_DIR:-/usr/local/bin}"
else
    [[ "${HOME:-}" == /* ]] || die "HOME is not an absolute path; set HOME or AGENT_MANAGER_PREFIX"
    PREFIX="${AGENT_MANAGER_PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}/agent-manager}"
    BIN_DIR="${AGENT_MANAGER_BIN_DIR:-$HOME/.local/bin}"
fi
VENV="$PREFIX/venv"

check_python() {
    command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON found; install Python 3.10 or newer \
(Debian/Ubuntu: apt-get install python3), or name one with PYTHON=/path/to/python3"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$("$PYTHON" --version 2>&1) is too old; agent-manager needs Python 3.10 or newer"
}

make_venv() {
    mkdir -p "$PREFIX"
    if "$PYTHON" -m venv --clear "$VENV" >/dev/null 2>&1; then
        return
    fi
    # Debian and Ubuntu ship venv without ensurepip until python3-venv is installed: make the
    # venv without pip, then add pip from a wheel (a pip wheel can run itself).
    say "$PYTHON has no ensurepip (python3-venv not installed); adding pip to the venv myself"
    "$PYTHON" -m venv --clear --without-pip "$VENV" \
        || die "\`$PYTHON -m venv\` fails; install your Python's venv module \
(Debian/Ubuntu: apt-get install python3-venv)"
    local wheel
    wheel="$(find_pip_wheel)"
    "$VENV/bin/python" "$wheel/pip" install --quiet --no-index "$wheel" \
        || die "could not install pip into $VENV from $wheel"
}

find_pip_wheel() {
    local found
    found="$(ls /usr/share/python-wheels/pip-*.whl 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$found" ]]; then
        printf '%s\n' "$found"
        return
    fi
    say "downloading pip's wheel from PyPI"
    "$VENV/bin/python" - "$PREFIX" <<'EOF'
import json, os, sys, urllib.request
index = os.environ.get("AGENT_MANAGER_PYPI", "https://pypi.org")
with urllib.request.urlopen(f"{index}/pypi/pip/json", timeout=60) as answer:
    files = json.load(answer)["urls"]
url = next(f["url"] for f in files if f["filename"].endswith("-py3-none-any.whl"))
target = os.path.join(sys.argv[1], url.rsplit("/", 1)[1])
urllib.request.urlretrieve(url, target)
print(target)
EOF
}

check_python
say "installing agent-manager from $ROOT into $VENV ($("$PYTHON" --version 2>&1))"
make_venv
"$VENV/bin/python" -m pip install --quiet --upgrade "$ROOT" \
    || die "pip could not install agent-manager into $VENV (its output is above)"
mkdir -p "$BIN_DIR"
ln -sfn "$VENV/bin/agent-manager" "$BIN_DIR/agent-manager"
say "agent-manager $("$BIN_DIR/agent-manager" --version | cut -d' ' -f2) is $BIN_DIR/agent-manager"
case ":${PATH:-}:" in
    *":$BIN_DIR:"*) ;;
    *) say "$BIN_DIR is not on your PATH yet; add it: export PATH=\"$BIN_DIR:\$PATH\"" \
        "(on Debian and Ubuntu, ~/.profile does so at your next login)" ;;
esac
completion=" (shell completion: agent-manager --install-completion)"
if (($# == 0)); then
    say "done$completion"
    exit 0
fi
say "running: agent-manager $*"
exec "$BIN_DIR/agent-manager" "$@"
