"""The package's modules import each other in one direction, without a cycle, `TYPE_CHECKING` and function-level
imports included.

The layers, lowest first (LAYERS below); a module imports only from its own layer or lower ones:

1. foundations: the models, errors, times, wording, the driver types;
2. settings and checks: config, validation, faults, command counting;
3. what the Store is built from: the Redis id cache, the repositories, the embedded servers;
4. the adapters (which need only a backend, not the Store);
5. the contract registry (`contracts`), which names each contract's model and adapter;
6. the services the Store exposes, which read the registry: migrations, inspection, analysis;
7. the Store;
8. tools that drive a Store: dump, demo, bench;
9. entry points: the CLI, `python -m`, the package's own `__init__`.

An import against that direction is named with both layers; a cycle inside a layer is named too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "backtest_store"


LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(names) for names in (
    {"models", "errors", "times", "wording", "drivers"},
    {"config", "validation", "faults", "counting"},
    {"cache", "repositories", "embedded"},
    {"adapters"},
    {"contracts"},
    {"migrations", "inspection", "analysis"},
    {"store"},
    {"dump", "demo", "bench"},
    {"cli", "__main__", "__init__"},
))


def layer_of(module: str) -> int:
    """The layer of `backtest_store.<part>...`, by its first part (`__init__` for the package itself)."""
    parts = module.split(".")
    part = parts[1] if len(parts) > 1 else "__init__"
    for rank, names in enumerate(LAYERS):
        if part in names:
            return rank
    raise AssertionError(f"{module} is in no layer: add {part!r} to LAYERS in tests/test_layering.py")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} (layer {layer_of(a) + 1}) imports {b} (layer {layer_of(b) + 1})"
            for a in sorted(graph) for b in sorted(graph[a]) if layer_of(b) > layer_of(a)]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                # `from pkg import submodule` depends on the submodule; `from pkg import name` on pkg itself.
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [*subs, target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40 and "backtest_store.store" in graph["backtest_store"]  # the graph is really read
    assert cycles(graph) == []


def test_imports_go_down_the_layers() -> None:
    graph = import_graph()
    assert upward_imports(graph) == []
    # Every layer is really there: a layer naming nothing that exists would pass vacuously.
    present = {layer_of(m) for m in graph}
    assert present == set(range(len(LAYERS))), present


def test_the_layer_check_finds_upward_imports() -> None:
    graph = {"backtest_store.models.signal": {"backtest_store.store"}, "backtest_store.store": {"backtest_store.models"},
             "backtest_store.adapters.base": {"backtest_store.repositories"}}
    assert upward_imports(graph) == ["backtest_store.models.signal (layer 1) imports backtest_store.store (layer 7)"]


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_adapters_need_only_a_backend() -> None:
    """An adapter runs on anything with `repository()` and `wait_ready()`, without the whole Store."""
    from backtest_store.contracts import Adapters
    from backtest_store.models import SignalItem

    class Backend:
        def __init__(self) -> None:
            self.asked: list[type] = []

        def repository(self, model: type) -> object:
            self.asked.append(model)
            return object()

        async def wait_ready(self, timeout: float | None = None) -> None:
            return None

    backend = Backend()
    Adapters(backend).signal("BTCUSDT", "s", "e")
    assert backend.asked == [SignalItem]
