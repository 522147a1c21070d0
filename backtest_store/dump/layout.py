"""Where each adapter keeps its files in a backtest-kit `./dump`, in both directions.

One `Layout` per adapter holds every rule for that adapter: how a path and its JSON become a
document (`parse`, for the importer) and how a document becomes a path and JSON (`path`/`value`, for the
exporter). Directory names built by joining context fields with `_` are ambiguous when a name contains `_`:
they are resolved from the file itself where it carries the context, else from what the rest of the dump says
and then the database (`Hints`), else reported, never guessed. On export, contexts whose joins are one path
are refused (`Layout.joined`).

The directory, the collection, first-write-wins and the import order come from the contract registry
(backtest_store/contracts.py): `LAYOUTS` has one layout per registry row. `LAYOUT_CLASSES` names the class of
each contract whose files the framework names its own way; the others (Dictionary) are `PlainLayout`, their path
being their context.

Longer than most files here on purpose: one small class per adapter, so that every rule of an adapter
(where its files live, how they parse, how they are written back) is in one place next to the others.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from .. import validation
from ..contracts import CONTRACTS, Contract
from ..errors import InvalidInput
from ..models import Item
from ..models.candle import candle_of
from .jsonfile import SUFFIX

from .hints import FRAMED, RISK, TRIPLE, Hints
from .names import (
    MODES,
    Record,
    Skip,
    _context,
    _context_str,
    _dict,
    _iso_ms,
    _ms,
    _payload,
    _triple_of,
    file_name,
    joined,
    mode_name,
    safe_name,
)

# -- the layouts -------------------------------------------------------------------------------------------------

class Layout:
    # How many path components below `root` a file has, its own name included.
    depths: frozenset[int]
    # The framework writes a literal null to clear the record (Signal, Schedule, Strategy), or reads one as empty
    # (Risk): such a file is a stored null, not a skip. Elsewhere a null file is reported.
    nullable: ClassVar[bool] = False
    # The context fields whose `_`-join names the directory: two contexts can share a path (export collisions).
    joined: ClassVar[tuple[str, ...]] = ()

    def __init__(self, contract: Contract) -> None:
        self.name: str = contract.name
        self.model: type[Item] = contract.model
        self.root: tuple[str, ...] = contract.dump
        # Candles and log entries are first-write-wins: an existing key is unchanged by definition.
        self.insert_only: bool = contract.insert_only

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        """`parts` are the path components below `root`, the last without `.json`; `value` is None only where
        `nullable`. Raises Skip, or Defer when the name needs the whole dump (see `Hints`)."""
        raise NotImplementedError

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        """The path components below `root` for a stored document, the last with `.json`."""
        raise NotImplementedError

    def value(self, doc: dict[str, Any]) -> Any:
        return doc.get(self.model.value_field)

    @property
    def projection(self) -> dict[str, int]:
        return {**{f: 1 for f in self.model.context_key()}, self.model.value_field: 1, "_id": 0}

    def _fixed_file_dir(self, parts: tuple[str, ...], file: str) -> str:
        """Strategy and Risk keep one fixed file per context directory: return that directory's name."""
        dirname, stem = parts
        if stem != file:
            raise Skip(f"a {self.name} directory holds only {file}{SUFFIX}")
        return dirname

    def _record(self, key: dict[str, Any], **fields: Any) -> Record:
        for field, value in key.items():
            if type(value) is str and not (field == "frameName" and value == ""):
                _context_str(field, value)
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    # A file name that is not UTF-8 reaches us with surrogate escapes; MongoDB stores UTF-8 only.
                    raise Skip(f"{field} {value!r:.80} is not UTF-8 text") from None
        return Record(key, {k: v for k, v in fields.items() if v is not None or k == self.model.value_field})


class CandleLayout(Layout):
    depths = frozenset({4})

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        exchange, symbol, interval, stem = parts
        try:
            validation.interval(interval)
            row = validation.candle(value, 0)
        except InvalidInput as exc:
            raise Skip(str(exc).replace("candles[0]", "candle")) from None
        ts = row.pop("timestamp")
        if stem != str(ts):
            raise Skip(f"file name {stem!r} is not the candle's timestamp {ts}")
        if validation.forming(ts, interval, int(time.time() * 1000)):
            raise Skip("a candle still forming (its close time is in the future): never cached, as the adapter "
                       "and backtest-kit skip it")
        return self._record({"exchangeName": exchange, "symbol": symbol, "interval": interval, "timestamp": ts}, **row)

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        exchange, symbol, interval, ts = _context(doc, "exchangeName", "symbol", "interval", "timestamp")
        # bson.Int64 is an int; the Node driver stores epoch ms past int32 as a whole-number double.
        if type(ts) is float and ts.is_integer():
            ts = int(ts)
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise Skip(f"timestamp {ts!r} is not an integer")
        return (safe_name(exchange, "exchangeName"), safe_name(symbol, "symbol"), safe_name(interval, "interval"),
                f"{int(ts)}{SUFFIX}")

    def value(self, doc: dict[str, Any]) -> Any:
        return candle_of(doc)

    @property
    def projection(self) -> dict[str, int]:
        return {"_id": 0, "exchangeName": 1, "symbol": 1, "interval": 1, **{f: 1 for f in validation.CANDLE_FIELDS},
                validation.EXTRA: 1, validation.KEY_ORDER: 1}


class PendingLayout(Layout):
    """Signal and Schedule: `<symbol>_<strategy>_<exchange>/<symbol>.json`; the row carries its context, a cleared
    record is a literal null and does not."""

    depths, nullable, joined = frozenset({2}), True, TRIPLE

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        dirname, symbol = parts
        row = None if value is None else _dict(value, "the row")
        named = _triple_of(row)
        context: tuple[str, ...]
        if named is not None and joined(*named) == dirname and named[0] == symbol:
            hints.learn(row)
            context = named
        else:
            # A null, or a row naming another context than its path (or none): the path decides, if it can.
            context = await hints.resolve(TRIPLE, _after(dirname, symbol), fixed=(symbol,))
        return self._record(dict(zip(TRIPLE, context)), payload=_payload(row))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        return _strategy_dir(doc), file_name(_context(doc, "symbol")[0], "symbol")


def _after(dirname: str, symbol: str) -> str:
    """What follows `<symbol>_` in a directory whose file names the symbol."""
    if not dirname.startswith(symbol + "_"):
        raise Skip(f"directory {dirname!r} does not start with {symbol + '_'!r} (the symbol its file names)")
    return dirname[len(symbol) + 1:]


def _strategy_dir(doc: dict[str, Any]) -> str:
    """`<symbol>_<strategy>_<exchange>`: the directory of Signal, Schedule, Strategy, Partial and Breakeven."""
    symbol, strategy, exchange = _context(doc, *TRIPLE)
    return joined(safe_name(symbol, "symbol"), safe_name(strategy, "strategyName"), safe_name(exchange, "exchangeName"))


class SignalLayout(PendingLayout):
    pass


class ScheduleLayout(PendingLayout):
    pass


class StrategyLayout(Layout):
    """`<symbol>_<strategy>_<exchange>/strategy.json`: the snapshot has no context, its inner rows may; a cleared
    snapshot is a literal null."""

    depths, nullable, joined = frozenset({2}), True, TRIPLE
    FILE = "strategy"

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        dirname = self._fixed_file_dir(parts, self.FILE)
        data = None if value is None else _dict(value, "the strategy snapshot")
        fields = data or {}
        inner = {t for t in map(_triple_of, fields.values()) if t is not None}
        for triple in inner:
            hints.learn(dict(zip(TRIPLE, triple)))
        signal_id = next((fields[f] for f in ("pendingSignalId", "lastPendingId")
                          if type(fields.get(f)) is str and fields[f]), None)
        context = await hints.resolve(TRIPLE, dirname, local=inner.__contains__, signal_id=signal_id)
        return self._record(dict(zip(TRIPLE, context)), payload=_payload(data))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        return _strategy_dir(doc), self.FILE + SUFFIX


class LevelsLayout(Layout):
    """Partial and Breakeven: `<symbol>_<strategy>_<exchange>/<signalId>.json`, payload `{signalId: ...}`."""

    depths, joined = frozenset({2}), TRIPLE

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        dirname, signal_id = parts
        data = _dict(value, "the levels record")
        triple = await hints.resolve(TRIPLE, dirname, signal_id=signal_id)
        return self._record({**dict(zip(TRIPLE, triple)), "signalId": signal_id}, payload=_payload(data))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        return _strategy_dir(doc), file_name(_context(doc, "signalId")[0], "signalId")


class PartialLayout(LevelsLayout):
    pass


class BreakevenLayout(LevelsLayout):
    pass


class RiskLayout(Layout):
    """`<riskName>_<exchange>/positions.json`; each position names its exchange, which is the suffix. A literal
    null reads as no positions."""

    depths, nullable, joined = frozenset({2}), True, RISK
    FILE = "positions"

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        dirname = self._fixed_file_dir(parts, self.FILE)
        if value is not None and type(value) is not list:
            raise Skip(f"positions must be a JSON array of [key, position] pairs, got {type(value).__name__}")
        exchanges = set()
        for pair in value or ():
            if type(pair) is list and len(pair) == 2:
                hints.learn(pair[1])
                if type(pair[1]) is dict and type(pair[1].get("exchangeName")) is str:
                    exchanges.add(pair[1]["exchangeName"])
        risk_name, exchange = await hints.resolve(RISK, dirname, local=lambda c: c[1] in exchanges)
        return self._record({"riskName": risk_name, "exchangeName": exchange}, positions=_payload(value))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        risk_name, exchange = _context(doc, "riskName", "exchangeName")
        return (joined(safe_name(risk_name, "riskName"), safe_name(exchange, "exchangeName")), self.FILE + SUFFIX)


class RowsLayout(Layout):
    """Storage and Notification: `{backtest,live}/<id>.json`; the row's own `id` is its key."""

    depths = frozenset({2})
    row_field: ClassVar[str]

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        mode, stem = parts
        if mode not in MODES:
            raise Skip(f"{mode!r} is neither backtest nor live")
        row = _dict(value, "the row")
        row_id = row.get("id", stem)
        hints.learn(row)
        return self._record({"backtest": MODES[mode], self.row_field: _context_str("id", row_id)},
                            payload=_payload(row))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        backtest, row_id = _context(doc, "backtest", self.row_field)
        if type(backtest) is not bool:
            raise Skip(f"backtest {backtest!r} is not a boolean")
        return (mode_name(backtest), file_name(row_id, self.row_field))


class StorageLayout(RowsLayout):
    row_field = "signalId"


class NotificationLayout(RowsLayout):
    row_field = "notificationId"


class LogLayout(Layout):
    depths = frozenset({1})

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        (stem,) = parts
        row = _dict(value, "the log entry")
        method, execution = row.get("methodContext"), row.get("executionContext")
        if type(method) is dict and type(execution) is dict:
            # The strategy, exchange and frame of the call, and the symbol it ran for.
            hints.learn({**execution, **method})
        return self._record({"entryId": _context_str("id", row.get("id", stem))}, payload=_payload(row))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        (entry_id,) = _context(doc, "entryId")
        return (file_name(entry_id, "entryId"),)


class SoftDeleteLayout(Layout):
    """Measure, Interval, Memory: a stored `removed` is kept both on the column and in the payload."""

    def value(self, doc: dict[str, Any]) -> Any:
        payload = doc.get("payload")
        if doc.get("removed") is True and type(payload) is dict and not validation.js_truthy(payload.get("removed")):
            payload = {**payload, "removed": True}
        return payload

    @property
    def projection(self) -> dict[str, int]:
        return {**super().projection, "removed": 1}

    def _entry(self, key: dict[str, Any], value: Any, when: int | None) -> Record:
        data = _dict(value, "the entry")
        # Removed as the framework reads it: `data.removed ? null : data`.
        return self._record(key, payload=_payload(data), removed=validation.js_truthy(data.get("removed")),
                            when=when)


class BucketLayout(SoftDeleteLayout):
    """`<bucket>/<key>.json`."""

    depths = frozenset({2})

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        bucket, key = _context(doc, "bucket", "entryKey")
        return (safe_name(bucket, "bucket"), file_name(key, "entryKey"))


class MeasureLayout(BucketLayout):
    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        bucket, key = parts
        return self._entry({"bucket": bucket, "entryKey": key}, value, None)


class IntervalLayout(BucketLayout):
    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        bucket, key = parts
        when = _iso_ms(value.get("when")) if type(value) is dict else None
        return self._entry({"bucket": bucket, "entryKey": key}, value, when)


class MemoryLayout(SoftDeleteLayout):
    depths = frozenset({3})

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        signal_id, bucket, memory_id = parts
        when = _ms(value.get("when")) if type(value) is dict else None
        return self._entry({"signalId": signal_id, "bucketName": bucket, "memoryId": memory_id}, value, when)

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        signal_id, bucket, memory_id = _context(doc, "signalId", "bucketName", "memoryId")
        return (safe_name(signal_id, "signalId"), safe_name(bucket, "bucketName"), file_name(memory_id, "memoryId"))


class RecentLayout(Layout):
    """`<symbol>_<strategy>_<exchange>[_<frame>]_<mode>/<symbol>.json`; the row carries the context."""

    depths, joined = frozenset({2}), (*FRAMED, "backtest")

    @staticmethod
    def dirname(symbol: str, strategy: str, exchange: str, frame: str, backtest: bool) -> str:
        return joined(symbol, strategy, exchange, *([frame] if frame else []), mode_name(backtest))

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        dirname, symbol = parts
        row = _dict(value, "the row")
        head, _, mode = dirname.rpartition("_")
        if mode not in MODES:
            raise Skip(f"directory {dirname!r} does not end with _backtest or _live")
        triple, frame = _triple_of(row), row.get("frameName", "")
        if triple is None:
            # A row without its context: the path decides, if it can.
            context = await hints.resolve(FRAMED, _after(head, symbol), fixed=(symbol,))
        else:
            if type(frame) is not str or triple[0] != symbol or self.dirname(*triple, frame, MODES[mode]) != dirname:
                raise Skip("the row's symbol/strategyName/exchangeName/frameName do not match its directory")
            hints.learn(row)
            context = (*triple, frame)
        key = {**dict(zip(FRAMED, context)), "backtest": MODES[mode]}
        return self._record(key, payload=_payload(row), when=_ms(row.get("timestamp")))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        symbol, strategy, exchange, frame, backtest = _context(
            doc, "symbol", "strategyName", "exchangeName", "frameName", "backtest")
        if type(backtest) is not bool:
            raise Skip(f"backtest {backtest!r} is not a boolean")
        if frame != "":
            safe_name(frame, "frameName")
        return (self.dirname(safe_name(symbol, "symbol"), safe_name(strategy, "strategyName"),
                             safe_name(exchange, "exchangeName"), frame, backtest), file_name(symbol, "symbol"))


class StateLayout(Layout):
    """`<signalId>/<bucketName>/<bucketName>.json`."""

    depths = frozenset({3})

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        signal_id, bucket, stem = parts
        if stem != bucket:
            raise Skip(f"a state file is named after its bucket ({bucket}{SUFFIX})")
        data = _dict(value, "the state record")
        return self._record({"signalId": signal_id, "bucketName": bucket}, payload=_payload(data),
                            when=_ms(data.get("when")))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        signal_id, bucket = _context(doc, "signalId", "bucketName")
        return (safe_name(signal_id, "signalId"), safe_name(bucket, "bucketName"), file_name(bucket, "bucketName"))


class SessionLayout(Layout):
    """`<strategy>/<exchange>/[<frame>/]<symbol>_<mode>.json` (the frame level is absent in live)."""

    depths = frozenset({3, 4})

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        strategy, exchange, *frame, stem = parts
        symbol, _, mode = stem.rpartition("_")
        if mode not in MODES or not symbol:
            raise Skip("a session file is named <symbol>_<backtest|live>.json (the 14.1.0 layout has no symbol)")
        data = _dict(value, "the session record")
        key = {"strategyName": strategy, "exchangeName": exchange, "frameName": frame[0] if frame else "",
               "symbol": symbol, "backtest": MODES[mode]}
        return self._record(key, payload=_payload(data), when=_ms(data.get("when")))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        strategy, exchange, frame, symbol, backtest = _context(
            doc, "strategyName", "exchangeName", "frameName", "symbol", "backtest")
        if type(backtest) is not bool:
            raise Skip(f"backtest {backtest!r} is not a boolean")
        frames = (safe_name(frame, "frameName"),) if frame != "" else ()
        return (safe_name(strategy, "strategyName"), safe_name(exchange, "exchangeName"), *frames,
                file_name(joined(safe_name(symbol, "symbol"), mode_name(backtest)), "symbol"))


class PlainLayout(Layout):
    """The default for a record whose directory names nothing but its context: the context fields in key order are
    the path, directories then the file name (Dictionary: `<signalId>/<dictionaryName>.json`); the payload's
    `when`, where it has one, is the document's. Every name is taken whole, never split."""

    def __init__(self, contract: Contract) -> None:
        super().__init__(contract)
        self.key = contract.model.context_key()
        self.depths = frozenset({len(self.key)})

    async def parse(self, parts: tuple[str, ...], value: Any, hints: Hints) -> Record:
        data = _dict(value, f"the {self.name} record")
        return self._record(dict(zip(self.key, parts)), payload=_payload(data), when=_ms(data.get("when")))

    def path(self, doc: dict[str, Any]) -> tuple[str, ...]:
        *dirs, last = zip(self.key, _context(doc, *self.key))
        return (*(safe_name(value, field) for field, value in dirs), file_name(last[1], last[0]))


LAYOUT_CLASSES: dict[str, type[Layout]] = {
    "candle": CandleLayout, "signal": SignalLayout, "schedule": ScheduleLayout, "strategy": StrategyLayout,
    "risk": RiskLayout, "partial": PartialLayout, "breakeven": BreakevenLayout, "storage": StorageLayout,
    "notification": NotificationLayout, "log": LogLayout, "measure": MeasureLayout, "interval": IntervalLayout,
    "memory": MemoryLayout, "recent": RecentLayout, "state": StateLayout, "session": SessionLayout,
}
# Import order, by the registry's `dump_pass`: the adapters whose files name contexts plainly (candle folders,
# rows, entries, State/Session/Dictionary paths) come first, then Signal/Schedule/Recent rows and Risk positions,
# then those that only have a `_`-joined directory name (Strategy, Partial, Breakeven); what still splits several
# ways is looked at again at the end.
LAYOUTS: tuple[Layout, ...] = tuple(
    LAYOUT_CLASSES.get(c.name, PlainLayout)(c) for c in sorted(CONTRACTS, key=lambda c: c.dump_pass))
ADAPTER_NAMES = tuple(layout.name for layout in LAYOUTS)
# Top-level entries of a dump that hold persistence data; everything else (reports, JSONL logs...) is not.
DATA_ROOTS = frozenset(layout.root[0] for layout in LAYOUTS)
DATA_DIRS = frozenset(layout.root[1] for layout in LAYOUTS if layout.root[0] == "data")
