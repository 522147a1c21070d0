"""JSON the way backtest-kit's file backend reads and writes it.

- Reading accepts exactly what JavaScript's `JSON.parse` accepts: no `NaN`/`Infinity` tokens, no BOM. Every
  number is what JavaScript would hold: an integer beyond the safe ones (±(2**53 - 1)) is read as the double
  JavaScript reads.
- Writing produces the bytes `JSON.stringify` produces, so that a dump exported from what was imported is
  byte-identical: compact, UTF-8 without BOM, keys in their stored order, numbers as ECMAScript's
  Number::toString prints them (`0.0000124`, `100`, `1e+21`, `1.5e-7`, `0` for `-0`, `null` for non-finite),
  strings escaped as JSON.stringify escapes them (lone surrogates as `\\udxxx`, U+2028/2029 and non-ASCII
  raw), dates as ISO-8601 UTC strings with milliseconds.
- Files are written atomically: a `.tmp-<12 hex>-<name>` sibling, fsync, rename.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import secrets
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from bson import Decimal128, ObjectId

from ..times import js_iso

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


def _js_int(token: str) -> int | float:
    # JavaScript has doubles only: 12345678901234567890 is 12345678901234567000 once parsed. Beyond the safe
    # integers (±(2**53 - 1)) the value is kept as that double, which stores as a BSON double the TypeScript side
    # reads as a number (an int there would be refused: see validation.MAX_SAFE_INTEGER); 2**53 prints the same.
    # A token longer than 2**53 can be is read as the double at once: `int()` refuses more than 4,300 digits.
    if len(token) > 17:
        return float(token)
    value = int(token)
    return value if -_SAFE_INT < value < _SAFE_INT else float(token)


def loads(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptJson(f"not UTF-8: {exc}") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_js_int)
    except json.JSONDecodeError as exc:
        raise CorruptJson(str(exc)) from exc
    except RecursionError:
        raise CorruptJson("nested too deeply to read (MongoDB stores 100 levels at most)") from None


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
        return bool(a == b)
    if ta is not tb:
        return False
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if ta is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def js_number(value: float) -> str:
    """ECMAScript Number::toString: the shortest round-trip digits (Python's repr has the same digits), laid out
    in decimal unless the decimal exponent is >= 21 or <= -7."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"  # -0 too
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    # The value is 0.<digits> * 10**point once leading zeros are dropped.
    point = len(whole) + (int(exponent) if exponent else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    e = point - 1
    return f"{sign}{digits[0]}{'.' + digits[1:] if k > 1 else ''}e{'+' if e >= 0 else '-'}{abs(e)}"


def _js_big_int(value: int) -> str:
    # What JavaScript holds for it: the nearest double, or Infinity (null) beyond the double range.
    try:
        return js_number(float(value))
    except OverflowError:
        return "null"


def _escape_surrogates(exc: UnicodeError) -> tuple[bytes, int]:
    """UTF-8 error handler: JSON.stringify escapes a lone surrogate as `\\udxxx`; a high+low pair (two code points
    in Python, one UTF-16 pair in JavaScript) is the character itself."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    run, out, i = exc.object[exc.start:exc.end], [], 0
    while i < len(run):
        code = ord(run[i])
        if 0xD800 <= code <= 0xDBFF and i + 1 < len(run) and 0xDC00 <= ord(run[i + 1]) <= 0xDFFF:
            out.append(chr(0x10000 + ((code - 0xD800) << 10) + ord(run[i + 1]) - 0xDC00))
            i += 2
        else:
            out.append(f"\\u{code:04x}")
            i += 1
    # Bytes, not str: the UTF-8 codec takes only ASCII text back from an error handler.
    return "".join(out).encode("utf-8"), exc.end


_SURROGATES = "backtest_store.json_surrogates"
codecs.register_error(_SURROGATES, _escape_surrogates)


def _encode(value: Any, out: list[str]) -> None:
    # `encode_basestring` is json's C escaper without ensure_ascii: `"`, `\`, the C0 controls (\b \t \n \f \r short,
    # the rest as \u00xx) and nothing else, which is exactly the set JSON.stringify escapes.
    kind = type(value)
    if kind is str:
        out.append(encode_basestring(value))
    elif kind is dict:
        separator = "{"
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"non-string key {key!r:.40}")
            out.append(separator)
            out.append(encode_basestring(key))
            out.append(":")
            _encode(item, out)
            separator = ","
        out.append("}" if value else "{}")
    elif kind is list or kind is tuple:
        separator = "["
        for item in value:
            out.append(separator)
            _encode(item, out)
            separator = ","
        out.append("]" if value else "[]")
    elif kind is float:
        out.append(js_number(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):  # bson.Int64 is an int subclass
        out.append(str(int(value)) if -_SAFE_INT <= value <= _SAFE_INT else _js_big_int(value))
    else:
        raise TypeError(f"{kind.__name__} has no JSON form")


def dumps(value: Any) -> bytes:
    """The bytes `JSON.stringify` writes for an already JSON-shaped value (see `to_json`); TypeError otherwise."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8", _SURROGATES)


def write_atomic(directory: str, name: str, data: bytes, *, dir_fd: int | None = None) -> None:
    """backtest-kit's `writeFileAtomic`: temp file in the same directory, fsync, rename over the target.

    With `dir_fd`, `directory` is only named in errors: every step is relative to that open folder, and the temp
    file is created with O_NOFOLLOW|O_EXCL, so nothing is written through a link. The rename replaces a link at
    `name` itself, never what it points to."""
    target = name if dir_fd is not None else os.path.join(directory, name)
    tmp_name = f"{TMP_PREFIX}{secrets.token_hex(6)}-{name}"
    tmp = tmp_name if dir_fd is not None else os.path.join(directory, tmp_name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
