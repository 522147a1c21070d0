"""The generic adapter shapes. Each of the 16 domain files picks one and names the contract's methods.

Shapes:
- `RecordAdapter`: one value per context (Signal, Schedule, Strategy, Risk, Recent, State, Session), or per
  context and signal id (Partial, Breakeven);
- `EntryAdapter`: soft-deleted entries under a context (Measure, Interval, Memory);
- `RowsAdapter`: row sets upserted by row id (Storage, Notification, Log);
- Candle has its own file.

Constructors validate their fields and do no I/O. Every method validates all of its input before any I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar, Protocol

from .. import validation
from ..errors import InvalidInput
from ..models import Item
from ..repositories import BulkCounts, Repository


class Backend(Protocol):
    """What an adapter needs from the store: a repository per model, and readiness. `Store` is one; a test can
    pass anything with these two methods."""

    def repository(self, model: type[Item]) -> Repository: ...

    async def wait_ready(self, timeout: float | None = None) -> None: ...


class Adapter:
    model: ClassVar[type[Item]]

    def __init__(self, backend: Backend, **context: Any) -> None:
        self._backend = backend
        self._repo = backend.repository(self.model)
        self._context = context

    async def wait_for_init(self, initial: bool) -> None:
        """`initial=True` waits for both servers (shared by concurrent callers); `False` costs nothing."""
        if initial:
            await self._backend.wait_ready()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._context.items())
        return f"{type(self).__name__}({fields})"


class RecordAdapter(Adapter):
    async def _read(self, default: Any, **extra: Any) -> Any:
        field = self.model.value_field
        doc = await self._repo.find({**self._context, **extra}, {field: 1})
        # A stored literal null reads as the default, as the file backend does.
        if doc is None or doc.get(field) is None:
            return default
        return doc[field]

    async def _write(self, value: Any, when: datetime | None = None, **extra: Any) -> None:
        fields: dict[str, Any] = {self.model.value_field: validation.payload(value)}
        if when is not None:
            fields["when"] = validation.when_ms(when)
        await self._repo.upsert({**self._context, **extra}, fields)


class EntryAdapter(Adapter):
    """Soft delete: `remove` marks `removed`, reads and lists skip it, a new write revives the key."""

    entry_field: ClassVar[str]

    def _key(self, entry: Any) -> dict[str, Any]:
        return {**self._context, self.entry_field: validation.context_str(self.entry_field, entry)}

    async def _read_entry(self, entry: Any) -> Any:
        doc = await self._repo.find(self._key(entry), {"payload": 1, "removed": 1})
        if doc is None or doc.get("removed"):
            return None
        return doc.get("payload")

    async def _has_entry(self, entry: Any) -> bool:
        return await self._repo.find(self._key(entry), {"_id": 1}) is not None

    async def _write_entry(self, data: Any, entry: Any, when: datetime) -> None:
        key = self._key(entry)
        if type(data) is not dict:
            raise InvalidInput(f"data must be a dict record, got {type(data).__name__}")
        fields = {"payload": validation.payload(data, "data"), "removed": bool(data.get("removed", False)),
                  "when": validation.when_ms(when)}
        await self._repo.upsert(key, fields)

    async def _remove_entry(self, entry: Any) -> None:
        await self._repo.soft_delete(self._key(entry))

    def _live(self, projection: dict[str, int]) -> AsyncIterator[dict[str, Any]]:
        return self._repo.iterate({**self._context, "removed": {"$ne": True}}, projection)

    async def _keys(self) -> AsyncIterator[str]:
        async for doc in self._live({self.entry_field: 1, "_id": 0}):
            yield doc[self.entry_field]

    async def _entries(self) -> AsyncIterator[tuple[str, Any]]:
        async for doc in self._live({self.entry_field: 1, "payload": 1, "_id": 0}):
            yield doc[self.entry_field], doc.get("payload")


class RowsAdapter(Adapter):
    """Rows keyed by their own `id`; nothing is ever deleted, and reads return every row."""

    row_field: ClassVar[str]
    append_only: ClassVar[bool] = False

    async def _read_rows(self) -> list[Any]:
        return [doc["payload"] async for doc in self._repo.iterate(self._context, {"payload": 1, "_id": 0})
                if doc.get("payload") is not None]

    async def _write_rows(self, rows: Any, name: str) -> BulkCounts:
        items = [({**self._context, self.row_field: row_id}, {"payload": row})
                 for row_id, row in validation.rows(name, rows, "id")]
        if self.append_only:
            return await self._repo.insert_missing(items)
        return await self._repo.upsert_many(items)


class StrategyScoped(RecordAdapter):
    """Constructed from `(symbol, strategy_name, exchange_name)`: Signal, Schedule, Strategy, Partial, Breakeven."""

    def __init__(self, backend: Backend, symbol: str, strategy_name: str, exchange_name: str) -> None:
        super().__init__(backend, symbol=validation.context_str("symbol", symbol),
                         strategyName=validation.context_str("strategy_name", strategy_name),
                         exchangeName=validation.context_str("exchange_name", exchange_name))


class SignalLevels(StrategyScoped):
    """Partial and Breakeven: one `{signalId: levels}` record per signal, `{}` when none."""

    async def _read_levels(self, signal_id: Any, when: datetime) -> Any:
        signal_id = validation.context_str("signal_id", signal_id)
        validation.when_ms(when)  # live-only reads pass `when`; it never filters
        value: Any = await self._read({}, signalId=signal_id)
        return value

    async def _write_levels(self, data: Any, signal_id: Any, when: datetime) -> None:
        signal_id = validation.context_str("signal_id", signal_id)
        if type(data) is not dict:
            raise InvalidInput(f"data must be a dict keyed by signal id, got {type(data).__name__}")
        await self._write(data, when, signalId=signal_id)


class ModeRows(RowsAdapter):
    """Storage and Notification: constructed from `(backtest,)`."""

    def __init__(self, backend: Backend, backtest: bool) -> None:
        super().__init__(backend, backtest=validation.context_bool("backtest", backtest))


class BucketEntries(EntryAdapter):
    """Measure and Interval: constructed from `(bucket,)`, entries keyed by `entryKey`."""

    entry_field = "entryKey"

    def __init__(self, backend: Backend, bucket: str) -> None:
        super().__init__(backend, bucket=validation.context_str("bucket", bucket))
