"""The 16 contracts' surface for the benchmark's other storage designs, so that one driver calls them all alike.

backtest-store's own adapters are `store.adapters`. The other designs (the TypeScript original's access pattern,
the raw floor, a file store) implement five shapes, and `Factories` gives them the contract's factories and
method names: `factories.signal("BTCUSDT", "s", "e").write_signal_data(row)` works on any of them. Each contract
method is bound to its shape's method without an extra coroutine in between, so the designs pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import validation
from ..models import (
    BreakevenItem,
    CandleItem,
    IntervalItem,
    Item,
    LogItem,
    MeasureItem,
    MemoryItem,
    NotificationItem,
    PartialItem,
    RecentItem,
    RiskItem,
    ScheduleItem,
    SessionItem,
    SignalItem,
    StateItem,
    StorageItem,
    StrategyItem,
)


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


STRATEGY = ("symbol", "strategyName", "exchangeName")


def _record(name: str, model: type[Item], fields: tuple[str, ...], *, default: Any = None, read_when: bool = False,
            write_when: bool = False, verb: str = "") -> Contract:
    verb = verb or name
    read: Callable[..., Any] = ((lambda s, when: s.read(default)) if read_when else (lambda s: s.read(default)))
    write: Callable[..., Any] = ((lambda s, value, when: s.write(value, when)) if write_when
                                 else (lambda s, value: s.write(value, None)))
    return Contract(name, model, "record", fields, default,
                    methods={f"read_{verb}_data": read, f"write_{verb}_data": write})


def _levels(name: str, model: type[Item]) -> Contract:
    return Contract(name, model, "levels", STRATEGY, {}, methods={
        f"read_{name}_data": lambda s, signal_id, when: s.read({}, signal_id),
        f"write_{name}_data": lambda s, data, signal_id, when: s.write(data, when, signal_id)})


def _rows(name: str, model: type[Item], fields: tuple[str, ...], row_field: str, *, append_only: bool = False) -> Contract:
    return Contract(name, model, "rows", fields, [], row_field, append_only, methods={
        f"read_{name}_data": lambda s: s.read_rows(), f"write_{name}_data": lambda s, rows: s.write_rows(rows)})


def _entries(name: str, model: type[Item], fields: tuple[str, ...], entry_field: str) -> Contract:
    methods: dict[str, Callable[..., Any]] = {
        f"read_{name}_data": lambda s, key: s.read_entry(key),
        f"write_{name}_data": lambda s, data, key, when: s.write_entry(data, key, when),
        f"remove_{name}_data": lambda s, key: s.remove_entry(key),
        f"list_{name}_data": (lambda s: s.entries()) if name == "memory" else (lambda s: s.keys()),
    }
    if name == "memory":
        methods["has_memory_data"] = lambda s, key: s.has_entry(key)
    return Contract(name, model, "entries", fields, None, entry_field, methods=methods)


CONTRACTS: dict[str, Contract] = {c.name: c for c in (
    Contract("candle", CandleItem, "candle", ("symbol", "interval", "exchangeName"), methods={
        "read_candles_data": lambda s, limit, since, until: s.read_candles(limit, since),
        "write_candles_data": lambda s, candles: s.write_candles(candles)}),
    _record("signal", SignalItem, STRATEGY),
    _record("schedule", ScheduleItem, STRATEGY),
    _record("strategy", StrategyItem, STRATEGY),
    _record("risk", RiskItem, ("riskName", "exchangeName"), default=[], read_when=True, write_when=True,
            verb="position"),
    _levels("partial", PartialItem),
    _levels("breakeven", BreakevenItem),
    _rows("storage", StorageItem, ("backtest",), "signalId"),
    _rows("notification", NotificationItem, ("backtest",), "notificationId"),
    _rows("log", LogItem, (), "entryId", append_only=True),
    _entries("measure", MeasureItem, ("bucket",), "entryKey"),
    _entries("interval", IntervalItem, ("bucket",), "entryKey"),
    _entries("memory", MemoryItem, ("signalId", "bucketName"), "memoryId"),
    _record("recent", RecentItem, ("symbol", "strategyName", "exchangeName", "frameName", "backtest"),
            write_when=True),
    _record("state", StateItem, ("signalId", "bucketName"), write_when=True),
    _record("session", SessionItem, ("strategyName", "exchangeName", "frameName", "symbol", "backtest"),
            write_when=True),
)}


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

    def _make(self, name: str, *args: Any) -> Any:
        contract = CONTRACTS[name]
        return self._classes[name](self.env, contract, dict(zip(contract.fields, args)))

    def candle(self, symbol: str, interval: str, exchange_name: str) -> Any:
        return self._make("candle", symbol, interval, exchange_name)

    def signal(self, symbol: str, strategy_name: str, exchange_name: str) -> Any:
        return self._make("signal", symbol, strategy_name, exchange_name)

    def schedule(self, symbol: str, strategy_name: str, exchange_name: str) -> Any:
        return self._make("schedule", symbol, strategy_name, exchange_name)

    def strategy(self, symbol: str, strategy_name: str, exchange_name: str) -> Any:
        return self._make("strategy", symbol, strategy_name, exchange_name)

    def risk(self, risk_name: str, exchange_name: str) -> Any:
        return self._make("risk", risk_name, exchange_name)

    def partial(self, symbol: str, strategy_name: str, exchange_name: str) -> Any:
        return self._make("partial", symbol, strategy_name, exchange_name)

    def breakeven(self, symbol: str, strategy_name: str, exchange_name: str) -> Any:
        return self._make("breakeven", symbol, strategy_name, exchange_name)

    def storage(self, backtest: bool) -> Any:
        return self._make("storage", backtest)

    def notification(self, backtest: bool) -> Any:
        return self._make("notification", backtest)

    def log(self) -> Any:
        return self._make("log")

    def measure(self, bucket: str) -> Any:
        return self._make("measure", bucket)

    def interval(self, bucket: str) -> Any:
        return self._make("interval", bucket)

    def memory(self, signal_id: str, bucket_name: str) -> Any:
        return self._make("memory", signal_id, bucket_name)

    def state(self, signal_id: str, bucket_name: str) -> Any:
        return self._make("state", signal_id, bucket_name)

    def recent(self, symbol: str, strategy_name: str, exchange_name: str, frame_name: str, backtest: bool) -> Any:
        return self._make("recent", symbol, strategy_name, exchange_name, frame_name, backtest)

    def session(self, strategy_name: str, exchange_name: str, frame_name: str, symbol: str, backtest: bool) -> Any:
        return self._make("session", strategy_name, exchange_name, frame_name, symbol, backtest)


def when_ms(when: datetime | None) -> int | None:
    return None if when is None else validation.when_ms(when)
