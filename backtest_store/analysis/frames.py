"""Reading closed signals and candles into DataFrames: one query each, streamed column by column.

A closed signal is a Storage row (`storage-items`) whose payload has `status: "closed"` (backtest-kit's
`IStorageSignalRowClosed`). Only the fields below are projected, and each document is turned into column values as
the cursor yields it, so memory holds the typed columns (about the size of the DataFrame), never the documents.
A field a row does not carry, or carries with another type, is NA.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from bson import Decimal128
from pymongo.errors import PyMongoError

from .. import validation
from ..drivers import Database
from ..errors import InvalidInput, StorageError
from ..models import CandleItem, StorageItem

BATCH_SIZE = 5000  # documents per cursor batch when reading trades
CANDLE_BATCH_SIZE = 20_000  # a window of a few days of 1m candles is one round trip
_NAT = -(2**63)  # numpy's NaT as int64

# (column, payload path, kind), in the DataFrame's column order; `duration` is computed after `close_time`.
TRADE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("signal_id", "id", "str"),
    ("strategy", "strategyName", "str"),
    ("symbol", "symbol", "str"),
    ("exchange", "exchangeName", "str"),
    ("frame", "frameName", "str"),
    ("side", "position", "str"),
    ("open_time", "pendingAt", "time"),
    ("close_time", "closeTimestamp", "time"),
    ("price_open", "priceOpen", "float"),
    ("price_close", "currentPrice", "float"),
    ("price_take_profit", "priceTakeProfit", "float"),
    ("price_stop_loss", "priceStopLoss", "float"),
    ("pnl_percentage", "pnl.pnlPercentage", "float"),
    ("pnl_cost", "pnl.pnlCost", "float"),
    ("cost", "cost", "float"),
    ("close_reason", "closeReason", "str"),
    ("multiplier", "multiplier", "float"),
    ("isolated", "isolated", "bool"),
    ("total_entries", "totalEntries", "int"),
    ("total_partials", "totalPartials", "int"),
    # The best and the worst mark-to-market pnl % while open (MFE / MAE): the framework's drawdown marks each
    # trade down to the worst before booking its close (`peakProfit`/`maxDrawdown` equal `_peak`/`_fall` there).
    ("mfe_percentage", "peakProfit.pnlPercentage", "float"),
    ("mae_percentage", "maxDrawdown.pnlPercentage", "float"),
)
TRADE_COLUMNS: tuple[str, ...] = (*(name for name, _, _ in TRADE_FIELDS[:8]), "duration",
                                  *(name for name, _, _ in TRADE_FIELDS[8:]))
TRADE_PROJECTION: dict[str, int] = {"_id": 0, "signalId": 1, **{f"payload.{path}": 1 for _, path, _ in TRADE_FIELDS}}
OHLCV = ("open", "high", "low", "close", "volume")
# Signals that are not closed: open positions, and scheduled (limit entry waiting) or cancelled ones.
OPEN_STATUSES = ("opened",)
PENDING_STATUSES = ("scheduled", "cancelled")
SIGNAL_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("signal_id", "id", "str"),
    ("status", "status", "str"),
    ("strategy", "strategyName", "str"),
    ("symbol", "symbol", "str"),
    ("exchange", "exchangeName", "str"),
    ("frame", "frameName", "str"),
    ("side", "position", "str"),
    ("scheduled_at", "scheduledAt", "time"),
    ("open_time", "pendingAt", "time"),
    ("updated_at", "updatedAt", "time"),
    ("price_open", "priceOpen", "float"),
    ("price_current", "currentPrice", "float"),
    ("price_take_profit", "priceTakeProfit", "float"),
    ("price_stop_loss", "priceStopLoss", "float"),
    ("cost", "cost", "float"),
    # The framework's pnl as of the row's last write (`updated_at`), and the average entry it was computed from.
    ("pnl_percentage", "pnl.pnlPercentage", "float"),
    ("pnl_cost", "pnl.pnlCost", "float"),
    ("pnl_price_open", "pnl.priceOpen", "float"),
    ("total_entries", "totalEntries", "int"),
    ("mfe_percentage", "_peak.pnlPercentage", "float"),
    ("mae_percentage", "_fall.pnlPercentage", "float"),
)


# -- values --------------------------------------------------------------------------------------------------------


def _number(value: Any) -> float:
    """A finite number as float, else NaN (which the Float64 column turns into NA)."""
    if type(value) is bool:
        return math.nan
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return math.nan
        return number if math.isfinite(number) else math.nan
    if isinstance(value, Decimal128):
        return _number(float(value.to_decimal()))
    return math.nan


def _epoch_ms(value: Any) -> int:
    """A positive epoch-ms number or a BSON date as int64 ms, else NaT (`pendingAt: 0` means not opened)."""
    if isinstance(value, datetime):
        value = validation.when_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    number = _number(value)
    if math.isnan(number) or number <= 0 or number >= 2**62:
        return _NAT
    return int(number)


def _integer(value: Any) -> int:
    number = _number(value)
    return int(number) if not math.isnan(number) and abs(number) < 2**62 and number == int(number) else _NAT


def _boolean(value: Any) -> int:
    return int(value) if type(value) is bool else -1


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    parts = path.split(".")

    def get(payload: dict[str, Any]) -> Any:
        value: Any = payload
        for part in parts:
            if type(value) is not dict:
                return None
            value = value.get(part)
        return value

    return get


# -- columns -------------------------------------------------------------------------------------------------------


class _Column:
    """Values of one kind, appended one at a time into a compact buffer (never a list of documents)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.values: Any = {"float": array("d"), "time": array("q"), "int": array("q"),
                            "bool": array("b")}.get(kind, [])
        self.convert = {"float": _number, "time": _epoch_ms, "int": _integer, "bool": _boolean, "str": _text}[kind]
        # Repeated names (strategy, symbol, side, reason) share one str object per distinct value.
        self.interned: dict[str, str] = {}

    def append(self, value: Any) -> None:
        value = self.convert(value)
        if self.kind == "str" and value is not None:
            value = self.interned.setdefault(value, value)
        self.values.append(value)

    def finish(self) -> Any:
        if self.kind == "str":
            return pd.array(self.values, dtype="string")
        # One copy out of the buffer: the DataFrame owns writable arrays.
        raw = np.array(self.values, dtype={"float": "float64", "bool": "int8"}.get(self.kind, "int64"))
        if self.kind == "float":
            return pd.array(raw, dtype="Float64")  # NaN -> NA
        if self.kind == "time":
            return pd.Series(raw.view("datetime64[ms]")).dt.tz_localize("UTC").array
        if self.kind == "int":
            return pd.arrays.IntegerArray(raw, raw == _NAT)
        return pd.arrays.BooleanArray(raw == 1, raw == -1)


def _trade_frame(columns: dict[str, _Column]) -> pd.DataFrame:
    frame = _frame(columns)
    frame.insert(TRADE_COLUMNS.index("duration"), "duration", frame["close_time"] - frame["open_time"])
    # Chronological by close time (rows without one last), ties by signal id: the same order on every read.
    return frame.sort_values(["close_time", "signal_id"], na_position="last", kind="stable").reset_index(drop=True)


def _frame(columns: dict[str, _Column]) -> pd.DataFrame:
    return pd.DataFrame({name: column.finish() for name, column in columns.items()})


def trades_match(mode: str, strategy: str | None = None, symbol: str | None = None,
                 exchange: str | None = None, frame: str | None = None) -> dict[str, Any]:
    """The filter of the closed signals of one mode, optionally of one strategy, symbol, exchange and frame."""
    match: dict[str, Any] = {"backtest": mode_flag(mode), "payload.status": "closed"}
    for field, value, name in (("strategyName", strategy, "strategy"), ("symbol", symbol, "symbol"),
                               ("exchangeName", exchange, "exchange"), ("frameName", frame, "frame")):
        if value is not None:
            match[f"payload.{field}"] = validation.context_str(name, value)
    return match


def mode_flag(mode: Any) -> bool:
    if mode in ("backtest", "live"):
        return bool(mode == "backtest")
    raise InvalidInput(f"mode must be 'backtest' or 'live', got {mode!r:.80}")


async def _stream(database: Database, collection: str, match: dict[str, Any], projection: dict[str, Any],
                  batch_size: int, sort: list[tuple[str, int]] | None = None,
                  limit: int = 0) -> AsyncIterator[dict[str, Any]]:
    try:
        cursor = database[collection].find(match, projection, batch_size=batch_size, sort=sort, limit=limit)
        async with cursor:
            async for doc in cursor:
                yield doc
    except PyMongoError as exc:
        raise StorageError(f"reading {collection}: {type(exc).__name__}: {str(exc).split(', full error:')[0]}") from exc


async def read_trades(database: Database, match: dict[str, Any], batch_size: int = BATCH_SIZE) -> pd.DataFrame:
    """One DataFrame row per matching closed signal (see `TRADE_COLUMNS`), streamed from one cursor."""
    return _trade_frame(await _read_rows(database, match, TRADE_FIELDS, batch_size))


async def read_signals(database: Database, match: dict[str, Any], batch_size: int = BATCH_SIZE) -> pd.DataFrame:
    """One row per matching Storage row of any status (see `SIGNAL_FIELDS`), by status, then scheduled time."""
    frame = _frame(await _read_rows(database, match, SIGNAL_FIELDS, batch_size))
    return frame.sort_values(["status", "scheduled_at", "signal_id"], na_position="last",
                             kind="stable").reset_index(drop=True)


async def _read_rows(database: Database, match: dict[str, Any], fields: tuple[tuple[str, str, str], ...],
                     batch_size: int) -> dict[str, _Column]:
    columns = {name: _Column(kind) for name, _, kind in fields}
    getters = [(columns[name], _getter(path)) for name, path, _ in fields]
    signal_id = columns["signal_id"]
    projection = {"_id": 0, "signalId": 1, **{f"payload.{path}": 1 for _, path, _ in fields}}
    async for doc in _stream(database, StorageItem.collection_name(), match, projection, batch_size):
        payload = doc.get("payload")
        payload = payload if type(payload) is dict else {}
        for column, get in getters:
            if column is signal_id:
                # The row's key; the payload's own `id` only when the key is missing.
                column.append(doc.get("signalId") if type(doc.get("signalId")) is str else get(payload))
            else:
                column.append(get(payload))
    return columns


def time_ms(name: str, value: Any) -> int | None:
    """A bound given as an aware datetime / pandas Timestamp, ISO 8601 text with a timezone, or epoch ms."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"{name} {value!r:.80} is not ISO 8601 (2025-03-01T00:00:00Z) nor epoch ms") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} has no timezone: add Z or an offset, or pass an aware datetime")
        return validation.when_ms(value)
    return validation.integer(name, value)


async def read_candles(database: Database, symbol: str, interval: str, exchange: str,
                       start: int | None = None, end: int | None = None) -> pd.DataFrame:
    """OHLCV of one exchange, symbol and interval with `start <= open time <= end` (epoch ms, either optional),
    indexed by open time (UTC), read with one query (one `find`, sorted by the context index)."""
    match: dict[str, Any] = {"exchangeName": validation.context_str("exchange", exchange),
                             "symbol": validation.context_str("symbol", symbol),
                             "interval": validation.interval(interval)}
    bounds = {op: bound for op, bound in (("$gte", start), ("$lte", end)) if bound is not None}
    if bounds:
        match["timestamp"] = bounds
    times = array("q")
    values = {field: array("d") for field in OHLCV}
    projection = {"_id": 0, "timestamp": 1, **{field: 1 for field in OHLCV}}
    async for doc in _stream(database, CandleItem.collection_name(), match, projection, CANDLE_BATCH_SIZE,
                             sort=[("timestamp", 1)]):
        times.append(_epoch_ms(doc.get("timestamp")))
        for field, column in values.items():
            column.append(_number(doc.get(field)))
    index = pd.DatetimeIndex(np.array(times, dtype="int64").view("datetime64[ms]"), name="time").tz_localize("UTC")
    return pd.DataFrame({field: np.array(column, dtype="float64") for field, column in values.items()}, index=index)


async def last_candle(database: Database, symbol: str, interval: str, exchange: str) -> tuple[int, float] | None:
    """(open time in epoch ms, close) of the latest stored candle of one exchange, symbol and interval, or None."""
    match = {"exchangeName": validation.context_str("exchange", exchange),
             "symbol": validation.context_str("symbol", symbol), "interval": validation.interval(interval)}
    found: tuple[int, float] | None = None
    async for doc in _stream(database, CandleItem.collection_name(), match, {"_id": 0, "timestamp": 1, "close": 1},
                             1, sort=[("timestamp", -1)], limit=1):
        when, close = _epoch_ms(doc.get("timestamp")), _number(doc.get("close"))
        if when != _NAT and not math.isnan(close):
            found = when, close
    return found


__all__ = ["BATCH_SIZE", "OHLCV", "OPEN_STATUSES", "PENDING_STATUSES", "SIGNAL_FIELDS", "TRADE_COLUMNS",
           "TRADE_FIELDS", "TRADE_PROJECTION", "last_candle", "mode_flag", "read_candles", "read_signals",
           "read_trades", "time_ms", "trades_match"]
