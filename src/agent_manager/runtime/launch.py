"""`launch`: one agent at a time, switched without races, followed until it really serves.

Order of work (each step says what it does on stderr through `LaunchEvents`):
1. load the spec, check Docker is reachable, check the fit (planner);
2. take the workspace lock (a second launcher waits here and is told who holds it);
3. pre-flight: the host port is free (or held by one of our agents about to stop) and the
   compose file is current; only then is anything stopped;
4. stop and remove every other container of this instance (found by label), wait until each is
   gone, then until the GPU memory it held is free (NVML, every 250 ms);
5. `docker compose up -d`; then follow: container state, startup phase from the log, and
   `/health` + `/v1/models` every 100 ms until the served name is listed.
The lock is held until the agent is ready (or failed), so concurrent launches end with exactly
the last one's agent running.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters import nvml as nvml_adapter
from agent_manager.adapters.docker import CONFIG_HASH_LABEL, AgentContainer
from agent_manager.compose.files import write_compose
from agent_manager.compose.render import SERVICE
from agent_manager.errors import GpuUnavailableError, LaunchError
from agent_manager.models.cache_state import CacheState, cache_state
from agent_manager.runtime import hot_switch
from agent_manager.runtime.agents import STOP_GRACE_S, stop_and_remove
from agent_manager.runtime.diagnose import Context, Failure, diagnose
from agent_manager.runtime.gpu import container_id_of, gib
from agent_manager.runtime.lock import LockHolder, workspace_lock
from agent_manager.runtime.phases import CREATING, PULLING, STARTING, announces_ready, phase_of
from agent_manager.runtime.ports import PortUse, port_holders, port_use
from agent_manager.spec.agents import Agent, load_agents
from agent_manager.spec.endpoint import endpoint_for
from agent_manager.spec.workspace import Workspace, project_name

DEFAULT_TIMEOUT_S = 1200.0
READY_POLL_S = 0.1  # /health poll period; the CLI returns within this of the server being ready
STATE_POLL_S = 0.25  # container state (a Docker API round trip) at most this often
VRAM_POLL_S = 0.25
VRAM_TIMEOUT_S = 60.0
# Without attributable processes, how long to look for used memory dropping before moving on.
VRAM_UNATTRIBUTED_S = 5.0
VRAM_DROP_BYTES = 256 * 1024**2
LOG_KEEP = 2000


class LaunchTimings(BaseModel):
    """Wall-clock moments (epoch seconds) of one launch, for `--json` and the benchmark."""

    started: float
    lock_acquired: float | None = None
    old_gone: float | None = None  # the last stopped container was removed (or nothing to stop)
    up_issued: float | None = None
    up_done: float | None = None
    ready: float | None = None


class LaunchResult(BaseModel):
    agent: str
    served_name: str
    endpoint: str
    container: str | None
    ready: bool
    seconds: float  # from command start to ready (or to "started" with --no-wait)
    phase: str | None
    stopped: list[str]
    warnings: list[str]
    timings: LaunchTimings
    switch: str = "cold"  # "hot" when the agent was woken from sleep
    asleep: list[str] = []  # other agents left asleep on the GPU


class LaunchFailed(LaunchError):
    """The agent did not start; `failure` says why and what to do."""

    def __init__(self, agent: str, failure: Failure, container: str | None):
        super().__init__(failure.summary, hint=failure.fix, details=failure.matched_lines)
        self.agent = agent
        self.failure = failure
        self.container = container


@dataclass
class LaunchEvents:
    """How launch talks to the user; the CLI renders these, tests record them."""

    message: Callable[[str], None] = lambda text: None
    warning: Callable[[str], None] = lambda text: None
    phase: Callable[[str, float], None] = lambda phase, elapsed: None


@dataclass
class LaunchOptions:
    timeout: float = DEFAULT_TIMEOUT_S
    wait: bool = True
    force: bool = False
    cold: bool = False  # stop the others and start cold, even for `switch: sleep` agents


@dataclass
class LaunchProgress:
    """Where the launch is; the caller reads it after Ctrl-C to say what was left running."""

    agent: str
    container: str | None = None
    phase: str | None = None
    stopped: list[str] = field(default_factory=list)
    asleep: list[str] = field(default_factory=list)
    woke: bool = False


def launch(
    ws: Workspace,
    name: str,
    options: LaunchOptions | None = None,
    events: LaunchEvents | None = None,
    progress: LaunchProgress | None = None,
) -> LaunchResult:
    options = options or LaunchOptions()
    events = events or LaunchEvents()
    timings = LaunchTimings(started=time.time())
    start = time.monotonic()
    deadline = start + options.timeout
    agent = load_agents(ws, [ws.resolve_agent(name)])[0]
    _require_api_key(agent)
    progress = progress if progress is not None else LaunchProgress(agent.name)
    progress.agent = agent.name
    docker_adapter.get_docker()
    docker_adapter.ensure_compose_cli()
    warnings, keep_sleepers = hot_switch.check_fit(ws, agent, options.cold, options.force)
    for text in warnings:
        events.warning(text)

    def waiting(holder: LockHolder) -> None:
        events.message(f"Waiting for {holder.describe()} to finish (workspace lock)...")

    with workspace_lock(
        ws.lock_path,
        agent=agent.name,
        command=f"launch {agent.name}",
        timeout=max(0.0, deadline - time.monotonic()),
        on_wait=waiting,
    ):
        timings.lock_acquired = time.time()
        container = _switch_and_start(
            ws, agent, events, progress, timings, start, deadline, keep_sleepers
        )
        result = LaunchResult(
            agent=agent.name,
            served_name=agent.served_name,
            endpoint=endpoint_for(agent).url + "/v1",
            container=container.name,
            ready=False,
            seconds=0.0,
            phase=progress.phase,
            stopped=progress.stopped,
            warnings=warnings,
            timings=timings,
            switch="hot" if progress.woke else "cold",
            asleep=progress.asleep,
        )
        if progress.woke:  # wake() confirmed it serves the name
            progress.phase = "ready"
            timings.ready = time.time()
            result.ready = True
        elif options.wait:
            _follow_until_ready(agent, container, events, progress, start, deadline, options)
            timings.ready = time.time()
            result.ready = True
        result.phase = progress.phase
        result.seconds = round(time.monotonic() - start, 2)
        return result


def _require_api_key(agent: Agent) -> None:
    """A spec that asks for an API key must get one: compose would pass an empty
    VLLM_API_KEY, and vLLM would then serve everyone without a key."""
    variable = agent.spec.api_key_env
    if variable and not os.environ.get(variable):
        raise LaunchError(
            f"{agent.name} asks for an API key in ${variable} ({agent.path}: api_key_env), "
            f"but {variable} is not set.",
            hint=f"export {variable}=<a secret key> and launch again (clients send the same "
            "key), or remove api_key_env from the spec to serve without one.",
        )


# --------------------------------------------------------------------------- switch


def _switch_and_start(
    ws: Workspace,
    agent: Agent,
    events: LaunchEvents,
    progress: LaunchProgress,
    timings: LaunchTimings,
    start: float,
    deadline: float,
    keep_sleepers: bool,
) -> AgentContainer:
    containers = docker_adapter.list_agent_containers()
    _check_port(agent, containers)
    if write_compose(ws, agent):
        events.message(f"Wrote {ws.compose_path(agent.name)} (the spec changed).")
    offline = cache_state(agent) is CacheState.COMPLETE
    keep = _reusable(ws, agent, containers, offline)
    asleep: set[str] = set()
    if keep_sleepers:
        asleep = hot_switch.sleep_others(ws, agent, containers, events.message)
    progress.asleep = sorted({c.agent for c in containers if c.id in asleep})
    to_stop = [c for c in containers if c is not keep and c.id not in asleep]
    watch = _GpuWatch.before_stop([c for c in to_stop if c.running], events)
    for old in to_stop:
        stopped = stop_and_remove(old, grace_s=STOP_GRACE_S, on_progress=events.message)
        if old.running:
            progress.stopped.append(old.agent)
            events.message(f"Stopped {old.agent} in {stopped.seconds:.1f} s.")
    timings.old_gone = time.time()
    if watch is not None:
        watch.wait_until_free(events, min(deadline, time.monotonic() + VRAM_TIMEOUT_S))
    if keep is not None:
        woke = hot_switch.wake_target(ws, agent, keep, events.message, cold=not keep_sleepers)
        if woke:
            progress.container, progress.woke = keep.name, True
            timings.up_issued = timings.up_done = time.time()
            return keep
        if woke is False:  # failed or --cold: a sleeping engine is restarted cold
            stop_and_remove(keep, grace_s=STOP_GRACE_S, on_progress=events.message)
    timings.up_issued = time.time()
    _compose_up(ws, agent, offline, events, progress, deadline, start)
    timings.up_done = time.time()
    for project in sorted({c.project for c in to_stop if c.agent != agent.name}):
        docker_adapter.remove_project_networks(project)
    mine = [c for c in docker_adapter.list_agent_containers() if c.agent == agent.name]
    if not mine:
        raise LaunchError(
            f"`docker compose up` succeeded but no container of {agent.name} exists.",
            hint=f"Check {ws.compose_path(agent.name)} and your override file, then "
            f"`docker compose -p {project_name(agent.name)} ps -a`.",
        )
    progress.container = mine[0].name
    return mine[0]


def _reusable(
    ws: Workspace, agent: Agent, containers: list[AgentContainer], offline: bool
) -> AgentContainer | None:
    """The agent's own running container when `up -d` would keep it as it is.

    Anything else is stopped here, with the GPU-memory wait, rather than recreated by Compose
    (which starts the new container at once, before the old one's memory is free).
    """
    for container in containers:
        if container.agent != agent.name or not container.running:
            continue
        if container.spec_hash != agent.spec_hash():
            return None
        # The spec is the same; the override file or the environment may not be.
        wanted = docker_adapter.compose_config_hash(ws, agent.name, SERVICE, offline)
        if wanted is not None and wanted == container.labels.get(CONFIG_HASH_LABEL):
            return container
        return None
    return None


def _compose_up(
    ws: Workspace,
    agent: Agent,
    offline: bool,
    events: LaunchEvents,
    progress: LaunchProgress,
    deadline: float,
    start: float,
) -> None:
    process = docker_adapter.start_compose(ws, agent.name, "up", "-d", offline=offline)
    output: list[str] = []
    assert process.stdout is not None
    # Read in a thread so a `compose up` stuck mid-pull, output pipe open, still meets
    # --timeout. On Ctrl-C, `compose up` (in its own session) is left to finish: the
    # container is left as it is, never half-created.
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    code: int | None = None
    while True:
        try:
            raw = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break  # the deadline passed before compose finished
        if raw is None:  # end of output: compose is exiting
            try:
                code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            break
        line = raw.rstrip("\n")
        output.append(line)
        phase = phase_of(line)
        if phase in (PULLING, CREATING) and phase != progress.phase:
            progress.phase = phase
            events.phase(phase, time.monotonic() - start)
    if code is None:
        process.kill()
        doing = " (still pulling the image)" if progress.phase == PULLING else ""
        raise LaunchError(
            f"`docker compose up` for {agent.name} did not finish within "
            f"{deadline - start:.0f} s{doing}.",
            hint="Check the Docker daemon (`docker info`) and the network, then launch again "
            f"with a larger --timeout; `agent-manager stop {agent.name}` removes what it left.",
            details=output[-10:],
        )
    if code != 0:
        failure = diagnose(output, Context(agent=agent.name, exit_code=None, state="not-created"))
        if failure.kind == "unrecognised":
            failure = Failure(
                "compose-failed",
                f"`docker compose up` failed (exit code {code}).",
                f"Check {ws.compose_path(agent.name)} and, if you have one, "
                f"{ws.override_path(agent.name)}; its output is below.",
                output[-30:],
            )
        raise LaunchFailed(agent.name, failure, None)


def _pump(stream: Iterable[str], into: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            into.put(line)
    finally:
        into.put(None)


def _check_port(agent: Agent, containers: list[AgentContainer]) -> None:
    """Refuse to stop anything if the new agent's port is held by someone other than us."""
    port, bind = agent.spec.port, agent.spec.bind
    if any(c.port == port and c.running for c in containers):
        return  # one of our agents: it is either kept or stopped before `up`
    use = port_use(bind, port)
    if use is PortUse.NOT_LOCAL:
        raise LaunchError(
            f"{bind} ({agent.name}'s 'bind') is not an address of this machine.",
            hint=f"Set 'bind' in {agent.path} to 127.0.0.1 (this machine only) or 0.0.0.0.",
        )
    # PRIVILEGED: we cannot probe it unprivileged, but a root Docker daemon can publish it.
    if use is not PortUse.IN_USE:
        return
    holders = port_holders(port)
    who = "; ".join(holders) if holders else "another program"
    raise LaunchError(
        f"Port {port} on {bind} ({agent.name}'s API) is already in use by {who}.",
        hint=f"Stop it, or give {agent.name} another port in {agent.path} "
        "(`ss -ltnp` shows who listens).",
    )


# --------------------------------------------------------------------------- GPU memory


@dataclass
class _GpuWatch:
    """GPU processes of the containers being stopped, to wait until their memory is free."""

    nvml: nvml_adapter.Nvml
    pids: dict[int, int]  # pid -> bytes it held
    used_before: int

    @classmethod
    def before_stop(
        cls, containers: list[AgentContainer], events: LaunchEvents
    ) -> _GpuWatch | None:
        if not containers:
            return None
        try:
            nvml = nvml_adapter.get_nvml()
            processes = nvml.processes()
            used = sum(device.memory_used for device in nvml.devices())
        except GpuUnavailableError:
            events.message("NVML unavailable: not waiting for GPU memory.")
            return None
        ids = {c.id for c in containers}
        pids = {p.pid: p.used_bytes or 0 for p in processes if container_id_of(p.pid) in ids}
        return cls(nvml, pids, used)

    def wait_until_free(self, events: LaunchEvents, until: float) -> None:
        told = False
        settle_until = time.monotonic() + VRAM_UNATTRIBUTED_S
        while True:
            try:
                processes = self.nvml.processes()
                used = sum(device.memory_used for device in self.nvml.devices())
            except GpuUnavailableError:
                return
            held = [p for p in processes if p.pid in self.pids]
            if self.pids and not held:
                return
            if not self.pids and (
                used <= self.used_before - VRAM_DROP_BYTES or time.monotonic() > settle_until
            ):
                return  # nothing attributable: a short look for the drop, then go on
            if time.monotonic() > until:
                names = ", ".join(f"pid {p.pid} ({gib(p.used_bytes)})" for p in held)
                raise LaunchError(
                    f"The stopped agent's GPU memory is still held by {names} after "
                    f"{VRAM_TIMEOUT_S:.0f} s.",
                    hint="See `agent-manager gpu-stats` or `nvidia-smi`; end that process, "
                    "then launch again.",
                )
            if not told:
                events.message("Waiting for the GPU memory of the stopped agent to be freed...")
                told = True
            time.sleep(VRAM_POLL_S)


def gpu_holders() -> list[str]:
    """Every process holding GPU memory, as "pid N (name): X GiB"; [] without NVML."""
    try:
        processes = nvml_adapter.get_nvml().processes()
    except GpuUnavailableError:
        return []
    found = []
    for process in processes:
        try:
            comm = Path(f"/proc/{process.pid}/comm").read_text().strip()
        except OSError:
            comm = "?"
        found.append(f"pid {process.pid} ({comm}): {gib(process.used_bytes)}")
    return found


# --------------------------------------------------------------------------- follow


class _LogWatcher:
    """Reads the container's log in a thread: keeps the lines, the phase, and wakes the
    follower at once when vLLM announces it is serving or when the log ends."""

    def __init__(self, container_id: str, wake: threading.Event):
        self.lines: deque[str] = deque(maxlen=LOG_KEEP)
        # Every phase change with when it was seen: each is shown, even between two polls.
        self.phases: deque[tuple[str, float]] = deque()
        self.ended = threading.Event()
        self._wake = wake
        # Progress bars (weights download, shard loading) redraw with \r: each redraw is a line.
        self._stream = docker_adapter.LogStream(container_id, follow=True, split_cr=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for line in self._stream:
                self.lines.append(line)
                phase = phase_of(line)
                if phase is not None:
                    self.phases.append((phase, time.monotonic()))
                if announces_ready(line):
                    self._wake.set()
        finally:
            self.ended.set()
            self._wake.set()

    def finish(self, timeout: float) -> list[str]:
        """Wait a little for the last lines of a stopped container, then the log so far."""
        self._thread.join(timeout)
        return list(self.lines)

    def close(self) -> None:
        self._stream.close()


def _follow_until_ready(
    agent: Agent,
    container: AgentContainer,
    events: LaunchEvents,
    progress: LaunchProgress,
    start: float,
    deadline: float,
    options: LaunchOptions,
) -> None:
    endpoint = endpoint_for(agent)
    url, key = endpoint.url, endpoint.api_key  # the key is set: _require_api_key checked
    wake = threading.Event()
    watcher = _LogWatcher(container.id, wake)
    next_state = 0.0
    try:
        while True:
            now = time.monotonic()
            while watcher.phases:
                phase, seen = watcher.phases.popleft()
                if phase != progress.phase:
                    progress.phase = phase
                    events.phase(phase, seen - start)
            events.phase(progress.phase or STARTING, now - start)
            probe = http_adapter.probe_health(url, timeout=0.5)
            if probe.healthy:
                models = http_adapter.served_models(url, key, timeout=2.0)
                if models is not None and agent.served_name in models:
                    progress.phase = "ready"
                    return
            if now >= next_state or watcher.ended.is_set():
                next_state = now + STATE_POLL_S
                current = docker_adapter.agent_container(container.id)
                if current is None:
                    raise LaunchError(
                        f"The container of {agent.name} was removed while it was starting "
                        "(another `agent-manager launch` or `stop`, or `docker rm`).",
                        hint=f"Launch it again with `agent-manager launch {agent.name}`.",
                    )
                if not current.running:
                    _fail(agent, current, watcher)
            if now >= deadline:
                raise LaunchError(
                    f"{agent.name} is not ready after {options.timeout:.0f} s "
                    f"(phase: {progress.phase}). Its container keeps running.",
                    hint=f"Follow it with `agent-manager logs {agent.name} -f`, or stop it with "
                    f"`agent-manager stop {agent.name}`; raise --timeout to wait longer.",
                    details=list(watcher.lines)[-10:],
                )
            wake.wait(READY_POLL_S)
            wake.clear()
    finally:
        watcher.close()


def _fail(agent: Agent, container: AgentContainer, watcher: _LogWatcher) -> None:
    lines = watcher.finish(timeout=2.0)
    if not lines:
        lines = docker_adapter.log_lines(container.id)
    ctx = Context(agent=agent.name, exit_code=container.exit_code, state=container.state)
    failure = diagnose(lines, ctx)
    if failure.kind == "free-memory":
        ctx = Context(ctx.agent, ctx.exit_code, ctx.state, gpu_holders=gpu_holders())
        failure = diagnose(lines, ctx)
    raise LaunchFailed(agent.name, failure, container.name)
