"""The schema report: collections, fields, context keys, declared vs live indexes, counts, sizes and samples."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pymongo.errors import OperationFailure

from ..drivers import Collection, Database
from ..migrations import IndexChange, keys_text, plan
from ..migrations.diff import options_of
from ..models import Item
from ..wording import plural
from .common import extended_json, find_documents, human_size, pandas_module, type_name
from .render import esc, html_details, html_pre, html_table


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


def options_text(spec: dict[str, Any] | None) -> str:
    """The options an index has beyond its keys (`unique=True`), as `migrate` compares them."""
    return ", ".join(f"{k}={v}" for k, v in options_of(spec).items()) if spec else ""


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
        return [(c.name, c.action, keys_text(c.declared or c.live), options_text(c.declared or c.live), c.reason)
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
        return pandas_module().DataFrame([dataclasses.asdict(f) for f in self.fields])

    def _html_body(self) -> str:
        facts = html_table(("document", "context key", "documents (estimated)", "storage"), [(
            self.document.__name__, ", ".join(self.context_key), self.count if self.exists else "no collection",
            human_size(self.storage_size))])
        sample = html_pre(extended_json(self.sample)) if self.sample is not None else "<p>No documents.</p>"
        return (facts + "<h5>Fields</h5>" + html_table(self.FIELD_HEADERS, self.field_rows())
                + "<h5>Indexes (declared vs live)</h5>" + html_table(self.INDEX_HEADERS, self.index_rows())
                + html_details("Sample document", sample) + html_details("JSON Schema", html_pre(extended_json(self.json_schema))))

    def _repr_html_(self) -> str:
        return f"<div><h4>{esc(self.name)}</h4>{self._html_body()}</div>"


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
        return extended_json(self.to_dict(), indent)

    def to_dataframe(self) -> Any:
        """One row per collection; `report[name].to_dataframe()` has the fields."""
        return pandas_module().DataFrame([{
            "collection": c.name, "document": c.document.__name__, "context_key": ", ".join(c.context_key),
            "exists": c.exists, "count": c.count, "storage_size": c.storage_size, "indexes": c.index_summary(),
        } for c in self.collections])

    def _repr_html_(self) -> str:
        head = f"<h4>Database {esc(self.database)} (storage {esc(human_size(self.storage_size))})</h4>"
        details = "".join(html_details(c.name, c._html_body()) for c in self.collections)
        return f"<div>{head}{html_table(self.SUMMARY_HEADERS, self.summary_rows())}{details}</div>"


async def _storage_size(database: Database, collection: Collection, count: int) -> int | None:
    # Servers lacking a command or stage answer OperationFailure; connection errors still propagate.
    try:
        cursor = await collection.aggregate([{"$collStats": {"storageStats": {}}}])
        # A sharded collection answers once per shard (`sum` cannot take an async generator: a list first).
        size = sum([int(s["storageStats"]["storageSize"]) async for s in cursor])
        # A server may answer the stage without measuring (SecantusDB says 0 where `collStats` has the figure):
        # a non-empty collection takes space, so a zero there is not an answer.
        if size or not count:
            return size
    except (OperationFailure, KeyError, TypeError, ValueError):
        pass
    try:
        size = int((await database.command("collStats", collection.name))["storageSize"])
    except (OperationFailure, KeyError, TypeError, ValueError):
        return None
    return size if size or not count else None


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
        count, sample = await asyncio.gather(collection.estimated_document_count(), collection.find_one({}))
        size = await _storage_size(database, collection, count)
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
