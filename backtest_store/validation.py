"""Input checks that run before any I/O, so that a rejected call writes nothing."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import bson
from bson import Int64

from .errors import InvalidInput
from .models.candle import OHLCV
from .times import epoch_ms

CANDLE_FIELDS = OHLCV

# backtest-kit's candle intervals and their length in minutes.
INTERVAL_MINUTES: dict[str, int] = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30,
    "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480, "1d": 1440,
}
# MongoDB's document limit, less room for `_id`, the timestamps and the update command around the document.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_ENVELOPE_BYTES = ENVELOPE_BYTES = 16 * 1024
# MongoDB refuses documents nested deeper than this (each object or array is a level, the document the first).
MAX_NESTING = 100
_INT64 = (-(2**63), 2**63 - 1)
# JavaScript's safe integers, ±Number.MAX_SAFE_INTEGER. A payload int beyond them is refused: BSON would store an
# Int64 that the Node driver reads back as a `Long` object, not a number, so the TypeScript side would see
# `{"low":…,"high":…,"unsigned":false}` where it wrote a number (see docs/differences.md).
MAX_SAFE_INTEGER = 2**53 - 1
SAFE_INTEGER_RANGE = "JavaScript's safe-integer range ±(2**53 - 1) = ±9007199254740991"


def forming(timestamp: int, interval: str, now_ms: int) -> bool:
    """A candle still forming: its close time is after `now_ms`. backtest-kit never caches one (it would freeze a
    candle that is not final), and neither do the adapter and the dump import."""
    return timestamp + INTERVAL_MINUTES[interval] * 60_000 > now_ms


def js_truthy(value: Any) -> bool:
    """JavaScript's truthiness, which decides an entry's visibility (the framework's `data.removed ? null : data`):
    false for null, false, 0, -0, NaN and "", true for anything else. Python disagrees on NaN (true there) and on
    empty lists and dicts (false there)."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == value and value != 0  # NaN != NaN
    if isinstance(value, str):
        return value != ""
    return True


def context_str(name: str, value: Any, *, allow_empty: bool = False) -> str:
    """A context field: a plain string, never a dict or any other operator-shaped value."""
    if type(value) is not str:
        raise InvalidInput(f"{name} must be a str, got {type(value).__name__}: {value!r:.80}")
    if not value and not allow_empty:
        raise InvalidInput(f"{name} must be a non-empty str")
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters")
    if not _encodable(value):
        raise _surrogate(name)
    return value


def context_bool(name: str, value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidInput(f"{name} must be a bool, got {type(value).__name__}: {value!r:.80}")
    return value


def interval(value: Any) -> str:
    context_str("interval", value)
    if value not in INTERVAL_MINUTES:
        raise InvalidInput(f"interval {value!r} is not one of {', '.join(INTERVAL_MINUTES)}")
    return str(value)


def when_ms(value: Any) -> int:
    """`when` must be an aware datetime; it is stored as epoch milliseconds like the original."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"when must be a timezone-aware datetime, got {type(value).__name__}")
    offset = _offset(value, "when")
    if offset is None:
        raise InvalidInput("when must be timezone-aware (naive datetimes are ambiguous)")
    return epoch_ms(value)


def _offset(value: datetime, path: str) -> timedelta | None:
    """`value.utcoffset()`, whose tzinfo is the caller's code: one that raises, or answers with no valid offset
    (Python allows less than 24 h), is refused here rather than failing later in the middle of a write."""
    if value.tzinfo is None:
        return None
    try:
        return value.utcoffset()
    except Exception as exc:  # a tzinfo may raise anything: ValueError for +25 h, its own errors
        raise InvalidInput(f"{path} has a time zone whose utcoffset() fails: {type(exc).__name__}: "
                           f"{str(exc)[:120]}") from None


def integer(name: str, value: Any, *, minimum: int | None = None) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or type(value) is bool:  # bson.Int64 is an int
        raise InvalidInput(f"{name} must be an int, got {type(value).__name__}: {value!r:.80}")
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {value}")
    if not _INT64[0] <= value <= _INT64[1]:
        raise InvalidInput(f"{name} is outside the 64-bit range MongoDB stores, got {value}")
    return int(value)


def _encodable(value: str) -> bool:
    """A str BSON can carry: UTF-8 encodable, so no lone surrogates."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate(path: str) -> InvalidInput:
    return InvalidInput(f"{path} holds a lone surrogate, which UTF-8 (and so BSON) cannot carry")


def _bson_date(path: str, value: datetime) -> None:
    """A datetime that a BSON date gives back equal: aware, and whole milliseconds (BSON keeps no more)."""
    if _offset(value, path) is None:
        raise InvalidInput(f"{path} is a naive datetime; only timezone-aware ones are stored (BSON dates are UTC)")
    if value.microsecond % 1000:
        raise InvalidInput(f"{path} has sub-millisecond precision, which a BSON date would drop")


def _path(node: tuple[Any, ...] | None) -> str:
    """The path of a node in `payload`'s walk, built only for an error message (the walk stays cheap)."""
    parts = []
    while node is not None:
        node, segment = node
        parts.append(segment)
    return "".join(reversed(parts))


def payload(value: Any, name: str = "payload") -> Any:
    """Accept JSON-like values only, naming the path to the first that is not (see `_payload_with_paths`).

    A payload is walked once by `_plain`, which only answers yes or no; only a payload it refuses is walked again,
    this time keeping the path to every value, to name the first bad one in the error.
    """
    if _plain(value, 2):
        return value
    return _payload_with_paths(value, name)


_INT64_MIN, _INT64_MAX = _INT64
_SAFE_MIN, _SAFE_MAX = -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER
_STR_ONLY = frozenset({str})


def _text(value: str) -> bool:
    return value.isascii() or _encodable(value)


def _scalar(value: Any, kind: type) -> bool:
    """A value that is neither a dict nor a list: True if BSON stores it and gives it back equal."""
    if kind is str:
        return _text(value)
    if kind is float or kind is bool or value is None:
        return True
    if kind is int or kind is Int64:
        return bool(_SAFE_MIN <= value <= _SAFE_MAX)
    if kind is datetime:
        try:
            return bool(_offset(value, "") is not None and not value.microsecond % 1000)
        except InvalidInput:
            return False  # the walk with paths names it
    return False


def _plain(value: Any, level: int) -> bool:
    """`_payload_with_paths`'s rules without the paths: a recursive walk with no allocation per value, several times
    cheaper. False means "not sure": the caller then walks again with paths, which accepts or names the error.
    Exact types only (a subclass of int other than Int64 goes the slow way, which accepts it)."""
    kind = type(value)
    if kind is dict:
        if level > MAX_NESTING:
            return False
        if value:
            # Every key at once: exactly str, then no NUL and UTF-8 encodable, checked on their concatenation.
            if not _STR_ONLY.issuperset(map(type, value)):
                return False
            keys = "".join(value)
            if "\x00" in keys or not (keys.isascii() or _encodable(keys)):
                return False
        items: Iterable[Any] = value.values()
    elif kind is list or kind is tuple:
        if level > MAX_NESTING:
            return False
        items = value
    else:
        return _scalar(value, kind)
    for item in items:
        sub = type(item)
        if sub is str:
            if not (item.isascii() or _encodable(item)):
                return False
        elif sub is float or sub is bool or item is None:
            continue
        elif sub is int:
            if not _SAFE_MIN <= item <= _SAFE_MAX:
                return False
        elif sub is dict or sub is list or sub is tuple:
            if not _plain(item, level + 1):
                return False
        elif not _scalar(item, sub):
            return False
    return True


_FLAT = frozenset({str, float, bool, int, Int64, type(None)})


def payload_shape(value: Any) -> bool:
    """`payload`'s rules on types, nesting and ints only, for a value about to be BSON-encoded, which checks the rest
    (UTF-8 text, keys without NUL) in C: True means the value is a payload if it encodes. Cheaper
    than `payload` on large values: each dict's and list's types are checked in one C-level pass. False means
    "not sure", as for `_plain`."""
    return _shape(value, 2)


def _shape(value: Any, level: int) -> bool:
    # Level by level: every container at one level is checked together, with C-level passes over all their
    # values, so that a payload of 10,000 small dicts costs a few passes, not 10,000 calls.
    kind = type(value)
    if kind is int or kind is Int64:
        return _scalar(value, kind)
    if kind in _FLAT:
        return True
    if kind is datetime:
        return _scalar(value, kind)
    if kind not in _CONTAINERS:
        return False
    dicts: list[Any] = [value] if kind is dict else []
    sequences: list[Any] = [] if kind is dict else [value]
    while dicts or sequences:
        if level > MAX_NESTING:
            return False
        # Keys need no pass of ours: BSON refuses a key that is not a str. The level's values are listed once: the
        # passes below (types, ints, dates, containers) all read them.
        values = list(_values(dicts, sequences))
        kinds = set(map(type, values))
        # BSON would store any 64-bit int: the safe-integer bound is ours, checked in C (bools are ints, and safe).
        if (int in kinds or Int64 in kinds) and not _safe_ints(filter(_IS_INT, values)):
            return False
        if _FLAT.issuperset(kinds):
            return True
        if not _SHAPED.issuperset(kinds):
            return False
        if datetime in kinds and not all(_scalar(d, datetime) for d in filter(_IS_DATETIME, values)):
            return False
        # The containers below, taken out of this level's values by C-level filters.
        dicts = list(filter(_IS_DICT, values)) if dict in kinds else []
        sequences = [seq for seq_type in (list, tuple) if seq_type in kinds
                     for seq in filter(seq_type.__instancecheck__, values)]
        level += 1
    return True


def _values(dicts: list[Any], sequences: list[Any]) -> Iterable[Any]:
    return chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(sequences))


def _safe_ints(ints: Iterable[int]) -> bool:
    values = list(ints)
    return not values or (min(values) >= _SAFE_MIN and max(values) <= _SAFE_MAX)


# The value types are exact (a subclass is not in _SHAPED), so isinstance is the type test here, in C.
_IS_INT = int.__instancecheck__
_IS_DICT = dict.__instancecheck__
_IS_DATETIME = datetime.__instancecheck__
_CONTAINERS = frozenset({dict, list, tuple})
_SHAPED = _FLAT | _CONTAINERS | {datetime}


def _payload_with_paths(value: Any, name: str = "payload") -> Any:
    """Accept JSON-like values only, naming the path to the first that is not.

    Ints must be JavaScript-safe (±(2**53 - 1)), so that the TypeScript side reads a number back, never a `Long`.
    Accepted beyond JSON, because every value a read returns must be writable: `bson.Int64` (how PyMongo returns
    64-bit integers) and timezone-aware `datetime` at millisecond precision (BSON dates: the TypeScript side
    stores `Date` objects). Non-finite floats are allowed: `minuteEstimatedTime` is legitimately Infinity and
    BSON keeps it. Keys may start with `$` or contain `.`: the framework's own files allow them, and the
    repository writes payloads as `$literal` values, which MongoDB 5.0+ stores unchanged. The payload is a field
    of its document, so its own level counts towards MongoDB's 100 levels of nesting. The size of the whole
    document is checked by `document` when it is written.
    """
    # (value, nesting level in the stored document, path node); a path node is (parent node, segment).
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 2, (None, name))]
    while stack:
        item, level, node = stack.pop()
        kind = type(item)
        if item is None or kind is bool or kind is float:
            continue
        if kind is str:
            if not _encodable(item):
                raise _surrogate(_path(node))
            continue
        if isinstance(item, int):  # int, and bson.Int64 (an int subclass); bool was handled above
            if not _SAFE_MIN <= item <= _SAFE_MAX:
                raise InvalidInput(f"{_path(node)} is the int {item}, outside {SAFE_INTEGER_RANGE}: the TypeScript "
                                   "side would read it as a BSON Long, not a number")
            continue
        if kind is list or kind is tuple or kind is dict:
            if level > MAX_NESTING:
                raise InvalidInput(f"{_path(node)} is nested deeper than the {MAX_NESTING} levels MongoDB stores")
            if kind is dict:
                for key, v in item.items():
                    if type(key) is not str:
                        raise InvalidInput(f"{_path(node)} has a non-str key {key!r:.80}; JSON objects have str keys")
                    if "\x00" in key:
                        raise InvalidInput(f"{_path(node)} has the key {key!r:.80}: BSON keys cannot hold NUL")
                    if not _encodable(key):
                        raise _surrogate(f"{_path(node)} key {key!r:.80}")
                    stack.append((v, level + 1, (node, f".{key}")))
            else:
                stack.extend((v, level + 1, (node, f"[{i}]")) for i, v in enumerate(item))
            continue
        if isinstance(item, datetime):
            _bson_date(_path(node), item)
            continue
        raise InvalidInput(f"{_path(node)} is a {kind.__name__}; payloads hold JSON values (dict, list, str, number, "
                           "bool, None) and timezone-aware datetimes only")
    return value


def document(key: dict[str, Any], fields: dict[str, Any]) -> None:
    """The whole document (context and values) within MongoDB's 16 MiB, checked before it is sent."""
    size = len(bson.encode({**key, **fields}))
    if size > MAX_DOCUMENT_BYTES - _ENVELOPE_BYTES:
        raise InvalidInput(f"the document for {_describe(key)} encodes to {size} bytes, over MongoDB's 16 MiB "
                           "document limit")


def row_size(name: str, index: int, size: int) -> None:
    """A row of `size` bytes (its BSON) fits a document with its context, before it is sent."""
    if size > MAX_DOCUMENT_BYTES - _ENVELOPE_BYTES:
        raise InvalidInput(f"{name}[{index}] encodes to {size} bytes, over MongoDB's 16 MiB document limit")


class Unencodable(InvalidInput):
    """BSON refused a value that passed `payload_shape`: the caller names the bad value with `payload`."""


def unencodable(fields: Mapping[str, Any], exc: BaseException) -> InvalidInput:
    """The error for fields BSON could not encode: the path to the bad value where the payload rules find one."""
    for name, value in fields.items():
        try:
            _payload_with_paths(value, name)
        except InvalidInput as error:
            return error
    return InvalidInput(f"cannot be stored: {type(exc).__name__}: {str(exc)[:200]}")


def _describe(key: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={str(v)[:40]!r}" for k, v in key.items()) + "}"


# The file backend keeps the whole object an exchange returned; what is not OHLCV goes under EXTRA.
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
    if row["timestamp"] > _SAFE_MAX:
        raise InvalidInput(f"candles[{index}].timestamp {row['timestamp']} is outside {SAFE_INTEGER_RANGE}")
    for field in CANDLE_FIELDS[1:]:
        raw, number = value[field], math.nan
        if isinstance(raw, (int, float)) and type(raw) is not bool:
            try:
                number = float(raw)
            except OverflowError:  # an int beyond a double, e.g. 10**400
                pass
        if not math.isfinite(number):
            raise InvalidInput(f"candles[{index}].{field} must be a finite number, got {raw!r:.80}")
        row[field] = number
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
    return [(row_id, row_payload(name, i, row)) for i, (row_id, row) in enumerate(zip(row_ids(name, value, id_field),
                                                                                     value))]


def row_ids(name: str, value: Any, id_field: str) -> list[str]:
    """The ids of a list of dict rows, each a non-empty str (the rows' other values are not looked at here:
    `row_payload`). A list of plain rows is checked at once, in C-level passes; any other goes row by row, to name
    the first bad one."""
    if type(value) not in (list, tuple):
        raise InvalidInput(f"{name} must be a list, got {type(value).__name__}")
    if not value:
        return []
    if _DICT_ONLY.issuperset(map(type, value)):
        ids = list(map(operator.methodcaller("get", id_field), value))
        if _STR_ONLY.issuperset(map(type, ids)) and all(ids):
            joined = "".join(ids)
            if "\x00" not in joined and (joined.isascii() or _encodable(joined)):
                return ids
    out = []
    for i, row in enumerate(value):
        if type(row) is not dict:
            raise InvalidInput(f"{name}[{i}] must be a dict, got {type(row).__name__}")
        out.append(context_str(f"{name}[{i}].{id_field}", row.get(id_field)))
    return out


def row_payload(name: str, index: int, row: Any) -> Any:
    """`payload` for the row at `index` of the list `name`; the path is only built for an error."""
    if _plain(row, 2):
        return row
    return _payload_with_paths(row, f"{name}[{index}]")


def encoded_row_shape(name: str, index: int, row: Any) -> Any:
    """`row_payload` for a row BSON has just encoded (see `payload_shape`)."""
    if _shape(row, 2):
        return row
    return _payload_with_paths(row, f"{name}[{index}]")


_TIMESTAMP = operator.itemgetter("timestamp")
_PRICES = operator.itemgetter(*CANDLE_FIELDS[1:])
_CANDLE_KEYS = frozenset({CANDLE_FIELDS})


def candles(value: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """`candle` for every candle of a list, the rows in order.

    Most candles are the six OHLCV fields in order, with an int timestamp and float prices: their stored row is the
    candle itself, and a whole list of them is checked at once with C-level passes (types, the timestamps' range,
    one sum that is finite only if every price is). Any other list goes candle by candle through `candle`, which
    converts what it accepts and names the first bad value. Returns the rows and their timestamps.
    """
    if type(value) not in (list, tuple):
        raise InvalidInput(f"candles must be a list, got {type(value).__name__}")
    if not value:
        return [], []
    if (_DICT_ONLY.issuperset(map(type, value)) and _SIX.issuperset(map(len, value))
            and _CANDLE_KEYS.issuperset(map(tuple, value))):
        stamps = list(map(_TIMESTAMP, value))
        prices = list(chain.from_iterable(map(_PRICES, value)))
        try:
            # Finite only if every price is (an inf or a nan carries through a sum); a huge sum that overflows just
            # sends the list the slow way, which names a bad value if there is one.
            finite = math.isfinite(sum(prices))
        except (OverflowError, TypeError):
            finite = False
        if (finite and _INT_ONLY.issuperset(map(type, stamps)) and _FLOAT_ONLY.issuperset(map(type, prices))
                and min(stamps) >= 0 and max(stamps) <= _SAFE_MAX):
            return list(value), stamps
    rows = [candle(c, i) for i, c in enumerate(value)]
    return rows, list(map(_TIMESTAMP, rows))


_DICT_ONLY = frozenset({dict})
_INT_ONLY = frozenset({int})
_FLOAT_ONLY = frozenset({float})
_SIX = frozenset({len(CANDLE_FIELDS)})
