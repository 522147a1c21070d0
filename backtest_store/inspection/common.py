"""What the schema report and the audit share: which Documents, how values and sizes read, JSON and pandas."""

from __future__ import annotations

import types
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin

from bson import json_util
from bson.json_util import RELAXED_JSON_OPTIONS

from .. import times, validation
from ..errors import ConfigurationError, InvalidInput
from ..contracts import DOCUMENTS
from ..models import Item


def find_documents(collection: str | type[Item] | None) -> tuple[type[Item], ...]:
    """The Documents to inspect: all of them, or the one named by collection name or class."""
    if collection is None:
        return DOCUMENTS
    for model in DOCUMENTS:
        if collection is model or collection == model.collection_name():
            return (model,)
    known = ", ".join(m.collection_name() for m in DOCUMENTS)
    raise InvalidInput(f"unknown collection {collection!r}; known collections: {known}")


def has_when(model: type[Item]) -> bool:
    return "when" in model.model_fields


def type_name(annotation: Any) -> str:
    """`int | None`, `Literal['1m', '5m']`, `Any`: annotations as a reader writes them, without module paths."""
    if annotation is type(None):
        return "None"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None and args:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(type_name(a) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).removeprefix("typing.")


def audit_ms(when: datetime | int) -> int:
    """A simulation time as stored: an aware datetime, or epoch milliseconds already."""
    if isinstance(when, datetime):
        return validation.when_ms(when)
    return validation.integer("when", when)


def iso(ms: int | None) -> str:
    if ms is None:
        return "None"
    try:
        return times.js_iso(times.ms_to_datetime(ms))
    except OverflowError:
        return f"{ms} ms (out of datetime range)"


def human_size(size: int | None) -> str:
    if size is None:
        return "None"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def extended_json(value: Any, indent: int | None = 2) -> str:
    """Relaxed Extended JSON: ObjectIds and dates stay recognisable, Infinity stays valid JSON."""
    return json_util.dumps(value, json_options=RELAXED_JSON_OPTIONS, indent=indent)


def pandas_module() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ConfigurationError("to_dataframe() needs pandas: pip install 'backtest-store[notebook]'") from exc
    return pandas
