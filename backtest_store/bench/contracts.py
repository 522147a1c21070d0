"""The contracts' surface for the benchmark's other storage designs, so that one driver calls them all alike.

backtest-store's own adapters are `store.adapters`. The other designs (the TypeScript original's access pattern,
the raw floor, a file store) implement five shapes, and `Factories` gives them the contract's factories and
method names: `factories.signal("BTCUSDT", "s", "e").write_signal_data(row)` works on any of them. Each contract
method is bound to its shape's method without an extra coroutine in between, so the designs pay nothing for it.

Everything here derives from the contract registry (backtest_store/contracts.py); the method names are the
adapters' own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import contracts as registry
from .. import validation
from ..models import Item


@dataclass(frozen=True)
class Contract:
    """One persistence contract: its model (collection, key, value field), its shape and what that shape needs."""

    name: str
    model: type[Item]
    shape: str  # candle | record | levels | rows | entries
    fields: tuple[str, ...]  # the constructor's arguments, as document fields, in the constructor's order
    default: Any = None
    entry_field: str = ""  # entries and rows: the field naming the entry or row
    append_only: bool = False
    methods: dict[str, Callable[..., Any]] = field(default_factory=dict)

    @property
    def value_field(self) -> str:
        return self.model.value_field


def _verb(adapter: type[Any]) -> str:
    """The infix of the adapter's methods: `read_<verb>_data` (`position` for Risk, `candles` for Candle)."""
    names: list[str] = [n for n in vars(adapter) if n.startswith("read_") and n.endswith("_data")]
    (name,) = names
    return name[len("read_"):-len("_data")]


def _methods(c: registry.Contract) -> dict[str, Callable[..., Any]]:
    verb, default = _verb(c.adapter), c.empty
    read, write = f"read_{verb}_data", f"write_{verb}_data"
    if c.shape == "candle":
        return {read: lambda s, limit, since, until: s.read_candles(limit, since),
                write: lambda s, candles: s.write_candles(candles)}
    if c.shape == "record":
        # Risk's read takes a `when` that never filters; Signal, Schedule and Strategy write without one.
        return {read: lambda s, *when: s.read(default), write: lambda s, value, when=None: s.write(value, when)}
    if c.shape == "levels":
        return {read: lambda s, signal_id, when: s.read(default, signal_id),
                write: lambda s, data, signal_id, when: s.write(data, when, signal_id)}
    if c.shape == "rows":
        return {read: lambda s: s.read_rows(), write: lambda s, rows: s.write_rows(rows)}
    # Memory, the one with `has`, lists (key, entry) pairs; Measure and Interval list keys.
    has = hasattr(c.adapter, f"has_{verb}_data")
    methods: dict[str, Callable[..., Any]] = {
        read: lambda s, key: s.read_entry(key),
        write: lambda s, data, key, when: s.write_entry(data, key, when),
        f"remove_{verb}_data": lambda s, key: s.remove_entry(key),
        f"list_{verb}_data": (lambda s: s.entries()) if has else (lambda s: s.keys()),
    }
    if has:
        methods[f"has_{verb}_data"] = lambda s, key: s.has_entry(key)
    return methods


CONTRACTS: dict[str, Contract] = {c.name: Contract(
    c.name, c.model, c.shape, c.fields, c.empty, c.field if c.shape in ("rows", "entries") else "",
    c.shape == "rows" and c.insert_only, _methods(c)) for c in registry.CONTRACTS}


class Shape:
    """What every shape implementation gets: its design's environment, the contract and the context."""

    def __init__(self, env: Any, contract: Contract, context: dict[str, Any]) -> None:
        self.env = env
        self.contract = contract
        self.context = context

    async def wait_for_init(self, initial: bool) -> None:
        return None

    def dispose(self) -> None:
        return None


class Factories:
    """`store.adapters`' factories for a design given as one class per shape (`candle`, `record`, `levels`, `rows`,
    `entries`). Classes are built once per contract."""

    def __init__(self, env: Any, shapes: dict[str, type[Shape]]) -> None:
        self.env = env
        self._classes = {name: type(f"{shapes[c.shape].__name__}[{name}]", (shapes[c.shape],), dict(c.methods))
                         for name, c in CONTRACTS.items()}
        for name in CONTRACTS:
            setattr(self, name, functools.partial(self._make, name))

    def _make(self, name: str, *args: Any) -> Any:
        contract = CONTRACTS[name]
        return self._classes[name](self.env, contract, dict(zip(contract.fields, args)))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only reached for a name no contract has: every factory is an instance attribute.
        raise AttributeError(f"no contract named {name!r}")


def when_ms(when: datetime | None) -> int | None:
    return None if when is None else validation.when_ms(when)
