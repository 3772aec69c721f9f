"""The agents the router serves: which `model` names reach which agent, at which address."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from agent_manager.spec.workspace import Workspace


@dataclass(frozen=True)
class Target:
    agent: str
    served_name: str
    url: str  # http://host:port, without /v1
    api_key_env: str | None  # the agent's own key, added upstream, never shown to clients
    max_context: int | str | None
    aliases: tuple[str, ...] = ()
    task: str = "generate"  # generate, pooling or transcription: which routes reach it
    sleeps: bool = False  # switch: sleep (the process, and what it remembers, survives)
    idle_s: float | None = None  # stop (or sleep) after this long without a request

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None


class Catalog:
    """Model name → agent. Specs are read again when an unknown name arrives, so a spec
    added while the router runs is served without a restart."""

    def __init__(self, load: Callable[[], list[Target]]):
        self._load = load
        self._targets = load()

    def targets(self) -> list[Target]:
        return list(self._targets)

    def names(self) -> list[str]:
        return sorted(
            {name for t in self._targets for name in (t.served_name, t.agent, *t.aliases)}
        )

    def get(self, agent: str) -> Target | None:
        return next((t for t in self._targets if t.agent == agent), None)

    def find(self, model: str) -> Target | None:
        found = self._match(model)
        if found is None:
            try:
                self._targets = self._load()
            except Exception:  # noqa: BLE001 - a spec broken meanwhile: keep serving the others
                return None
            found = self._match(model)
        return found

    def _match(self, model: str) -> Target | None:
        # Names are unique across the workspace (spec/uniqueness.py): the first match is the one.
        for target in self._targets:
            if model == target.served_name or model == target.agent or model in target.aliases:
                return target
        return None


def workspace_targets(ws: Workspace) -> list[Target]:
    from agent_manager.spec.endpoint import endpoint_for
    from agent_manager.spec.loader import load_agents

    targets = []
    for agent in load_agents(ws):
        endpoint = endpoint_for(agent)
        targets.append(
            Target(
                agent.name,
                agent.served_name,
                endpoint.url,
                agent.spec.api_key_env,
                agent.spec.max_context,
                tuple(agent.spec.aliases),
                agent.spec.task,
                agent.spec.switch == "sleep",
                agent.spec.idle_minutes * 60 or None,
            )
        )
    return targets
