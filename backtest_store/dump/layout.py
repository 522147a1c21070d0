"""Where each of the 16 adapters keeps its files in a backtest-kit `./dump`, in both directions.

One `Layout` per adapter holds every rule for that adapter: the directory, how a path and its JSON become a
document (`parse`, for the importer) and how a document becomes a path and JSON (`path`/`value`, for the
exporter). Directory names built by joining context fields with `_` are ambiguous when a name contains `_`:
they are resolved from the file itself where it carries the context, else from what the rest of the dump says
and then the database (`Hints`), else reported, never guessed. On export, contexts whose joins are one path
are refused (`Layout.joined`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .. import validation
from ..errors import InvalidInput
from ..models import (
    BreakevenItem, CandleItem, IntervalItem, Item, LogItem, MeasureItem, MemoryItem, NotificationItem, PartialItem,
    RecentItem, RiskItem, ScheduleItem, SessionItem, SignalItem, StateItem, StorageItem, StrategyItem,
)
from ..models.candle import candle_of
from .jsonfile import MAX_NAME_BYTES, SUFFIX, TMP_OVERHEAD, TMP_PREFIX

if TYPE_CHECKING:
    from ..store import Store

MODES = {"backtest": True, "live": False}
Triple = tuple[str, str, str]  # (symbol, strategyName, exchangeName)
# Above this many ways to split a directory name, only in-memory hints are consulted (no database look-ups).
MAX_DB_CANDIDATES = 64
# A name that splits more ways than this is reported without trying (it would take a `_` in nearly every part).
MAX_CANDIDATES = 4096
# Distinct names and contexts remembered per role and shape: a dump has few, whatever its number of files.
MAX_HINTS = 100_000


class Skip(Exception):
    """This file or document cannot be imported or exported; the message says why."""


@dataclass(frozen=True)
class Record:
    """One document to write: its context key, the fields to set, and the file it came from (for reports)."""

    key: dict[str, Any]
    fields: dict[str, Any]
    source: str = ""


def mode_name(backtest: bool) -> str:
    return "backtest" if backtest else "live"


# -- names -------------------------------------------------------------------------------------------------------

def safe_name(value: Any, what: str, *, file: bool = False) -> str:
    """A context value usable as one path component; anything else is refused (never written, never escaped)."""
    if type(value) is not str:
        raise Skip(f"{what} is not a string ({type(value).__name__})")
    if not value or value in (".", ".."):
        raise Skip(f"{what} {value!r} cannot be a file name")
    if "/" in value or "\x00" in value:
        raise Skip(f"{what} {value!r:.80} contains '/' or NUL and cannot be a file name")
    limit = MAX_NAME_BYTES - (TMP_OVERHEAD + len(SUFFIX) if file else 0)
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        raise Skip(f"{what} {value[:40]!r}... is longer than a file name can be")
    if file and value.startswith(TMP_PREFIX):
        raise Skip(f"{what} {value!r:.80} starts with {TMP_PREFIX!r}: backtest-kit would ignore the file")
    return value


def file_name(value: Any, what: str) -> str:
    return safe_name(value, what, file=True) + SUFFIX


def joined(*parts: str) -> str:
    return "_".join(parts)


def splits(name: str, n: int) -> Iterator[tuple[str, ...]]:
    """Every way to cut `name` at `_` into `n` non-empty parts."""
    if n == 1:
        if name:
            yield (name,)
        return
    for i, ch in enumerate(name):
        if ch == "_" and i > 0:
            for rest in splits(name[i + 1:], n - 1):
                yield (name[:i], *rest)


def _context(doc: dict[str, Any], *fields: str) -> tuple[Any, ...]:
    try:
        return tuple(doc[f] for f in fields)
    except KeyError as exc:
        raise Skip(f"the document lacks {exc.args[0]}") from None


def _context_str(name: str, value: Any) -> str:
    try:
        return validation.context_str(name, value)
    except InvalidInput as exc:
        raise Skip(str(exc)) from None


def _payload(value: Any) -> Any:
    try:
        return validation.payload(value)
    except InvalidInput as exc:
        raise Skip(f"unsupported payload: {exc}") from None
    except UnicodeEncodeError:
        # JSON.parse accepts a lone surrogate escape (`\\ud800`); BSON strings are UTF-8 and cannot hold one.
        raise Skip("unsupported payload: a string holds a lone surrogate (a \\udxxx escape), which is not UTF-8 "
                   "and cannot be stored in MongoDB") from None


def _dict(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise Skip(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _ms(value: Any) -> int | None:
    """A `when` in epoch milliseconds, or None when the payload's value is not one."""
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is int and -(2**63) <= value < 2**63:
        return value
    return None


def _iso_ms(value: Any) -> int | None:
    if type(value) is not str:
        return None
    try:
        when = datetime.fromisoformat(value)
        return validation.when_ms(when)
    except (ValueError, InvalidInput):
        return None


def _triple_of(value: Any) -> Triple | None:
    if type(value) is dict:
        parts = value.get("symbol"), value.get("strategyName"), value.get("exchangeName")
        if all(type(p) is str and p for p in parts):
            return parts  # type: ignore[return-value]
    return None


# -- what the dump says about names joined with `_` -------------------------------------------------------------

# The shapes of joined directory names, as the context fields they join, in order.
TRIPLE = ("symbol", "strategyName", "exchangeName")
FRAMED = (*TRIPLE, "frameName")  # Recent: the frame level is absent when the frame is ""
RISK = ("riskName", "exchangeName")
ROLES = ("symbol", "strategyName", "exchangeName", "frameName", "riskName")
# The framework writes risk names nowhere but in Risk's own directory names: that part is not checked by role.
UNNAMED_ROLES = frozenset({"riskName"})


class Defer(Exception):
    """The name splits several ways and the file itself does not say which: look again once the whole dump has been
    read, so that the answer never depends on the order in which files were met."""


class Knowledge:
    """The contexts and names this dump states plainly (payload fields, unambiguous paths), bounded in size."""

    def __init__(self) -> None:
        self.contexts: dict[tuple[str, ...], set[tuple[str, ...]]] = {TRIPLE: set(), FRAMED: set(), RISK: set()}
        self.names: dict[str, set[str]] = {role: set() for role in ROLES}
        # Past the caps nothing more is remembered, so what is remembered can no longer rule a split out.
        self.complete = True

    def _add(self, into: set[Any], item: Any) -> None:
        if item not in into:
            if len(into) >= MAX_HINTS:
                self.complete = False
            else:
                into.add(item)

    def learn(self, value: Any) -> None:
        """Remember the context named by a dict with `symbol`/`strategyName`/... fields (a row, or a record key)."""
        if type(value) is not dict:
            return
        found = {role: value[role] for role in ROLES if type(value.get(role)) is str and value[role]}
        for role, name in found.items():
            self._add(self.names[role], name)
        if all(role in found for role in TRIPLE):
            triple = tuple(found[role] for role in TRIPLE)
            self._add(self.contexts[TRIPLE], triple)
            frame = value.get("frameName")
            if type(frame) is str:
                self._add(self.contexts[FRAMED], (*triple, frame))
        if all(role in found for role in RISK):
            self._add(self.contexts[RISK], tuple(found[role] for role in RISK))

    def named(self, shape: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
        """Every part of the split is a name the dump uses in that role (an empty frame is no frame level)."""
        return all(role in UNNAMED_ROLES or part in self.names[role] or (role == "frameName" and part == "")
                   for role, part in zip(shape, candidate))


def _candidates(shape: tuple[str, ...], name: str, fixed: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every split of `name` into the parts of `shape` not given in `fixed` (Recent's frame may be absent)."""
    if shape == FRAMED:
        free = [*splits(name, 2)]
        found = [(*fixed, *rest, "") for rest in free]
        for rest in splits(name, 3):
            found.append((*fixed, *rest))
            if len(found) > MAX_CANDIDATES:
                break
        return found
    found = []
    for rest in splits(name, len(shape) - len(fixed)):
        found.append((*fixed, *rest))
        if len(found) > MAX_CANDIDATES:
            break
    return found


class Hints:
    """Resolves `_`-joined directory names from what the dump says, then from the database; never guesses.

    The evidence, strongest first: the file's own content (`local`), the context of the signal the file belongs to
    (Storage rows), contexts the dump names in full, splits whose every part the dump names in that role, contexts
    already in the database. Each source narrows the splits left by the previous ones; one split left is the
    answer, none or several is a Skip. A first look (`final=False`) uses the file's own content only and raises
    Defer otherwise; the final look, once every file has been read, uses everything.
    """

    def __init__(self, store: "Store", knowledge: Knowledge | None = None, *, final: bool = False) -> None:
        self._store = store
        self.knowledge = knowledge or Knowledge()
        self.final = final
        # (shape, name, fixed) -> (the answer or None, how many splits were left, the first few as text)
        self._resolved: dict[tuple[Any, ...], tuple[tuple[str, ...] | None, int, str]] = {}

    def finally_(self) -> "Hints":
        """The view that resolves what the first look deferred, sharing what was learned."""
        return Hints(self._store, self.knowledge, final=True)

    def learn(self, value: Any) -> None:
        self.knowledge.learn(value)

    async def _exists(self, model: type[Item], match: dict[str, Any]) -> bool:
        repo = self._store.repository(model)
        async with contextlib.aclosing(repo.iterate(match, {"_id": 1}, batch_size=1)) as docs:
            async for _ in docs:
                return True
        return False

    async def _in_database(self, shape: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
        match = dict(zip(shape, candidate))
        if shape == RISK:
            return await self._exists(RiskItem, match)
        if shape == FRAMED:
            return await self._exists(SessionItem, match) or any(
                [await self._exists(RecentItem, {**match, "backtest": mode}) for mode in (False, True)])
        for model in (SignalItem, ScheduleItem, StrategyItem, RecentItem):
            if await self._exists(model, match):
                return True
        return False

    async def _signal_context(self, signal_id: str) -> set[tuple[str, ...]]:
        """The contexts the Storage rows of this signal id name (Storage is imported before everything that asks)."""
        found: set[tuple[str, ...]] = set()
        repo = self._store.repository(StorageItem)
        match = {"backtest": {"$in": [False, True]}, "signalId": signal_id}
        async for doc in repo.iterate(match, {"payload": 1, "_id": 0}):
            triple = _triple_of(doc.get("payload"))
            if triple is not None:
                found.add(triple)
        return found

    async def resolve(self, shape: tuple[str, ...], name: str, *, fixed: tuple[str, ...] = (),
                      local: Callable[[tuple[str, ...]], bool] | None = None,
                      signal_id: str | None = None) -> tuple[str, ...]:
        """The one context of `shape` whose `_`-join, after the parts in `fixed`, is `name`; else Defer or Skip."""
        candidates = _candidates(shape, name, fixed)
        if len(candidates) > MAX_CANDIDATES:
            raise Skip(f"ambiguous name {name!r}: it splits too many ways to be resolved")
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise Skip(f"{name!r} cannot be split into {', '.join(shape[len(fixed):])}")
        left = candidates
        if local is not None:
            left = _narrow(left, [c for c in left if local(c)])
            if len(left) == 1:
                return left[0]
        if not self.final:
            raise Defer()
        if signal_id is not None and shape == TRIPLE:
            context = await self._signal_context(signal_id)
            left = _narrow(left, [c for c in left if c in context])
            if len(left) == 1:
                return left[0]
        cache_key = (shape, name, fixed)
        cacheable = left is candidates
        if cacheable and cache_key in self._resolved:
            found, count, shown = self._resolved[cache_key]
        else:
            left = await self._from_data(shape, left)
            found, count = (left[0] if len(left) == 1 else None), len(left)
            shown = ", ".join("/".join(c[len(fixed):]) for c in left[:3]) + (", ..." if count > 3 else "")
            if cacheable:
                if len(self._resolved) >= MAX_HINTS:
                    self._resolved.clear()
                self._resolved[cache_key] = found, count, shown
        if found is None:
            what = " and ".join(shape[len(fixed):])
            why = "" if self.knowledge.complete else "; the dump names too many contexts to keep them all in memory"
            raise Skip(f"ambiguous name {name!r}: cannot tell {what} apart ({count} splits left: {shown}){why}")
        return found

    async def _from_data(self, shape: tuple[str, ...], left: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        if self.knowledge.complete:
            left = _narrow(left, [c for c in left if c in self.knowledge.contexts[shape]])
            if len(left) > 1:
                left = _narrow(left, [c for c in left if self.knowledge.named(shape, c)])
        if len(left) > 1 and len(left) <= MAX_DB_CANDIDATES:
            left = _narrow(left, [c for c in left if await self._in_database(shape, c)])
        return left


def _narrow(left: list[tuple[str, ...]], hits: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """A source that names none of the splits left says nothing; one that names some rules the others out."""
    return hits or left


# -- the layouts -------------------------------------------------------------------------------------------------

class Layout:
    name: ClassVar[str]
    model: ClassVar[type[Item]]
    root: ClassVar[tuple[str, ...]]
    # How many path components below `root` a file has, its own name included.
    depths: ClassVar[frozenset[int]]
    # Candles and log entries are first-write-wins: an existing key is unchanged by definition.
    insert_only: ClassVar[bool] = False
    # The framework writes a literal null to clear the record (Signal, Schedule, Strategy), or reads one as empty
    # (Risk): such a file is a stored null, not a skip. Elsewhere a null file is reported.
    nullable: ClassVar[bool] = False
    # The context fields whose `_`-join names the directory: two contexts can share a path (export collisions).
    joined: ClassVar[tuple[str, ...]] = ()

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
    name, model, root, depths, insert_only = "candle", CandleItem, ("data", "candle"), frozenset({4}), True

    async def parse(self, parts, value, hints):
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

    def path(self, doc):
        exchange, symbol, interval, ts = _context(doc, "exchangeName", "symbol", "interval", "timestamp")
        # bson.Int64 is an int; the Node driver stores epoch ms past int32 as a whole-number double.
        if type(ts) is float and ts.is_integer():
            ts = int(ts)
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise Skip(f"timestamp {ts!r} is not an integer")
        return (safe_name(exchange, "exchangeName"), safe_name(symbol, "symbol"), safe_name(interval, "interval"),
                f"{int(ts)}{SUFFIX}")

    def value(self, doc):
        return candle_of(doc)

    @property
    def projection(self):
        return {"_id": 0, "exchangeName": 1, "symbol": 1, "interval": 1, **{f: 1 for f in validation.CANDLE_FIELDS},
                validation.EXTRA: 1, validation.KEY_ORDER: 1}


class PendingLayout(Layout):
    """Signal and Schedule: `<symbol>_<strategy>_<exchange>/<symbol>.json`; the row carries its context, a cleared
    record is a literal null and does not."""

    depths, nullable, joined = frozenset({2}), True, TRIPLE

    async def parse(self, parts, value, hints):
        dirname, symbol = parts
        row = None if value is None else _dict(value, "the row")
        triple = _triple_of(row)
        if triple is not None and joined(*triple) == dirname and triple[0] == symbol:
            hints.learn(row)
        else:
            # A null, or a row naming another context than its path (or none): the path decides, if it can.
            triple = await hints.resolve(TRIPLE, _after(dirname, symbol), fixed=(symbol,))
        return self._record(dict(zip(TRIPLE, triple)), payload=_payload(row))

    def path(self, doc):
        return _strategy_dir(doc), file_name(_context(doc, "symbol")[0], "symbol")


def _after(dirname: str, symbol: str) -> str:
    """What follows `<symbol>_` in a directory whose file names the symbol."""
    if not dirname.startswith(symbol + "_"):
        raise Skip(f"directory {dirname!r} does not start with {symbol + '_'!r} (the symbol its file names)")
    return dirname[len(symbol) + 1:]


def _strategy_dir(doc) -> str:
    """`<symbol>_<strategy>_<exchange>`: the directory of Signal, Schedule, Strategy, Partial and Breakeven."""
    symbol, strategy, exchange = _context(doc, *TRIPLE)
    return joined(safe_name(symbol, "symbol"), safe_name(strategy, "strategyName"), safe_name(exchange, "exchangeName"))


class SignalLayout(PendingLayout):
    name, model, root = "signal", SignalItem, ("data", "signal")


class ScheduleLayout(PendingLayout):
    name, model, root = "schedule", ScheduleItem, ("data", "schedule")


class StrategyLayout(Layout):
    """`<symbol>_<strategy>_<exchange>/strategy.json`: the snapshot has no context, its inner rows may; a cleared
    snapshot is a literal null."""

    name, model, root, depths, nullable, joined = "strategy", StrategyItem, ("data", "strategy"), frozenset({2}), \
        True, TRIPLE
    FILE = "strategy"

    async def parse(self, parts, value, hints):
        dirname = self._fixed_file_dir(parts, self.FILE)
        data = None if value is None else _dict(value, "the strategy snapshot")
        fields = data or {}
        inner = {t for t in map(_triple_of, fields.values()) if t is not None}
        for triple in inner:
            hints.learn(dict(zip(TRIPLE, triple)))
        signal_id = next((fields[f] for f in ("pendingSignalId", "lastPendingId")
                          if type(fields.get(f)) is str and fields[f]), None)
        triple = await hints.resolve(TRIPLE, dirname, local=inner.__contains__, signal_id=signal_id)
        return self._record(dict(zip(TRIPLE, triple)), payload=_payload(data))

    def path(self, doc):
        return _strategy_dir(doc), self.FILE + SUFFIX


class LevelsLayout(Layout):
    """Partial and Breakeven: `<symbol>_<strategy>_<exchange>/<signalId>.json`, payload `{signalId: ...}`."""

    depths, joined = frozenset({2}), TRIPLE

    async def parse(self, parts, value, hints):
        dirname, signal_id = parts
        data = _dict(value, "the levels record")
        triple = await hints.resolve(TRIPLE, dirname, signal_id=signal_id)
        return self._record({**dict(zip(TRIPLE, triple)), "signalId": signal_id}, payload=_payload(data))

    def path(self, doc):
        return _strategy_dir(doc), file_name(_context(doc, "signalId")[0], "signalId")


class PartialLayout(LevelsLayout):
    name, model, root = "partial", PartialItem, ("data", "partial")


class BreakevenLayout(LevelsLayout):
    name, model, root = "breakeven", BreakevenItem, ("data", "breakeven")


class RiskLayout(Layout):
    """`<riskName>_<exchange>/positions.json`; each position names its exchange, which is the suffix. A literal
    null reads as no positions."""

    name, model, root, depths, nullable, joined = "risk", RiskItem, ("data", "risk"), frozenset({2}), True, RISK
    FILE = "positions"

    async def parse(self, parts, value, hints):
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

    def path(self, doc):
        risk_name, exchange = _context(doc, "riskName", "exchangeName")
        return (joined(safe_name(risk_name, "riskName"), safe_name(exchange, "exchangeName")), self.FILE + SUFFIX)


class RowsLayout(Layout):
    """Storage and Notification: `{backtest,live}/<id>.json`; the row's own `id` is its key."""

    depths = frozenset({2})
    row_field: ClassVar[str]

    async def parse(self, parts, value, hints):
        mode, stem = parts
        if mode not in MODES:
            raise Skip(f"{mode!r} is neither backtest nor live")
        row = _dict(value, "the row")
        row_id = row.get("id", stem)
        hints.learn(row)
        return self._record({"backtest": MODES[mode], self.row_field: _context_str("id", row_id)},
                            payload=_payload(row))

    def path(self, doc):
        backtest, row_id = _context(doc, "backtest", self.row_field)
        if type(backtest) is not bool:
            raise Skip(f"backtest {backtest!r} is not a boolean")
        return (mode_name(backtest), file_name(row_id, self.row_field))


class StorageLayout(RowsLayout):
    name, model, root, row_field = "storage", StorageItem, ("data", "storage"), "signalId"


class NotificationLayout(RowsLayout):
    name, model, root, row_field = "notification", NotificationItem, ("data", "notification"), "notificationId"


class LogLayout(Layout):
    name, model, root, depths, insert_only = "log", LogItem, ("data", "log", "log"), frozenset({1}), True

    async def parse(self, parts, value, hints):
        (stem,) = parts
        row = _dict(value, "the log entry")
        method, execution = row.get("methodContext"), row.get("executionContext")
        if type(method) is dict and type(execution) is dict:
            # The strategy, exchange and frame of the call, and the symbol it ran for.
            hints.learn({**execution, **method})
        return self._record({"entryId": _context_str("id", row.get("id", stem))}, payload=_payload(row))

    def path(self, doc):
        (entry_id,) = _context(doc, "entryId")
        return (file_name(entry_id, "entryId"),)


class SoftDeleteLayout(Layout):
    """Measure, Interval, Memory: a stored `removed` is kept both on the column and in the payload."""

    def value(self, doc):
        payload = doc.get("payload")
        if doc.get("removed") is True and type(payload) is dict and payload.get("removed") is not True:
            payload = {**payload, "removed": True}
        return payload

    @property
    def projection(self):
        return {**super().projection, "removed": 1}

    def _entry(self, key: dict[str, Any], value: Any, when: int | None) -> Record:
        data = _dict(value, "the entry")
        return self._record(key, payload=_payload(data), removed=data.get("removed") is True, when=when)


class BucketLayout(SoftDeleteLayout):
    """`<bucket>/<key>.json`."""

    depths = frozenset({2})

    def path(self, doc):
        bucket, key = _context(doc, "bucket", "entryKey")
        return (safe_name(bucket, "bucket"), file_name(key, "entryKey"))


class MeasureLayout(BucketLayout):
    name, model, root = "measure", MeasureItem, ("data", "measure")

    async def parse(self, parts, value, hints):
        bucket, key = parts
        return self._entry({"bucket": bucket, "entryKey": key}, value, None)


class IntervalLayout(BucketLayout):
    name, model, root = "interval", IntervalItem, ("data", "interval")

    async def parse(self, parts, value, hints):
        bucket, key = parts
        when = _iso_ms(value.get("when")) if type(value) is dict else None
        return self._entry({"bucket": bucket, "entryKey": key}, value, when)


class MemoryLayout(SoftDeleteLayout):
    name, model, root, depths = "memory", MemoryItem, ("memory",), frozenset({3})

    async def parse(self, parts, value, hints):
        signal_id, bucket, memory_id = parts
        when = _ms(value.get("when")) if type(value) is dict else None
        return self._entry({"signalId": signal_id, "bucketName": bucket, "memoryId": memory_id}, value, when)

    def path(self, doc):
        signal_id, bucket, memory_id = _context(doc, "signalId", "bucketName", "memoryId")
        return (safe_name(signal_id, "signalId"), safe_name(bucket, "bucketName"), file_name(memory_id, "memoryId"))


class RecentLayout(Layout):
    """`<symbol>_<strategy>_<exchange>[_<frame>]_<mode>/<symbol>.json`; the row carries the context."""

    name, model, root, depths, joined = "recent", RecentItem, ("data", "recent"), frozenset({2}), (*FRAMED, "backtest")

    @staticmethod
    def dirname(symbol: str, strategy: str, exchange: str, frame: str, backtest: bool) -> str:
        return joined(symbol, strategy, exchange, *([frame] if frame else []), mode_name(backtest))

    async def parse(self, parts, value, hints):
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

    def path(self, doc):
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

    name, model, root, depths = "state", StateItem, ("state",), frozenset({3})

    async def parse(self, parts, value, hints):
        signal_id, bucket, stem = parts
        if stem != bucket:
            raise Skip(f"a state file is named after its bucket ({bucket}{SUFFIX})")
        data = _dict(value, "the state record")
        return self._record({"signalId": signal_id, "bucketName": bucket}, payload=_payload(data),
                            when=_ms(data.get("when")))

    def path(self, doc):
        signal_id, bucket = _context(doc, "signalId", "bucketName")
        return (safe_name(signal_id, "signalId"), safe_name(bucket, "bucketName"), file_name(bucket, "bucketName"))


class SessionLayout(Layout):
    """`<strategy>/<exchange>/[<frame>/]<symbol>_<mode>.json` (the frame level is absent in live)."""

    name, model, root, depths = "session", SessionItem, ("session",), frozenset({3, 4})

    async def parse(self, parts, value, hints):
        strategy, exchange, *frame, stem = parts
        symbol, _, mode = stem.rpartition("_")
        if mode not in MODES or not symbol:
            raise Skip("a session file is named <symbol>_<backtest|live>.json (the 14.1.0 layout has no symbol)")
        data = _dict(value, "the session record")
        key = {"strategyName": strategy, "exchangeName": exchange, "frameName": frame[0] if frame else "",
               "symbol": symbol, "backtest": MODES[mode]}
        return self._record(key, payload=_payload(data), when=_ms(data.get("when")))

    def path(self, doc):
        strategy, exchange, frame, symbol, backtest = _context(
            doc, "strategyName", "exchangeName", "frameName", "symbol", "backtest")
        if type(backtest) is not bool:
            raise Skip(f"backtest {backtest!r} is not a boolean")
        frames = (safe_name(frame, "frameName"),) if frame != "" else ()
        return (safe_name(strategy, "strategyName"), safe_name(exchange, "exchangeName"), *frames,
                file_name(joined(safe_name(symbol, "symbol"), mode_name(backtest)), "symbol"))


# Import order: the adapters whose files name contexts plainly (candle folders, Storage/Notification/Log rows,
# Session paths, Signal/Schedule/Recent rows, Risk positions) come before those that only have a `_`-joined
# directory name (Strategy, Partial, Breakeven); what still splits several ways is looked at again at the end.
LAYOUTS: tuple[Layout, ...] = (
    CandleLayout(), StorageLayout(), NotificationLayout(), LogLayout(), MeasureLayout(), IntervalLayout(),
    MemoryLayout(), StateLayout(), SessionLayout(), SignalLayout(), ScheduleLayout(), RecentLayout(), RiskLayout(),
    StrategyLayout(), PartialLayout(), BreakevenLayout(),
)
ADAPTER_NAMES = tuple(layout.name for layout in LAYOUTS)
# Top-level entries of a dump that hold persistence data; everything else (reports, JSONL logs...) is not.
DATA_ROOTS = frozenset(layout.root[0] for layout in LAYOUTS)
DATA_DIRS = frozenset(layout.root[1] for layout in LAYOUTS if layout.root[0] == "data")
