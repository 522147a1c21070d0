"""JSON the way backtest-kit's file backend reads and writes it (spec §2.1, §4.3).

- Reading accepts exactly what JavaScript's `JSON.parse` accepts: no `NaN`/`Infinity` tokens, no BOM.
- Writing produces what `JSON.stringify` produces: compact, UTF-8 without BOM, `null` for non-finite numbers,
  integral floats as integers, dates as ISO-8601 UTC strings with milliseconds.
- Files are written atomically: a `.tmp-<12 hex>-<name>` sibling, fsync, rename.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from datetime import datetime
from typing import Any

from bson import Decimal128, ObjectId

from ..validation import js_iso

TMP_PREFIX = ".tmp-"
SUFFIX = ".json"
# The longest file name most filesystems take, in bytes, less the temp prefix `.tmp-<12 hex>-`.
MAX_NAME_BYTES = 255
TMP_OVERHEAD = len(TMP_PREFIX) + 12 + 1
_SAFE_INT = 2**53


class CorruptJson(ValueError):
    """The bytes are not a document `JSON.parse` would accept."""


def _reject_constant(token: str) -> Any:
    raise CorruptJson(f"the token {token} is not JSON")


def loads(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptJson(f"not UTF-8: {exc}") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CorruptJson(str(exc)) from exc


def to_json(value: Any) -> Any:
    """A stored value as JSON would carry it: what `JSON.parse(JSON.stringify(value))` gives in JavaScript.

    Raises TypeError on a value JSON has no form for (binary data, regular expressions, ...).
    """
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if isinstance(value, int):  # bson.Int64 is an int subclass
        return int(value)
    if kind is float:
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < _SAFE_INT else value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"non-string key {key!r:.40}")
            out[key] = to_json(item)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, datetime):
        return js_iso(value)
    if isinstance(value, Decimal128):
        return to_json(float(value.to_decimal()))
    if isinstance(value, ObjectId):
        return str(value)
    raise TypeError(f"{kind.__name__} has no JSON form")


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON values: numbers by value (JavaScript has one number type), bools never equal numbers."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        return a == b
    if ta is not tb:
        return False
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if ta is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return a == b


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of an already JSON-shaped value (see `to_json`); never NaN or Infinity tokens."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be UTF-8: escape it, as JSON.stringify does.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def write_atomic(directory: str, name: str, data: bytes) -> None:
    """backtest-kit's `writeFileAtomic`: temp file in the same directory, fsync, rename over the target."""
    target = os.path.join(directory, name)
    tmp = os.path.join(directory, f"{TMP_PREFIX}{secrets.token_hex(6)}-{name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
