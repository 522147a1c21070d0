"""Schema inspection and the look-ahead audit, for notebooks (HTML tables, pandas) and the `inspect` command.

Everything here only reads. Counts use `estimatedDocumentCount` (collection metadata) rather than a scan, and
storage sizes come from `$collStats`, then the older `collStats` command; a server with neither shows None.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import types
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from bson import json_util
from bson.json_util import RELAXED_JSON_OPTIONS
from pymongo.errors import OperationFailure

from . import validation
from .drivers import Collection, Database
from .errors import ConfigurationError, InvalidInput
from .migrations import IndexChange, plan
from .models import DOCUMENTS, Item
from .wording import plural

AUDIT_LIMIT = 20


# -- helpers -----------------------------------------------------------------------------------------------------


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


def when_ms(when: datetime | int) -> int:
    """A simulation time as stored: an aware datetime, or epoch milliseconds already."""
    if isinstance(when, datetime):
        return validation.when_ms(when)
    return validation.integer("when", when)


def iso(ms: int | None) -> str:
    if ms is None:
        return "None"
    try:
        return validation.js_iso(validation.ms_to_datetime(ms))
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


def to_json(value: Any, indent: int | None = 2) -> str:
    """Relaxed Extended JSON: ObjectIds and dates stay recognisable, Infinity stays valid JSON."""
    return json_util.dumps(value, json_options=RELAXED_JSON_OPTIONS, indent=indent)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ConfigurationError("to_dataframe() needs pandas: pip install 'backtest-store[notebook]'") from exc
    return pandas


# Every value goes through html.escape: field values, names and reasons all come from the database.
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left'>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{_e(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _details(summary: str, content: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{_e(summary)}</summary>{content}</details>"


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


# -- schema ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    name: str  # as stored (`_id`, not `id`)
    type: str
    required: bool
    context: bool  # part of the context key (the unique index)


def model_fields(model: type[Item]) -> tuple[FieldInfo, ...]:
    key = set(model.context_key())
    out = []
    for name, info in model.model_fields.items():
        if info.exclude:  # Beanie's revision_id: never stored by our Documents
            continue
        stored = info.alias or name
        out.append(FieldInfo(stored, type_name(info.annotation), info.is_required(), stored in key))
    return tuple(out)


def _keys_text(spec: dict[str, Any] | None) -> str:
    if not spec:
        return ""
    return ", ".join(f"{field}: {direction}" for field, direction in spec["key"])


def _options_text(spec: dict[str, Any] | None) -> str:
    if not spec:
        return ""
    return ", ".join(f"{k}={v}" for k, v in spec.items() if k not in ("key", "name"))


# Short reprs: the full ones would print every sample document and JSON Schema.
@dataclass(frozen=True, repr=False)
class CollectionSchema:
    name: str
    document: type[Item]
    fields: tuple[FieldInfo, ...]
    context_key: tuple[str, ...]
    indexes: tuple[IndexChange, ...]  # declared vs live, from migrations.plan
    exists: bool
    count: int  # estimated (collection metadata)
    storage_size: int | None  # bytes; None when the server does not say
    sample: dict[str, Any] | None  # one stored document, as stored
    json_schema: dict[str, Any]

    FIELD_HEADERS: ClassVar[tuple[str, ...]] = ("field", "type", "required", "context key")
    INDEX_HEADERS: ClassVar[tuple[str, ...]] = ("index", "status", "keys", "options", "reason")

    def __repr__(self) -> str:
        return f"<CollectionSchema {self.name} ({self.document.__name__}): {plural(self.count, 'document')}>"

    def field_rows(self) -> list[tuple[str, ...]]:
        return [(f.name, f.type, "yes" if f.required else "", "yes" if f.context else "") for f in self.fields]

    def index_rows(self) -> list[tuple[str, ...]]:
        # A conflict shows the declared keys and options; the reason says what the server has instead.
        return [(c.name, c.action, _keys_text(c.declared or c.live), _options_text(c.declared or c.live), c.reason)
                for c in self.indexes]

    def index_summary(self) -> str:
        counts = Counter(c.action for c in self.indexes)
        return ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.name, "document": self.document.__name__, "exists": self.exists,
            "context_key": list(self.context_key), "fields": [dataclasses.asdict(f) for f in self.fields],
            "indexes": [dataclasses.asdict(c) for c in self.indexes], "count": self.count,
            "storage_size": self.storage_size, "sample": self.sample, "json_schema": self.json_schema,
        }

    def to_dataframe(self) -> Any:
        """One row per field."""
        return _pandas().DataFrame([dataclasses.asdict(f) for f in self.fields])

    def _html_body(self) -> str:
        facts = _table(("document", "context key", "documents (estimated)", "storage"), [(
            self.document.__name__, ", ".join(self.context_key), self.count if self.exists else "no collection",
            human_size(self.storage_size))])
        sample = _pre(to_json(self.sample)) if self.sample is not None else "<p>No documents.</p>"
        return (facts + "<h5>Fields</h5>" + _table(self.FIELD_HEADERS, self.field_rows())
                + "<h5>Indexes (declared vs live)</h5>" + _table(self.INDEX_HEADERS, self.index_rows())
                + _details("Sample document", sample) + _details("JSON Schema", _pre(to_json(self.json_schema))))

    def _repr_html_(self) -> str:
        return f"<div><h4>{_e(self.name)}</h4>{self._html_body()}</div>"


@dataclass(frozen=True, repr=False)
class SchemaReport:
    database: str
    storage_size: int | None  # the whole database (dbStats); None when the server does not say
    collections: tuple[CollectionSchema, ...]

    SUMMARY_HEADERS: ClassVar[tuple[str, ...]] = (
        "collection", "document", "context key", "documents", "storage", "indexes")

    def __repr__(self) -> str:
        return f"<SchemaReport {self.database}: {', '.join(c.name for c in self.collections)}>"

    def __getitem__(self, name: str) -> CollectionSchema:
        for c in self.collections:
            if c.name == name or c.document.__name__ == name:
                return c
        raise KeyError(name)

    def __iter__(self) -> Iterator[CollectionSchema]:
        return iter(self.collections)

    def __len__(self) -> int:
        return len(self.collections)

    def summary_rows(self) -> list[tuple[str, ...]]:
        return [(c.name, c.document.__name__, ", ".join(c.context_key), str(c.count) if c.exists else "no collection",
                 human_size(c.storage_size), c.index_summary()) for c in self.collections]

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "storage_size": self.storage_size,
                "collections": [c.to_dict() for c in self.collections]}

    def to_json(self, indent: int | None = 2) -> str:
        return to_json(self.to_dict(), indent)

    def to_dataframe(self) -> Any:
        """One row per collection; `report[name].to_dataframe()` has the fields."""
        return _pandas().DataFrame([{
            "collection": c.name, "document": c.document.__name__, "context_key": ", ".join(c.context_key),
            "exists": c.exists, "count": c.count, "storage_size": c.storage_size, "indexes": c.index_summary(),
        } for c in self.collections])

    def _repr_html_(self) -> str:
        head = f"<h4>Database {_e(self.database)} (storage {_e(human_size(self.storage_size))})</h4>"
        details = "".join(_details(c.name, c._html_body()) for c in self.collections)
        return f"<div>{head}{_table(self.SUMMARY_HEADERS, self.summary_rows())}{details}</div>"


async def _storage_size(database: Database, collection: Collection) -> int | None:
    # Servers lacking a command or stage answer OperationFailure; connection errors still propagate.
    try:
        cursor = await collection.aggregate([{"$collStats": {"storageStats": {}}}])
        # A sharded collection answers once per shard (`sum` cannot take an async generator: a list first).
        return sum([int(s["storageStats"]["storageSize"]) async for s in cursor])
    except (OperationFailure, KeyError, TypeError, ValueError):
        pass
    try:
        return int((await database.command("collStats", collection.name))["storageSize"])
    except (OperationFailure, KeyError, TypeError, ValueError):
        return None


async def _database_size(database: Database) -> int | None:
    try:
        return int((await database.command("dbStats"))["storageSize"])
    except (OperationFailure, KeyError, TypeError, ValueError):
        return None


async def _collection_schema(database: Database, model: type[Item], existing: set[str]) -> CollectionSchema:
    name = model.collection_name()
    collection = database[name]
    exists = name in existing
    indexes = tuple(await plan(database, (model,)))
    if exists:
        count, size, sample = await asyncio.gather(
            collection.estimated_document_count(), _storage_size(database, collection), collection.find_one({}))
    else:
        count, size, sample = 0, None, None
    return CollectionSchema(name, model, model_fields(model), model.context_key(), indexes, exists, count, size,
                            sample, model.model_json_schema())


async def schema(database: Database, collection: str | type[Item] | None = None) -> SchemaReport:
    """Every collection (or one, by name or Document class): fields, context key, indexes, count, size, sample."""
    models = find_documents(collection)
    existing = set(await database.list_collection_names())
    collections, size = await asyncio.gather(
        asyncio.gather(*(_collection_schema(database, m, existing) for m in models)), _database_size(database))
    return SchemaReport(database.name, size, tuple(collections))


# -- look-ahead audit --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFinding:
    collection: str
    context_key: tuple[str, ...]
    total: int  # every document later than the audit time
    documents: tuple[dict[str, Any], ...]  # the first `limit` of them by `when`: `_id`, `when`, context fields

    @property
    def more(self) -> int:
        """Later documents that exist but are not listed."""
        return self.total - len(self.documents)

    HEADERS_START: ClassVar[tuple[str, ...]] = ("_id", "when")

    def headers(self) -> tuple[str, ...]:
        return (*self.HEADERS_START, *self.context_key)

    def rows(self) -> list[tuple[str, ...]]:
        return [(str(d.get("_id")), iso(d.get("when")), *(str(d.get(f)) for f in self.context_key))
                for d in self.documents]

    def more_text(self, hint: str = "raise `limit` to see them") -> str:
        return f"… and {self.more} more not listed ({hint})" if self.more else ""


@dataclass(frozen=True, repr=False)
class AuditReport:
    when: int  # the audit time, epoch ms
    limit: int
    findings: tuple[AuditFinding, ...]  # every audited collection, clean ones included

    COUNT_HEADERS: ClassVar[tuple[str, ...]] = ("collection", "later documents", "listed")

    @property
    def total(self) -> int:
        return sum(f.total for f in self.findings)

    @property
    def clean(self) -> bool:
        return self.total == 0

    def __repr__(self) -> str:
        return f"<AuditReport {self.headline()}>"

    def __getitem__(self, collection: str) -> AuditFinding:
        for f in self.findings:
            if f.collection == collection:
                return f
        raise KeyError(collection)

    def headline(self) -> str:
        at = f"{iso(self.when)} ({self.when} ms)"
        if self.clean:
            return f"No stored `when` is later than {at} ({plural(len(self.findings), 'collection')} audited)."
        hit = sum(1 for f in self.findings if f.total)
        return f"Stored `when` later than {at}: {plural(self.total, 'document')} in {plural(hit, 'collection')}."

    def count_rows(self) -> list[tuple[str, ...]]:
        return [(f.collection, str(f.total), str(len(f.documents))) for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return {"when": self.when, "when_iso": iso(self.when), "limit": self.limit, "total": self.total,
                "collections": [{"collection": f.collection, "total": f.total, "more": f.more,
                                 "documents": list(f.documents)} for f in self.findings]}

    def to_json(self, indent: int | None = 2) -> str:
        return to_json(self.to_dict(), indent)

    def to_dataframe(self, kind: Literal["documents", "counts"] = "documents") -> Any:
        """`documents`: one row per listed document (warns when some are not listed); `counts`: per collection."""
        pd = _pandas()
        if kind == "counts":
            return pd.DataFrame([{"collection": f.collection, "total": f.total, "listed": len(f.documents),
                                  "more": f.more} for f in self.findings])
        if kind != "documents":
            raise InvalidInput(f"kind must be 'documents' or 'counts', got {kind!r}")
        unlisted = {f.collection: f.more for f in self.findings if f.more}
        if unlisted:
            warnings.warn(f"not every later document is listed (limit={self.limit}): {unlisted} more; "
                          "see to_dataframe('counts')", stacklevel=2)
        rows = [{"collection": f.collection, "_id": str(d.get("_id")), "when": d.get("when"),
                 "when_utc": pd.to_datetime(d.get("when"), unit="ms", utc=True),
                 **{k: d.get(k) for k in f.context_key}} for f in self.findings for d in f.documents]
        return pd.DataFrame(rows, columns=None if rows else ["collection", "_id", "when", "when_utc"])

    def _repr_html_(self) -> str:
        parts = [f"<h4>Look-ahead audit</h4><p>{_e(self.headline())}</p>",
                 _table(self.COUNT_HEADERS, self.count_rows())]
        for f in self.findings:
            if f.total:
                parts.append(f"<h5>{_e(f.collection)}</h5>" + _table(f.headers(), f.rows()))
                if f.more:
                    parts.append(f"<p><b>{_e(f.more_text())}</b></p>")
        return "<div>" + "".join(parts) + "</div>"


async def _audit_collection(database: Database, model: type[Item], when: int, limit: int) -> AuditFinding:
    collection = database[model.collection_name()]
    key = model.context_key()
    later = {"when": {"$gt": when}}
    documents: list[dict[str, Any]] = []
    if limit:
        projection = {"_id": 1, "when": 1, **{f: 1 for f in key}}
        documents = await collection.find(later, projection).sort("when", 1).limit(limit).to_list()
    # Counting is only needed when the listing may have stopped short.
    total = len(documents) if len(documents) < limit else await collection.count_documents(later)
    return AuditFinding(model.collection_name(), key, total, tuple(documents))


async def audit(database: Database, when: datetime | int, collection: str | type[Item] | None = None, *,
                limit: int = AUDIT_LIMIT) -> AuditReport:
    """Per collection with a stored `when`, the documents written for a time later than `when`.

    `when` is the simulation time: an aware datetime or epoch ms. At most `limit` documents are listed per
    collection (earliest first); `total` always counts them all. Only the `when` column is checked, not copies
    of it inside payloads.
    """
    at = when_ms(when)
    limit = validation.integer("limit", limit, minimum=0)
    models = find_documents(collection)
    audited = [m for m in models if has_when(m)]
    if not audited:
        raise InvalidInput(f"{models[0].collection_name()} stores no `when`; nothing to audit")
    findings = await asyncio.gather(*(_audit_collection(database, m, at, limit) for m in audited))
    return AuditReport(at, limit, tuple(findings))


__all__ = [
    "AUDIT_LIMIT", "AuditFinding", "AuditReport", "CollectionSchema", "FieldInfo", "SchemaReport", "audit",
    "find_documents", "schema", "to_json", "type_name", "when_ms",
]
