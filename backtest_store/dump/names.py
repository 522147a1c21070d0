"""Names in a backtest-kit `./dump`: the file and directory names the layouts build and parse, and the
records and refusals the importer and exporter pass around."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import validation
from ..errors import InvalidInput
from .jsonfile import MAX_NAME_BYTES, SUFFIX, TMP_OVERHEAD, TMP_PREFIX

if TYPE_CHECKING:
    pass

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
    if type(value) is int and -validation.MAX_SAFE_INTEGER <= value <= validation.MAX_SAFE_INTEGER:
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
