"""The generic adapter shapes. Each domain file picks one and names the contract's methods.

Shapes:
- `RecordAdapter`: one value per context (Signal, Schedule, Strategy, Risk, Recent, State, Session,
  Dictionary), or per context and signal id (Partial, Breakeven);
- `EntryAdapter`: soft-deleted entries under a context (Measure, Interval, Memory);
- `RowsAdapter`: row sets upserted by row id (Storage, Notification, Log);
- Candle has its own file.

Constructors validate their fields and do no I/O. Every method validates all of its input before any I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol

from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError

from .. import validation
from ..errors import InvalidInput
from ..models import Item
from ..repositories import BulkCounts, Repository
from ..repositories.repository import WindowRow, digest, encoded_row

# A row is encoded before its shape is checked: BSON's walk of it can also meet a cycle or 1,000 levels
# (RecursionError) or a mapping that fails while iterated (whatever it raises): any of them is bad input, which
# `unencodable` names.
ROW_ENCODING_ERRORS = Exception


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
        doc = await self._repo.find({**self._context, **extra}, _projection(self.model, field), keyed=True)
        # A stored literal null reads as the default, as the file backend does.
        if doc is None or doc.get(field) is None:
            return default
        return doc[field]

    async def _write(self, value: Any, when: datetime | None = None, **extra: Any) -> None:
        fields: dict[str, Any] = {self.model.value_field: _checked(value, "payload")}
        if when is not None:
            fields["when"] = validation.when_ms(when)
        await _upsert(self._repo, {**self._context, **extra}, fields, value, "payload")


class EntryAdapter(Adapter):
    """Soft delete: `remove` marks `removed`, reads and lists skip it, a new write revives the key."""

    entry_field: ClassVar[str]

    def _key(self, entry: Any) -> dict[str, Any]:
        return {**self._context, self.entry_field: validation.context_str(self.entry_field, entry)}

    async def _read_entry(self, entry: Any) -> Any:
        doc = await self._repo.find(self._key(entry), _projection(self.model, "payload", "removed"), keyed=True)
        if doc is None or doc.get("removed"):
            return None
        return doc.get("payload")

    async def _has_entry(self, entry: Any) -> bool:
        return await self._repo.find(self._key(entry), _projection(self.model, "_id"), keyed=True) is not None

    async def _write_entry(self, data: Any, entry: Any, when: datetime) -> None:
        key = self._key(entry)
        if type(data) is not dict:
            raise InvalidInput(f"data must be a dict record, got {type(data).__name__}")
        fields = {"payload": _checked(data, "data"), "removed": validation.js_truthy(data.get("removed")),
                  "when": validation.when_ms(when)}
        await _upsert(self._repo, key, fields, data, "data")

    async def _remove_entry(self, entry: Any) -> None:
        await self._repo.soft_delete(self._key(entry))

    def _live(self, projection: dict[str, int]) -> Any:
        return self._repo.cursor({**self._context, "removed": {"$ne": True}}, projection)

    async def _keys(self) -> AsyncIterator[str]:
        # The cursor itself is iterated here: one async layer per key, batches of up to 100,000 keys.
        field = self.entry_field
        try:
            async with self._live({field: 1, "_id": 0}) as cursor:
                async for doc in cursor:
                    yield doc[field]
        except PyMongoError as exc:
            raise self._repo.list_failed(exc) from exc

    async def _entries(self) -> AsyncIterator[tuple[str, Any]]:
        field = self.entry_field
        try:
            async with self._live({field: 1, "payload": 1, "_id": 0}) as cursor:
                async for doc in cursor:
                    yield doc[field], doc.get("payload")
        except PyMongoError as exc:
            raise self._repo.list_failed(exc) from exc


class RowsAdapter(Adapter):
    """Rows keyed by their own `id`; nothing is ever deleted, and reads return every row.

    The framework re-sends whole windows (50 Storage rows, 500 notifications, 1,000 log entries) on every event.
    Each adapter remembers what its last write stored, one window at most, so that a re-sent window costs only
    what changed in it:
    - Storage and Notification (last writer wins): a digest per row; rows whose digest is the one this adapter
      last wrote are checked against the stored digests, the others are written (`Repository.write_window`);
    - Log (first write wins): ids stored already are skipped, values unread; the new ones are inserted.
    """

    row_field: ClassVar[str]
    append_only: ClassVar[bool] = False

    def __init__(self, backend: Backend, **context: Any) -> None:
        super().__init__(backend, **context)
        # Last writer wins: row id → digest as this adapter last wrote (or found) it. Only a hint: every row it
        # believes unchanged is still checked against the stored digest before it is skipped.
        self._written: dict[str, bytes] = {}
        # First write wins: ids this adapter knows are stored (its last window). Skipping them is always right:
        # a stored log entry is never rewritten, whoever wrote it.
        self._stored: frozenset[str] = frozenset()

    async def _read_rows(self) -> list[Any]:
        return [doc["payload"] async for doc in self._repo.iterate(self._context, {"payload": 1, "_id": 0})
                if doc.get("payload") is not None]

    async def _write_rows(self, rows: Any, name: str) -> BulkCounts:
        ids = validation.row_ids(name, rows, "id")
        if self.append_only:
            return await self._append(ids, rows, name)
        return await self._window(ids, rows, name)

    async def _window(self, ids: list[str], rows: list[dict[str, Any]], name: str) -> BulkCounts:
        field, context, written = self.row_field, self._context, self._written
        window: dict[str, WindowRow] = {}  # a row id repeated within one call ends with its last row
        for index, (row_id, row) in enumerate(zip(ids, rows)):
            try:
                encoded = encoded_row(row)
            except ROW_ENCODING_ERRORS as exc:
                raise validation.unencodable({f"{name}[{index}]": row}, exc) from None
            row_digest = digest(encoded)
            # A row with the bytes this adapter last wrote under its id was checked then: the same bytes are the
            # same value. Any other row is checked now, before any I/O.
            if written.get(row_id) != row_digest:
                validation.encoded_row_shape(name, index, row)
                validation.row_size(name, index, len(encoded))
            window[row_id] = WindowRow({**context, field: row_id}, row_id, encoded, row_digest)
        checked = list(window.values())
        counts = await self._repo.write_window(checked, written)
        self._written = {r.row_id: r.digest for r in checked}
        return counts

    async def _append(self, ids: list[str], rows: list[dict[str, Any]], name: str) -> BulkCounts:
        field, context, stored = self.row_field, self._context, self._stored
        new: dict[str, RawBSONDocument] = {}
        # First write wins: a stored id's value is never read.
        for index in [i for i, row_id in enumerate(ids) if row_id not in stored]:
            row_id, row = ids[index], rows[index]
            if row_id in new:
                continue
            try:
                encoded = encoded_row(row)
            except ROW_ENCODING_ERRORS as exc:
                raise validation.unencodable({f"{name}[{index}]": row}, exc) from None
            validation.encoded_row_shape(name, index, row)
            validation.row_size(name, index, len(encoded))
            new[row_id] = RawBSONDocument(encoded)
        if len(new) > 1 and not stored:
            # Nothing known (a new adapter): which of them are stored already, ids only, before sending any.
            found = await self._repo.stored_among({}, field, list(new))
            for doc in found:
                new.pop(doc[field], None)
        now = datetime.now(timezone.utc)
        docs = [{**context, field: row_id, "payload": row, "createDate": now, "updatedDate": now}
                for row_id, row in new.items()]
        inserted = await self._repo.insert_new(docs)
        self._stored = frozenset(ids)
        return BulkCounts(inserted, len(self._stored) - inserted, 0)


def _checked(value: Any, name: str) -> Any:
    """A keyed write's payload: its types and nesting here (`payload_shape`), the rest when the repository encodes
    it, before any I/O. Anything unusual goes through `payload`, which names the bad value."""
    if validation.payload_shape(value):
        return value
    return validation.payload(value, name)


async def _upsert(repo: Repository, key: dict[str, Any], fields: dict[str, Any], value: Any, name: str) -> None:
    try:
        await repo.upsert(key, fields)
    except validation.Unencodable:
        validation.payload(value, name)  # names the value BSON refused
        raise


_PROJECTIONS: dict[tuple[type[Item], tuple[str, ...]], dict[str, int]] = {}


def _projection(model: type[Item], *fields: str) -> dict[str, int]:
    """A keyed read's projection: the fields asked for and the key fields (to check a cached `_id`), built once."""
    found = _PROJECTIONS.get((model, fields))
    if found is None:
        found = _PROJECTIONS[(model, fields)] = {**{f: 1 for f in fields}, **{f: 1 for f in model.context_key()}}
    return found


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
