"""The contract registry: one row per backtest-kit persistence contract, and the one place that says what each is.

Every other table derives from `CONTRACTS`: the adapter factories (`Adapters`, which `Store` exposes as
`store.adapters`), the collections (`DOCUMENTS`), the collections without a Redis id cache, the insert-only ones,
the reads besides those by key and the recommended shard keys (migrations/sharding.py), the benchmark's contract
surface (bench/contracts.py), the dump layouts (dump/layout.py) and the demo's modes. tests/test_registry.py fails
when any of them and this registry disagree.

A new contract is a model (models/<name>.py), an adapter (adapters/<name>.py), one row here, and its tests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .adapters.base import Adapter, Backend
from .adapters.breakeven import BreakevenAdapter
from .adapters.candle import CandleAdapter
from .adapters.dictionary import DictionaryAdapter
from .adapters.interval import IntervalAdapter
from .adapters.log import LogAdapter
from .adapters.measure import MeasureAdapter
from .adapters.memory import MemoryAdapter
from .adapters.notification import NotificationAdapter
from .adapters.partial import PartialAdapter
from .adapters.recent import RecentAdapter
from .adapters.risk import RiskAdapter
from .adapters.schedule import ScheduleAdapter
from .adapters.session import SessionAdapter
from .adapters.signal import SignalAdapter
from .adapters.state import StateAdapter
from .adapters.storage import StorageAdapter
from .adapters.strategy import StrategyAdapter
from .models.base import Item

# A read besides those by key: its name (as migrate's sharding report says it), equality fields, range field.
ListRead = tuple[str, tuple[str, ...], str | None]

SHAPES = ("candle", "record", "levels", "rows", "entries")


@dataclass(frozen=True)
class Contract:
    name: str  # the factory's name on `store.adapters`, and the contract's methods' infix (`read_<name>_data`)
    adapter: type[Adapter]  # its `model` is the contract's collection
    shape: str  # candle | record (one value per context) | levels (per context and signal) | rows | entries
    fields: tuple[str, ...]  # the constructor's arguments, as document fields, in the constructor's order
    field: str  # record/levels: the value's field; entries: the entry key's; rows: the row id's; candle: timestamp
    dump: tuple[str, ...]  # the directory under a backtest-kit `./dump` holding its files
    empty: Any = None  # what a read returns when nothing is stored
    insert_only: bool = False  # first write wins: written with inserts, never upserts
    cached: bool = True  # read by key through the Redis key → _id cache
    list_read: ListRead | None = None
    shard_key: tuple[str, ...] | None = None  # docs/scale-out.md's recommendation; None: keep it unsharded
    # Import pass: 0 files naming their context plainly, 1 rows that may resolve a `_`-joined name, 2 files that
    # only have a `_`-joined directory name; each pass learns names the later ones resolve against (dump/hints.py).
    dump_pass: int = 0
    live_only: bool = False  # backtest-kit keeps it in memory in a backtest and persists it only live (the demo)

    @property
    def model(self) -> type[Item]:
        return self.adapter.model


STRATEGY = ("symbol", "strategyName", "exchangeName")
FRAMED = (*STRATEGY, "frameName", "backtest")

CONTRACTS: tuple[Contract, ...] = (
    Contract("candle", CandleAdapter, "candle", ("symbol", "interval", "exchangeName"), "timestamp",
             ("data", "candle"), insert_only=True, cached=False,
             list_read=("range read", ("exchangeName", "symbol", "interval"), "timestamp"),
             shard_key=("exchangeName", "symbol", "interval", "timestamp")),
    Contract("signal", SignalAdapter, "record", STRATEGY, "payload", ("data", "signal"), dump_pass=1,
             live_only=True),
    Contract("schedule", ScheduleAdapter, "record", STRATEGY, "payload", ("data", "schedule"), dump_pass=1,
             live_only=True),
    Contract("strategy", StrategyAdapter, "record", STRATEGY, "payload", ("data", "strategy"), dump_pass=2,
             live_only=True),
    Contract("risk", RiskAdapter, "record", ("riskName", "exchangeName"), "positions", ("data", "risk"), empty=[],
             dump_pass=1, live_only=True),
    Contract("partial", PartialAdapter, "levels", STRATEGY, "payload", ("data", "partial"), empty={}, dump_pass=2,
             live_only=True),
    Contract("breakeven", BreakevenAdapter, "levels", STRATEGY, "payload", ("data", "breakeven"), empty={},
             dump_pass=2, live_only=True),
    Contract("storage", StorageAdapter, "rows", ("backtest",), "signalId", ("data", "storage"), empty=[],
             cached=False, list_read=("read rows", ("backtest",), None), shard_key=("backtest", "signalId")),
    Contract("notification", NotificationAdapter, "rows", ("backtest",), "notificationId", ("data", "notification"),
             empty=[], cached=False, list_read=("read rows", ("backtest",), None),
             shard_key=("backtest", "notificationId")),
    Contract("log", LogAdapter, "rows", (), "entryId", ("data", "log", "log"), empty=[], insert_only=True,
             cached=False, list_read=("read rows", (), None), shard_key=("entryId",)),
    Contract("measure", MeasureAdapter, "entries", ("bucket",), "entryKey", ("data", "measure"),
             list_read=("list", ("bucket",), None), shard_key=("bucket", "entryKey")),
    Contract("interval", IntervalAdapter, "entries", ("bucket",), "entryKey", ("data", "interval"),
             list_read=("list", ("bucket",), None), shard_key=("bucket", "entryKey")),
    Contract("memory", MemoryAdapter, "entries", ("signalId", "bucketName"), "memoryId", ("memory",),
             list_read=("list", ("signalId", "bucketName"), None)),
    Contract("recent", RecentAdapter, "record", FRAMED, "payload", ("data", "recent"), dump_pass=1),
    Contract("state", StateAdapter, "record", ("signalId", "bucketName"), "payload", ("state",)),
    Contract("session", SessionAdapter, "record", ("strategyName", "exchangeName", "frameName", "symbol", "backtest"),
             "payload", ("session",)),
    Contract("dictionary", DictionaryAdapter, "record", ("signalId", "dictionaryName"), "payload", ("dictionary",),
             live_only=True),
)

BY_NAME: dict[str, Contract] = {c.name: c for c in CONTRACTS}
BY_MODEL: dict[type[Item], Contract] = {c.model: c for c in CONTRACTS}
DOCUMENTS: tuple[type[Item], ...] = tuple(c.model for c in CONTRACTS)
NAMES: tuple[str, ...] = tuple(c.name for c in CONTRACTS)


class Adapters:
    """`store.adapters`: one factory per contract, `store.adapters.<name>(*fields)`, taking the constructor fields
    in the contract's order (`adapters.signal("BTCUSDT", "strategy", "binance")`). No I/O happens here.

    The annotations are for type checkers only (a user's mypy sees `adapters.signal(...)` as a SignalAdapter);
    tests/test_registry.py checks that they name exactly the registry's contracts and adapters."""

    candle: Callable[..., CandleAdapter]
    signal: Callable[..., SignalAdapter]
    schedule: Callable[..., ScheduleAdapter]
    strategy: Callable[..., StrategyAdapter]
    risk: Callable[..., RiskAdapter]
    partial: Callable[..., PartialAdapter]
    breakeven: Callable[..., BreakevenAdapter]
    storage: Callable[..., StorageAdapter]
    notification: Callable[..., NotificationAdapter]
    log: Callable[..., LogAdapter]
    measure: Callable[..., MeasureAdapter]
    interval: Callable[..., IntervalAdapter]
    memory: Callable[..., MemoryAdapter]
    recent: Callable[..., RecentAdapter]
    state: Callable[..., StateAdapter]
    session: Callable[..., SessionAdapter]
    dictionary: Callable[..., DictionaryAdapter]

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        for contract in CONTRACTS:
            setattr(self, contract.name, functools.partial(contract.adapter, backend))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only reached for a name no contract has: every factory is an instance attribute.
        raise AttributeError(f"no contract named {name!r}; the contracts are {', '.join(NAMES)}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *NAMES})
