"""`/v1/models` as the router shows it: one card per served name and one per alias, each
naming its agent and its state; `max_model_len` only where it is a number (a strict client
reads an integer, and `auto` is known only to the running engine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_manager.router.catalog import Catalog, Target


def _card(model_id: str, target: Target, state: str, created: int) -> dict[str, Any]:
    card: dict[str, Any] = {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "agent-manager",
        "agent": target.agent,
        "state": state,
    }
    if model_id != target.served_name:
        card["alias_of"] = target.served_name
    if isinstance(target.max_context, int):
        card["max_model_len"] = target.max_context
    return card


def model_cards(catalog: Catalog, state_of: Callable[[str], str], created: int) -> list[dict]:
    return [
        _card(name, target, state_of(target.agent), created)
        for target in catalog.targets()
        for name in (target.served_name, *target.aliases)
    ]


def model_card(
    catalog: Catalog, model_id: str, state_of: Callable[[str], str], created: int
) -> dict[str, Any] | None:
    """The card of one name a client may ask for (agent name, served name or alias)."""
    target = catalog.find(model_id)
    if target is None:
        return None
    return _card(model_id, target, state_of(target.agent), created)
