"""The hostile corpus for the router and the workspace: one row per way a hostile client, a
planted file or a bad day can go at them.

Each `Attack` does one thing (`act`) in a fresh `World` (a workspace, a bait file outside it,
a trap standing for an address the CLI never bound, and, when `router` is given, a router on
127.0.0.1 with those settings). The runner (`test_router_hostile.py`) checks for every row:
the HTTP status or exit code, the words of the message, the time bound, that no byte of the
secret reached the trap, that the bait file is untouched and no link was written through,
that no workspace file was lost, and that nothing printed a traceback.

To add a case, append a row.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tests.hostile.router_world import SECRET, Outcome, post, raw

if TYPE_CHECKING:
    from tests.hostile.test_router_hostile import World

CHAT = {"model": "po", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
CHAT_BYTES = json.dumps(CHAT).encode()
FAST = {  # limits small enough that a test waits for them in a second
    "header_timeout_s": 0.5,
    "header_max_bytes": 8192,
    "body_timeout_s": 0.5,
    "keepalive_s": 1.0,
    "max_connections": 20,
    "max_body_bytes": 64 * 1024,
}


@dataclass(frozen=True)
class Attack:
    id: str
    act: Callable[[World], Outcome]
    code: int  # the HTTP status, or the exit code of a command
    says: tuple[str, ...] = ()
    router: dict[str, Any] | None = None  # RouterConfig fields; limits= takes FAST-like keys
    needs: tuple[str, ...] = ()  # fixtures by name
    may_change: tuple[str, ...] = ("compose/docker-compose-*.yml",)
    max_seconds: float = 10.0
    check: Callable[[World, Outcome], None] | None = None


# --- the router's state: nothing in a workspace directs a secret ---------------------------------


def _status(world: World) -> Outcome:
    return Outcome.of(world.cli("status"))


def plant_legacy(world: World) -> Outcome:
    """The old workspace state file, naming the trap and a variable holding a secret."""
    info = {"pid": os.getpid(), "url": world.trap.url, "api_key_env": "HF_TOKEN", "started": 0}
    (world.ws / ".agent-manager-router.json").write_text(json.dumps(info))
    return _status(world)


def _state(world: World, **fields: Any) -> dict[str, Any]:
    import psutil

    return {
        "pid": os.getpid(),
        "port": world.trap.port,
        "host": "127.0.0.1",
        "workspace": str(world.ws.resolve()),
        "api_key_env": "HF_TOKEN",
        "started": psutil.Process().create_time(),
        **fields,
    }


def plant_state(mode: int = 0o600, link: bool = False, **fields: Any) -> Callable[[World], Outcome]:
    """A router state file in the private runtime folder, as someone else would plant it."""

    def act(world: World) -> Outcome:
        from agent_manager.router.state_file import router_file

        path = router_file(world.workspace, create=True)
        text = json.dumps(_state(world, **fields))
        if link:
            target = world.bait.parent / "planted.json"
            target.write_text(text)
            target.chmod(0o600)
            path.symlink_to(target)
        else:
            path.write_text(text)
            path.chmod(mode)
        return _status(world)

    return act


def loose_runtime_dir(world: World) -> Outcome:
    from agent_manager.router.runtime_dir import runtime_dir, workspace_key

    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    path = runtime_dir() / f"router-{workspace_key(world.ws)}.json"
    path.write_text(json.dumps(_state(world)))
    path.chmod(0o600)
    return _status(world)


def serve_in_open_runtime_dir(world: World) -> Outcome:
    from agent_manager.router.runtime_dir import runtime_dir

    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    return Outcome.of(world.cli("serve", "--port", str(_free())))


def own_router_shown(world: World) -> Outcome:
    """The workspace's own router: status names it (the proof works, not only the refusals)."""
    from agent_manager.router.state_file import router_claim

    assert world.router is not None
    for proxy in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):  # the key must not go through it
        world.monkeypatch.setenv(proxy, world.trap.url)
    with router_claim(world.workspace, "127.0.0.1", world.router.port, "HF_TOKEN"):
        return _status(world)


def second_serve(world: World) -> Outcome:
    from agent_manager.router.state_file import router_claim, router_file

    with router_claim(world.workspace, "127.0.0.1", 18080, None):
        outcome = Outcome.of(world.cli("serve", "--port", "18081"))
        outcome.facts["state kept"] = router_file(world.workspace).exists()
    return outcome


def _state_kept(world: World, outcome: Outcome) -> None:
    assert outcome.facts["state kept"], "the second serve removed the first one's state"


def _no_state_left(world: World, outcome: Outcome) -> None:
    from agent_manager.router.state_file import router_file

    assert not router_file(world.workspace).exists()


# --- links: no write follows one -----------------------------------------------------------------


def link(rel: str, then: Callable[[World], Outcome]) -> Callable[[World], Outcome]:
    def act(world: World) -> Outcome:
        path = world.ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(world.bait)
        return then(world)

    return act


def _launch(world: World) -> Outcome:
    return Outcome.of(world.cli("launch", "po", "--timeout", "5"))


def _compose(world: World) -> Outcome:
    return Outcome.of(world.cli("compose"))


def _replaced_by_file(rel: str) -> Callable[[World, Outcome], None]:
    def check(world: World, outcome: Outcome) -> None:
        path = world.ws / rel
        assert path.is_file() and not path.is_symlink(), f"{rel} is still a link"

    return check


def init_over_link(world: World) -> Outcome:
    """`init` in a folder whose agents/ holds a dangling link where a default spec goes."""
    fresh = world.ws.parent / "fresh"
    (fresh / "agents").mkdir(parents=True)
    world.bait.unlink()  # dangling: copyfile would create the bait through the link
    (fresh / "agents" / "po.yaml").symlink_to(world.bait)
    try:
        return Outcome.of(world.cli("init", str(fresh)))
    finally:
        world.bait.write_text(world.bait_text)


def bad_sleep_record(world: World) -> Outcome:
    record = {
        "agent": "po",
        "container_id": "c",
        "spec_hash": "h",
        "level": 3,
        "asleep": True,
        "since": 0,
    }
    folder = world.ws / ".agent-manager" / "sleep"
    folder.mkdir(parents=True)
    (folder / "po.json").write_text(json.dumps(record))
    return _list(world)


def _list(world: World) -> Outcome:
    return Outcome.of(world.cli("list"))


# --- names -------------------------------------------------------------------------------------


def served_as(agent: str, served: str) -> Callable[[World], Outcome]:
    def act(world: World) -> Outcome:
        path = world.ws / "agents" / f"{agent}.yaml"
        path.write_text(path.read_text() + f"served_name: {served}\n")
        return Outcome.of(world.cli("list"))

    return act


def duplicate_then_serve(world: World) -> Outcome:
    path = world.ws / "agents" / "developer.yaml"
    path.write_text(path.read_text() + "served_name: po\n")
    return Outcome.of(world.cli("serve", "--port", str(_free())))


def _free() -> int:
    from tests.standin.process import free_port

    return free_port()


# --- serve's options ---------------------------------------------------------------------------


def serve(*args: str, env: dict[str, str] | None = None) -> Callable[[World], Outcome]:
    def act(world: World) -> Outcome:
        for key, value in (env or {}).items():
            world.monkeypatch.setenv(key, value)
        return Outcome.of(world.cli("serve", "--port", str(_free()), *args))

    return act


# --- HTTP: what a client can hold ----------------------------------------------------------------


def http(
    data: bytes, *, wait_s: float = 5.0, then: bytes = b"", pause_s: float = 0.0
) -> Callable[[World], Outcome]:
    def act(world: World) -> Outcome:
        assert world.router is not None
        status, body, seconds = raw(
            world.router.port, data, wait_s=wait_s, then=then, pause_s=pause_s
        )
        return Outcome(status, body.decode("latin-1"), {"seconds": seconds})

    return act


def _headers(**extra: str) -> dict[str, str]:
    return {"content-type": "application/json", **extra}


def keyed(**extra: str) -> dict[str, str]:
    return _headers(authorization=f"Bearer {SECRET}", **extra)


def deep_json(depth: int, opener: str = "[") -> bytes:
    closer = "]" if opener == "[" else "}"
    inner = opener if opener == "[" else '{"a":'
    return (inner * depth + "1" + closer * depth).encode()


def idle_keepalive(world: World) -> Outcome:
    """One request, then nothing: the kept-alive connection is closed after the idle limit."""
    assert world.router is not None
    with socket.create_connection(("127.0.0.1", world.router.port), timeout=5) as conn:
        conn.sendall(post("/v1/chat/completions", CHAT_BYTES, _headers()))
        start = time.monotonic()
        data = b""
        while True:
            piece = conn.recv(65536)
            if not piece:
                break
            data += piece
        return Outcome(
            int(data.split(b" ", 2)[1]),
            data.decode("latin-1"),
            {"idle closed after": time.monotonic() - start},
        )


def _closed_within(limit: float) -> Callable[[World, Outcome], None]:
    def check(world: World, outcome: Outcome) -> None:
        seconds = outcome.facts.get("idle closed after", outcome.facts.get("seconds"))
        assert seconds is not None and seconds < limit, f"held for {seconds} s"

    return check


def connection_flood(world: World) -> Outcome:
    """More idle connections than the cap: the extra ones are closed, a log line says why,
    and once the flood ends a real client is served."""
    assert world.router is not None
    held = []
    refused = 0
    for _ in range(FAST["max_connections"] + 10):
        conn = socket.create_connection(("127.0.0.1", world.router.port), timeout=2)
        held.append(conn)
    time.sleep(0.2)
    for conn in held:
        conn.settimeout(0.3)
        try:
            if conn.recv(1) == b"":
                refused += 1
        except (TimeoutError, OSError):
            pass
    for conn in held:
        conn.close()
    time.sleep(0.2)
    answer = httpx.post(world.router.url + "/v1/chat/completions", json=CHAT, timeout=5)
    logged = [line for line in world.router.log.lines if "connection limit" in line]
    return Outcome(answer.status_code, answer.text + "\n".join(logged), {"refused": refused})


def _refused_extra(world: World, outcome: Outcome) -> None:
    assert outcome.facts["refused"] >= 10, outcome.facts


def slow_heads(world: World) -> Outcome:
    """Many half-sent request heads: each is closed at the head deadline, none is kept."""
    assert world.router is not None
    conns = [
        socket.create_connection(("127.0.0.1", world.router.port), timeout=3) for _ in range(15)
    ]
    for conn in conns:
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
    start = time.monotonic()
    closed = 0
    for conn in conns:
        conn.settimeout(max(0.1, 3 - (time.monotonic() - start)))
        try:
            data = conn.recv(65536)
            closed += data.startswith(b"HTTP/1.1 408") or data == b""
        except (TimeoutError, OSError):
            pass
        conn.close()
    answer = httpx.post(world.router.url + "/v1/chat/completions", json=CHAT, timeout=5)
    return Outcome(answer.status_code, answer.text, {"closed": closed})


def _all_closed(world: World, outcome: Outcome) -> None:
    assert outcome.facts["closed"] == 15, outcome.facts


def disconnected_waiters(world: World) -> Outcome:
    """Requests sent and dropped while a switch is under way leave the queue: a real client
    is not refused (429) for them, and no switch is made for them."""
    assert world.router is not None
    router = world.router
    router.switcher.seconds = 1.5
    other = threading.Thread(
        target=lambda: httpx.post(
            router.url + "/v1/chat/completions", json={**CHAT, "model": "architect"}, timeout=10
        ),
        daemon=True,
    )
    other.start()  # a slow switch to architect: now requests for po queue
    time.sleep(0.2)
    for _ in range(8):  # max_queue is 3
        conn = socket.create_connection(("127.0.0.1", router.port), timeout=2)
        conn.sendall(post("/v1/chat/completions", CHAT_BYTES, _headers()))
        time.sleep(0.02)
        conn.close()
    time.sleep(0.3)
    queued = router.core.scheduler.queued("po")
    other.join(10)
    time.sleep(0.3)
    switches = list(router.switcher.switches)
    answer = httpx.post(router.url + "/v1/chat/completions", json=CHAT, timeout=10)
    return Outcome(answer.status_code, answer.text, {"queued": queued, "switches": switches})


def _waiters_dropped(world: World, outcome: Outcome) -> None:
    assert outcome.facts["queued"] == 0, outcome.facts
    assert "po" not in outcome.facts["switches"], outcome.facts  # the dropped ones drove none


def docker_fault(world: World) -> Outcome:
    """A switch to architect while Docker is gone or hung: refused in words, quickly; po, which
    still runs and answers, keeps being served."""
    assert world.router is not None
    url = world.router.url + "/v1/chat/completions"
    failed = httpx.post(url, json={**CHAT, "model": "architect"}, timeout=15)
    served = httpx.post(url, json=CHAT, timeout=5)
    return Outcome(failed.status_code, failed.text, {"po after": served.status_code})


def _po_still_served(world: World, outcome: Outcome) -> None:
    assert outcome.facts["po after"] == 200, outcome.facts
    assert world.router is not None and world.router.core.scheduler.active == "po"


def _no_warning(world: World, outcome: Outcome) -> None:
    assert "Warning" not in outcome.text, outcome.text


def _no_urllib3_text(world: World, outcome: Outcome) -> None:
    assert "HTTPConnectionPool" not in outcome.text and "urllib3" not in outcome.text


def disk_full_switch(world: World) -> Outcome:
    """The disk fills while a switch writes the agent's compose file: 503 naming the disk."""
    assert world.router is not None
    spec = world.ws / "agents" / "architect.yaml"  # a port nobody holds on a shared machine
    spec.write_text(spec.read_text().replace("port: 8000", f"port: {_free()}"))
    url = world.router.url + "/v1/chat/completions"
    failed = httpx.post(url, json={**CHAT, "model": "architect"}, timeout=15)
    return Outcome(failed.status_code, failed.text)


def http10_stream(world: World) -> Outcome:
    assert world.router is not None
    body = json.dumps({**CHAT, "stream": True, "max_tokens": 4}).encode()
    status, data, _ = raw(
        world.router.port, post("/v1/chat/completions", body, _headers(), version="1.0")
    )
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return Outcome(status, data.decode("latin-1"), {"chunked": b"chunked" in head})


def _not_chunked(world: World, outcome: Outcome) -> None:
    assert not outcome.facts["chunked"], outcome.text


ROUTER = {"limits": FAST}
KEYED = {"limits": FAST, "api_key_env": "ROUTER_KEY"}
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"

ATTACKS: list[Attack] = [
    # state and secrets ------------------------------------------------------------------------
    Attack(
        "legacy-state-file-in-workspace",
        plant_legacy,
        0,
        ("Ignored", ".agent-manager-router.json", "never read from the workspace"),
    ),
    Attack(
        "serve-refuses-an-open-runtime-folder",
        serve_in_open_runtime_dir,
        2,
        ("runtime folder is not private", "open to other users"),
    ),
    Attack("no-router-no-warning", _status, 0, ("No agent is running.",), check=_no_warning),
    Attack(
        "state-readable-by-others",
        plant_state(mode=0o644),
        0,
        ("Ignored the router state", "open to other users"),
    ),
    Attack("state-is-a-link", plant_state(link=True), 0, ("Ignored the router state",)),
    Attack(
        "state-for-another-workspace",
        plant_state(workspace="/elsewhere"),
        0,
        ("names another workspace",),
    ),
    Attack("state-pid-reused", plant_state(started=1.0), 0, ()),
    Attack("state-pid-not-listening-there", plant_state(), 0, ("does not listen on port",)),
    Attack(
        "state-in-open-runtime-folder",
        loose_runtime_dir,
        0,
        ("Ignored the router state", "open to other users"),
    ),
    Attack(
        "state-off-loopback-host", plant_state(host="10.9.8.7"), 0, ("does not listen on port",)
    ),
    Attack(
        "own-router-is-shown",
        own_router_shown,
        0,
        ("Router: http://127.0.0.1:",),
        router=ROUTER,
        check=_no_state_left,
    ),
    Attack(
        "second-serve-refused",
        second_serve,
        2,
        ("A router already serves this workspace at http://127.0.0.1:18080/v1", "(pid"),
        check=_state_kept,
    ),
    # links ------------------------------------------------------------------------------------
    Attack(
        "lock-holder-file-is-a-link",
        link(".agent-manager.lock.holder", _launch),
        2,
        (".agent-manager.lock.holder is a symbolic link", "does not write through links"),
        needs=("fake_docker",),
    ),
    Attack(
        "lock-file-is-a-link",
        link(".agent-manager.lock", _launch),
        2,
        (".agent-manager.lock is a symbolic link",),
        needs=("fake_docker",),
    ),
    Attack(
        "compose-file-is-a-link",
        link("compose/docker-compose-po.yml", _compose),
        0,
        ("po",),
        check=_replaced_by_file("compose/docker-compose-po.yml"),
    ),
    Attack(
        "sleep-record-is-a-link-to-bait",
        link(".agent-manager/sleep/po.json", _list),
        0,
        ("Ignored the damaged sleep record",),
    ),
    Attack("init-over-dangling-link", init_over_link, 0, ()),
    Attack("sleep-record-level-3", bad_sleep_record, 0, ("Ignored the damaged sleep record",)),
    # names ------------------------------------------------------------------------------------
    Attack(
        "two-agents-one-served-name",
        served_as("developer", "architect"),
        2,
        ("developer.yaml", "architect.yaml", "'architect'"),
        may_change=("agents/*",),
    ),
    Attack(
        "served-name-is-another-agents-name",
        served_as("po", "developer"),
        2,
        ("po.yaml", "developer.yaml", "agent name of developer"),
        may_change=("agents/*",),
    ),
    Attack(
        "serve-refuses-duplicate-names",
        duplicate_then_serve,
        2,
        ("developer.yaml", "po.yaml"),
        may_change=("agents/*",),
    ),
    # serve's options --------------------------------------------------------------------------
    Attack(
        "drain-timeout-inf",
        serve("--drain-timeout", "inf"),
        2,
        ("--drain-timeout inf is not a number of seconds",),
    ),
    Attack("switch-timeout-inf", serve("--switch-timeout", "inf"), 2, ("--switch-timeout",)),
    Attack(
        "weak-key-off-loopback",
        serve("--host", "0.0.0.0", "--api-key-env", "WEAK", env={"WEAK": "x"}),
        2,
        ("weak key", "WEAK"),
    ),
    Attack(
        "blank-key-off-loopback",
        serve("--host", "0.0.0.0", "--api-key-env", "WEAK", env={"WEAK": "   "}),
        2,
        ("weak key",),
    ),
    Attack(
        "padded-short-key-off-loopback",
        serve("--host", "0.0.0.0", "--api-key-env", "WEAK", env={"WEAK": " short-key     "}),
        2,
        ("fewer than 16 characters",),
    ),
    # HTTP: heads, bodies, connections ---------------------------------------------------------
    Attack(
        "slow-request-head",
        http(HEAD, wait_s=3),
        408,
        (),
        router=ROUTER,
        max_seconds=3,
        check=_closed_within(1.5),
    ),
    Attack("many-slow-request-heads", slow_heads, 200, (), router=ROUTER, check=_all_closed),
    Attack(
        "huge-request-head",
        http(HEAD + b"x-pad: " + b"a" * 20000 + b"\r\n"),
        431,
        (),
        router=ROUTER,
    ),
    Attack(
        "slow-body",
        http(post("/v1/chat/completions", b"{" * 100, _headers())[:-90], wait_s=3),
        408,
        ("did not arrive within",),
        router=ROUTER,
        check=_closed_within(2.0),
    ),
    Attack(
        "declared-body-too-large",
        http(
            post("/v1/chat/completions", b"", _headers())[:-4].replace(
                b"content-length: 0", b"content-length: 999999999"
            )
            + b"\r\n\r\n"
        ),
        413,
        ("larger than the router's limit", "--max-body"),
        router=ROUTER,
    ),
    Attack(
        "chunked-body-too-large",
        http(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked"
            b"\r\n\r\n"
            + b"10000\r\n"
            + b"a" * 0x10000
            + b"\r\n"
            + b"10000\r\n"
            + b"a" * 0x10000
            + b"\r\n0\r\n\r\n"
        ),
        413,
        ("larger than the router's limit",),
        router=ROUTER,
    ),
    Attack("idle-keep-alive", idle_keepalive, 200, (), router=ROUTER, check=_closed_within(2.5)),
    Attack(
        "connection-flood",
        connection_flood,
        200,
        ("connection limit reached",),
        router=ROUTER,
        check=_refused_extra,
    ),
    Attack(
        "json-100000-deep-array",
        http(post("/v1/chat/completions", deep_json(100_000), _headers())),
        400,
        ("nested too deeply",),
        router=ROUTER | {"limits": FAST | {"max_body_bytes": 10**6}},
    ),
    Attack(
        "json-deep-objects",
        http(post("/v1/chat/completions", deep_json(50_000, "{"), _headers())),
        400,
        ("nested too deeply",),
        router=ROUTER | {"limits": FAST | {"max_body_bytes": 10**6}},
    ),
    Attack(
        "body-not-json",
        http(post("/v1/chat/completions", b"\xff\xfe", _headers())),
        400,
        ("must be a JSON object",),
        router=ROUTER,
    ),
    Attack(
        "model-not-a-string",
        http(post("/v1/chat/completions", b'{"model": ["po"]}', _headers())),
        400,
        ("'model' naming an agent",),
        router=ROUTER,
    ),
    Attack(
        "unknown-model",
        http(post("/v1/chat/completions", b'{"model": "../../etc"}', _headers())),
        404,
        ("does not exist",),
        router=ROUTER,
    ),
    # keys -------------------------------------------------------------------------------------
    Attack(
        "no-key-big-declared-body",
        http(
            post("/v1/chat/completions", b"", _headers())[:-4].replace(
                b"content-length: 0", b"content-length: 50000"
            )
            + b"\r\n\r\n",
            wait_s=2,
        ),
        401,
        ("Missing or wrong API key",),
        router=KEYED,
        max_seconds=2,
    ),
    Attack(
        "wrong-key",
        http(post("/v1/chat/completions", CHAT_BYTES, _headers(authorization="Bearer x"))),
        401,
        ("Missing or wrong API key",),
        router=KEYED,
    ),
    Attack(
        "right-key",
        http(post("/v1/chat/completions", CHAT_BYTES, keyed())),
        200,
        ("chat.completion",),
        router=KEYED,
    ),
    # headers and HTTP versions ----------------------------------------------------------------
    Attack(
        "non-ascii-user-agent",
        http(post("/v1/chat/completions", CHAT_BYTES, _headers(**{"user-agent": "caf\xe9/1"}))),
        200,
        ("chat.completion",),
        router=ROUTER,
    ),
    Attack(
        "non-ascii-accept",
        http(post("/v1/chat/completions", CHAT_BYTES, _headers(accept="text/\xff\xfe"))),
        200,
        ("chat.completion",),
        router=ROUTER,
    ),
    Attack("http-1.0-stream", http10_stream, 200, ("data:",), router=ROUTER, check=_not_chunked),
    # a bad day --------------------------------------------------------------------------------
    Attack(
        "waiters-leave-the-queue",
        disconnected_waiters,
        200,
        (),
        router=ROUTER | {"max_queue": 3},
        check=_waiters_dropped,
    ),
    Attack(
        "docker-gone-during-switch",
        docker_fault,
        503,
        ("architect did not start", "Docker is not answering"),
        router=ROUTER | {"docker": "gone"},
        needs=("docker_down",),
        check=_po_still_served,
    ),
    Attack(
        "docker-hung-during-switch",
        docker_fault,
        503,
        ("Docker is not answering", "no answer in 3 s"),
        router=ROUTER | {"docker": "hung"},
        needs=("docker_hung",),
        max_seconds=8,
        check=_po_still_served,
    ),
    Attack(
        "docker-lost-under-status",
        _status,
        1,
        ("Docker is not answering (connection lost: ConnectionError)",),
        needs=("docker_lost",),
        check=_no_urllib3_text,
    ),
    Attack(
        "disk-full-mid-switch",
        disk_full_switch,
        503,
        ("No space left",),
        router=ROUTER | {"docker": "fake"},
        needs=("fake_docker", "disk_full"),
        may_change=("agents/architect.yaml", "compose/*"),
    ),
]
