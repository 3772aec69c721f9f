"""The package map is a rule, not a wish: imports go one way and nothing imports itself back.

`cli → router → switch → {plan, observe, diagnosis} → {compose, models, spec} → adapters`
(docs/architecture.md). Every import counts: at the top, inside a function, or under
`TYPE_CHECKING` (a type-only import still ties the two modules together for a reader).
The other packages sit where they are used:
- `client/` (chat, bench) talks to a running agent: beside `router`, it may read what runs but
  never changes it;
- `doctor/` reads the machine and what runs: beside `switch`, but it changes nothing either;
- `export/` renders specs for Kubernetes: beside `plan`, pure.
The base modules (`errors`, `fsio`, `units`, the package's `__init__`) may be imported by any
package and import only each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agent_manager

SRC = Path(agent_manager.__file__).parent
BASE = {"errors", "fsio", "units", ""}  # "" is agent_manager/__init__.py (the version)

_ADAPTERS: set[str] = set()
_SPEC = {"adapters"}
_MODELS = _SPEC | {"spec"}
_COMPOSE = _MODELS | {"models"}
_DIAGNOSIS = _COMPOSE | {"compose"}
_OBSERVE = _DIAGNOSIS | {"diagnosis"}
_PLAN = _OBSERVE | {"observe"}
_SWITCH = _PLAN | {"plan"}
_ROUTER = _SWITCH | {"switch"}

# Each package and the packages it may import (besides itself and the base modules).
ALLOWED: dict[str, set[str]] = {
    "adapters": _ADAPTERS,
    "spec": _SPEC,
    "models": _MODELS,
    "compose": _COMPOSE,
    "diagnosis": _DIAGNOSIS,
    "observe": _OBSERVE,  # neither switch nor plan: looking never changes what runs
    "plan": _PLAN,
    "export": _PLAN,
    "switch": _SWITCH,
    "doctor": _SWITCH,
    "router": _ROUTER,
    "client": _PLAN,  # reads and talks to a running agent; never switches
    "cli": _ROUTER | {"router", "client", "doctor", "export", "ui"},
    "ui": set(),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every agent_manager module `path` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            if node.module.split(".")[0] != "agent_manager":
                continue
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "agent_manager"}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) & modules.keys() for name, path in modules.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        source = _package(module)
        for target in sorted(targets):
            to = _package(target)
            if to == source or to in BASE:
                continue
            if source in BASE or to not in ALLOWED.get(source, set()):
                bad.append(f"{module} imports {target}")
    return bad


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_every_package_of_src_has_a_place_in_the_layer_rule() -> None:
    packages = {_package(module) for module in _modules()} - BASE
    assert packages <= ALLOWED.keys(), f"add {sorted(packages - ALLOWED.keys())} to ALLOWED"


def test_no_import_goes_against_the_layer_rule() -> None:
    assert layer_violations(_graph()) == []


def test_no_module_imports_itself_back_through_others() -> None:
    assert import_cycles(_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_circle() -> None:
    graph = {
        "agent_manager.observe.status": {"agent_manager.switch.hot"},
        "agent_manager.switch.hot": {"agent_manager.observe.status"},
        "agent_manager.adapters.docker": {"agent_manager.spec.workspace"},
        "agent_manager.spec.workspace": set(),
    }
    assert layer_violations(graph) == [
        "agent_manager.adapters.docker imports agent_manager.spec.workspace",
        "agent_manager.observe.status imports agent_manager.switch.hot",
    ]
    assert import_cycles(graph) == [["agent_manager.observe.status", "agent_manager.switch.hot"]]


# Each SDK behind an adapter has exactly these importers (httpx is also the router's own relay).
SDK_IMPORTERS = {
    "docker": {"agent_manager.adapters.docker_sdk"},
    "pynvml": {"agent_manager.adapters.nvml"},
    "huggingface_hub": {"agent_manager.adapters.hub", "agent_manager.adapters.hf_cache"},
    "psutil": {"agent_manager.adapters.host"},
    "requests": set(),  # httpx is the one HTTP client of our own calls
}


def test_each_sdk_is_imported_only_by_its_adapter() -> None:
    found: dict[str, set[str]] = {sdk: set() for sdk in SDK_IMPORTERS}
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.split(".")[0] in found:
                    found[name.split(".")[0]].add(module)
    assert found == SDK_IMPORTERS
