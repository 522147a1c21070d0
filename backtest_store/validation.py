"""Input checks that run before any I/O, so that a rejected call writes nothing."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import bson

from .errors import InvalidInput
from .models.candle import OHLCV as CANDLE_FIELDS

# Spec §5.1: the candle intervals and their length in minutes.
INTERVAL_MINUTES: dict[str, int] = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30,
    "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480, "1d": 1440,
}
# MongoDB's document limit, less room for the context fields and timestamps around the payload.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_ENVELOPE_BYTES = 16 * 1024
_INT64 = (-(2**63), 2**63 - 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def context_str(name: str, value: Any, *, allow_empty: bool = False) -> str:
    """A context field: a plain string, never a dict or any other operator-shaped value."""
    if type(value) is not str:
        raise InvalidInput(f"{name} must be a str, got {type(value).__name__}: {value!r:.80}")
    if not value and not allow_empty:
        raise InvalidInput(f"{name} must be a non-empty str")
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters")
    _text(name, value)
    return value


def context_bool(name: str, value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidInput(f"{name} must be a bool, got {type(value).__name__}: {value!r:.80}")
    return value


def interval(value: Any) -> str:
    context_str("interval", value)
    if value not in INTERVAL_MINUTES:
        raise InvalidInput(f"interval {value!r} is not one of {', '.join(INTERVAL_MINUTES)}")
    return value


def when_ms(value: Any) -> int:
    """`when` must be an aware datetime; it is stored as epoch milliseconds like the original."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"when must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("when must be timezone-aware (naive datetimes are ambiguous)")
    return (value - _EPOCH) // timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> datetime:
    """The inverse of `when_ms`: exact, with no float rounding on the way."""
    return _EPOCH + timedelta(milliseconds=ms)


def js_iso(value: datetime) -> str:
    """`Date.prototype.toJSON`: UTC, millisecond precision, `Z`, as the framework writes dates to JSON."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # BSON dates are UTC; a naive one came from a non-tz-aware client
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def integer(name: str, value: Any, *, minimum: int | None = None) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or type(value) is bool:  # bson.Int64 is an int
        raise InvalidInput(f"{name} must be an int, got {type(value).__name__}: {value!r:.80}")
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _text(path: str, value: str) -> None:
    """A str BSON can carry: UTF-8 encodable, so no lone surrogates."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{path} holds a lone surrogate, which UTF-8 (and so BSON) cannot carry") from None


def _bson_date(path: str, value: datetime) -> None:
    """A datetime that a BSON date gives back equal: aware, and whole milliseconds (BSON keeps no more)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{path} is a naive datetime; only timezone-aware ones are stored (BSON dates are UTC)")
    if value.microsecond % 1000:
        raise InvalidInput(f"{path} has sub-millisecond precision, which a BSON date would drop")


def payload(value: Any, name: str = "payload") -> Any:
    """Accept JSON-like values only, naming the path to the first that is not; then check the size.

    Accepted beyond JSON, because every value a read returns must be writable: `bson.Int64` (how PyMongo returns
    64-bit integers) and timezone-aware `datetime` at millisecond precision (BSON dates: the TypeScript side
    stores `Date` objects). Non-finite floats are allowed: `minuteEstimatedTime` is legitimately Infinity and
    BSON keeps it. Keys may start with `$` or contain `.`: the framework's own files allow them, and the
    repository writes payloads as `$literal` values, which MongoDB 5.0+ stores unchanged.
    """
    stack: list[tuple[str, Any]] = [(name, value)]
    while stack:
        path, item = stack.pop()
        kind = type(item)
        if item is None or kind is bool or kind is float:
            continue
        if kind is str:
            _text(path, item)
            continue
        if isinstance(item, int):  # int, and bson.Int64 (an int subclass); bool was handled above
            if not _INT64[0] <= item <= _INT64[1]:
                raise InvalidInput(f"{path} is an int outside the 64-bit range MongoDB stores")
            continue
        if kind is list or kind is tuple:
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
            continue
        if kind is dict:
            for key, v in item.items():
                if type(key) is not str:
                    raise InvalidInput(f"{path} has a non-str key {key!r:.80}; JSON objects have str keys")
                if "\x00" in key:
                    raise InvalidInput(f"{path} has the key {key!r:.80}: BSON keys cannot hold NUL")
                _text(f"{path} key {key!r:.80}", key)
                stack.append((f"{path}.{key}", v))
            continue
        if isinstance(item, datetime):
            _bson_date(path, item)
            continue
        raise InvalidInput(f"{path} is a {kind.__name__}; payloads hold JSON values (dict, list, str, number, bool, "
                           "None) and timezone-aware datetimes only")
    size = len(bson.encode({"v": value}))
    if size > MAX_DOCUMENT_BYTES - _ENVELOPE_BYTES:
        raise InvalidInput(f"{name} encodes to {size} bytes, over MongoDB's 16 MiB document limit")
    return value


# The file backend keeps the whole object an exchange returned (spec §3.1); what is not OHLCV goes under EXTRA.
EXTRA = "extra"
KEY_ORDER = "keyOrder"


def candle(value: Any, index: int) -> dict[str, Any]:
    """A candle as stored: the six OHLCV fields, any other keys under `extra`, and `keyOrder` when the keys were
    not in the canonical order, so that a read (and an export) gives back the same object."""
    if type(value) is not dict:
        raise InvalidInput(f"candles[{index}] must be a dict, got {type(value).__name__}")
    missing = [f for f in CANDLE_FIELDS if f not in value]
    if missing:
        raise InvalidInput(f"candles[{index}] lacks {', '.join(missing)}")
    row: dict[str, Any] = {"timestamp": integer(f"candles[{index}].timestamp", value["timestamp"], minimum=0)}
    for field in CANDLE_FIELDS[1:]:
        number = value[field]
        if type(number) not in (int, float) or not math.isfinite(number):
            raise InvalidInput(f"candles[{index}].{field} must be a finite number, got {number!r:.80}")
        row[field] = float(number)
    keys = list(value)
    if len(keys) > len(CANDLE_FIELDS):
        extra = {k: v for k, v in value.items() if k not in row}
        row[EXTRA] = payload(extra, f"candles[{index}]")
        if keys != [*CANDLE_FIELDS, *extra]:
            row[KEY_ORDER] = keys
    elif keys != list(CANDLE_FIELDS):
        row[KEY_ORDER] = keys
    return row


def rows(name: str, value: Any, id_field: str) -> list[tuple[str, Any]]:
    """A list of dict rows each carrying a non-empty str id; returns (id, row) pairs."""
    if type(value) not in (list, tuple):
        raise InvalidInput(f"{name} must be a list, got {type(value).__name__}")
    out = []
    for i, row in enumerate(value):
        if type(row) is not dict:
            raise InvalidInput(f"{name}[{i}] must be a dict, got {type(row).__name__}")
        out.append((context_str(f"{name}[{i}].{id_field}", row.get(id_field)), payload(row, f"{name}[{i}]")))
    return out
