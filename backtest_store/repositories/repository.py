"""The one generic repository: every adapter's I/O goes through it.

Keyed writes are a single atomic `find_one_and_update(filter == unique key, upsert=True)`: MongoDB retries the
duplicate-key race itself when the filter is an equality on every indexed field, and we retry once more on our
side for servers that do not. Driver errors are translated to `StorageError` here, at the boundary (wording in
`faults.py`).

Every call is bounded by `timeout` (the store's `mongo_timeout_ms`), retries included: a call that retries a race
shares one budget rather than getting a fresh one per attempt. Cursors are bounded per batch by the client's
`timeoutMS`, so a long list streams for as long as its consumer needs while no single round trip can hang.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from .. import validation
from ..cache import IdCache
from ..drivers import Collection
from ..errors import StorageError
from ..faults import mongo_fault
from ..models import Item

log = logging.getLogger("backtest_store.repository")

ATTEMPTS = 3
# Operations per bulk_write round trip.
BULK_CHUNK = 1000
DUPLICATE_KEY = 11000

Key = Mapping[str, Any]


@dataclass(frozen=True)
class BulkCounts:
    """What a bulk upsert did: new documents, and existing ones it matched (updated or left as they were)."""

    inserted: int = 0
    matched: int = 0
    modified: int = 0

    def __add__(self, other: "BulkCounts") -> "BulkCounts":
        return BulkCounts(self.inserted + other.inserted, self.matched + other.matched,
                          self.modified + other.modified)


def _same(a: object, b: object) -> bool:
    # Type-strict: True == 1 in Python, but a bool context field must not match an int.
    return type(a) is type(b) and a == b


def _literal(fields: Mapping[str, Any]) -> dict[str, Any]:
    # Every value travels as a `$literal`: a payload string such as "$price" is data, never a field path, and a
    # payload key starting with `$` or holding `.` is stored as it is (MongoDB 5.0+ accepts such names in
    # documents; the aggregation-pipeline form of an update is the one MongoDB documents for writing them).
    return {name: {"$literal": value} for name, value in fields.items()}


def _set(fields: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Last writer wins, as an update pipeline."""
    return [{"$set": {**_literal(fields), "updatedDate": now, "createDate": {"$ifNull": ["$createDate", now]}}}]


def _set_if_changed(fields: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Last writer wins, and a row equal to the stored one keeps its `updatedDate` (the server skips the write)."""
    values = _literal(fields)
    same = {"$and": [{"$eq": [f"${name}", value]} for name, value in values.items()]}
    return [{"$set": {**values, "updatedDate": {"$cond": [same, "$updatedDate", now]},
                      "createDate": {"$ifNull": ["$createDate", now]}}}]


def _set_on_insert(fields: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """First write wins: `$setOnInsert` as a pipeline, which leaves a stored document as it is."""
    new = {"$eq": [{"$type": "$createDate"}, "missing"]}
    values = {name: {"$cond": [new, literal, f"${name}"]} for name, literal in _literal(fields).items()}
    return [{"$set": {**values, "createDate": {"$ifNull": ["$createDate", now]},
                      "updatedDate": {"$ifNull": ["$updatedDate", now]}}}]


def _soft_delete(now: datetime) -> list[dict[str, Any]]:
    """`removed` on the column and inside an object payload (the original's `payload.removed`)."""
    payload = {"$cond": [{"$eq": [{"$type": "$payload"}, "object"]},
                         {"$mergeObjects": ["$payload", {"removed": True}]}, "$payload"]}
    return [{"$set": {"removed": True, "payload": payload, "updatedDate": now}}]


class Repository:
    """Generic over one Document class; the collection and the cache are injected by the Store."""

    def __init__(self, model: type[Item], collection: Collection, cache: IdCache | None,
                 timeout: float | None = None) -> None:
        self.model = model
        self.collection = collection
        self.cache = cache
        self.timeout = timeout
        self.key_fields = model.context_key()

    def _filter(self, key: Key) -> dict[str, Any]:
        """The filter is exactly the unique index, in index order; anything else is a bug in an adapter."""
        if set(key) != set(self.key_fields):
            raise TypeError(f"{self.model.__name__} is keyed by {self.key_fields}, got {tuple(key)}")
        return {f: key[f] for f in self.key_fields}

    def _checked(self, key: Key, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The filter of a write, once the whole document is known to fit MongoDB's limit (before any I/O)."""
        flt = self._filter(key)
        validation.document(flt, dict(fields))
        return flt

    def _matches(self, doc: Mapping[str, Any], key: Key) -> bool:
        return all(_same(doc.get(f), key[f]) for f in self.key_fields)

    def _fail(self, action: str, exc: PyMongoError) -> StorageError:
        return StorageError(f"{action} on {self.collection.name} failed: {mongo_fault(exc, self.timeout)}")

    def _bounded(self) -> Any:
        return pymongo.timeout(self.timeout)

    async def upsert(self, key: Key, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Last writer wins: one round trip, the Redis entry then set from the returned document."""
        self._checked(key, fields)
        doc = await self._find_one_and_update(key, _set(fields, datetime.now(timezone.utc)), upsert=True)
        assert doc is not None  # an upsert that returns nothing is retried, then raised, by _find_one_and_update
        if self.cache:
            await self.cache.set(key, doc["_id"])
        return doc

    async def soft_delete(self, key: Key) -> bool:
        """Mark `removed` on the column and in the payload; a missing key is a no-op (no upsert)."""
        doc = await self._find_one_and_update(key, _soft_delete(datetime.now(timezone.utc)), upsert=False)
        if doc is not None and self.cache:
            await self.cache.set(key, doc["_id"])
        return doc is not None

    async def _find_one_and_update(self, key: Key, update: list[dict[str, Any]], *, upsert: bool) -> dict[str, Any] | None:
        flt = self._filter(key)
        with self._bounded():
            return await self._find_one_and_update_attempts(flt, update, upsert=upsert)

    async def _find_one_and_update_attempts(self, flt: dict[str, Any], update: list[dict[str, Any]], *,
                                            upsert: bool) -> dict[str, Any] | None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                doc = await self.collection.find_one_and_update(
                    flt, update, upsert=upsert, return_document=ReturnDocument.AFTER)
            except DuplicateKeyError as exc:
                if attempt == ATTEMPTS:
                    raise self._fail("upsert", exc) from exc
                log.debug("duplicate-key race on %s, retrying", self.collection.name)
                continue
            except PyMongoError as exc:
                raise self._fail("upsert", exc) from exc
            if doc is not None or not upsert:
                return doc
            # An upsert asked for AFTER must return the document; a server that loses it in a race gets the
            # same idempotent update again rather than a caller left without the written document.
            log.warning("%s returned no document for an upsert, retrying", self.collection.name)
        raise StorageError(f"upsert on {self.collection.name} returned no document after {ATTEMPTS} attempts")

    async def find(self, key: Key, projection: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Redis → `_id` → MongoDB; on a miss or a mismatched document, the key query, then a cache backfill."""
        flt = self._filter(key)
        if projection is not None:
            # The key fields come back so that a cached `_id` can be checked against the requested key.
            projection = {**projection, **{f: 1 for f in self.key_fields}}
        cached = await self.cache.get(key) if self.cache else None
        try:
            # The Redis lookup above has its own timeout; the id read and the key query share this one.
            with self._bounded():
                if self.cache and isinstance(cached, str):
                    doc = await self._by_id(cached, projection)
                    if doc is not None and self._matches(doc, key):
                        self.cache.health.stats.hits += 1
                        return doc
                if self.cache:
                    # Unreadable (STALE), or pointing at nothing or at another key's document.
                    if cached is None:
                        self.cache.health.stats.misses += 1
                    else:
                        self.cache.health.stats.stale += 1
                doc = await self.collection.find_one(flt, projection)
        except PyMongoError as exc:
            raise self._fail("read", exc) from exc
        if self.cache:
            if doc is not None:
                await self.cache.set(key, doc["_id"])
            elif isinstance(cached, str):
                await self.cache.forget(key)
        return doc

    async def _by_id(self, doc_id: str, projection: Mapping[str, Any] | None) -> dict[str, Any] | None:
        try:
            oid = ObjectId(doc_id)
        except (InvalidId, TypeError):
            return None  # a corrupt cache value is a stale entry, not an error
        return await self.collection.find_one({"_id": oid}, projection)

    async def iterate(self, match: Mapping[str, Any], projection: Mapping[str, Any] | None = None,
                      batch_size: int = 1000, limit: int = 0) -> AsyncGenerator[dict[str, Any], None]:
        """Stream matching documents from a cursor, never held in memory at once. Lists pass no limit."""
        try:
            async with self.collection.find(dict(match), projection, batch_size=batch_size, limit=limit) as cursor:
                async for doc in cursor:
                    yield doc
        except PyMongoError as exc:
            raise self._fail("list", exc) from exc

    async def upsert_many(self, items: Sequence[tuple[Key, Mapping[str, Any]]]) -> BulkCounts:
        """Last-writer-wins upserts of many keys in one bulk round trip.

        The framework re-sends whole windows (50 storage rows, 500 notifications) on every event. As a pipeline
        update, a row equal to the stored one changes nothing, so the server skips the write and only the rows
        that changed cost one.
        """
        now = datetime.now(timezone.utc)
        ops = [UpdateOne(self._checked(key, fields), _set_if_changed(fields, now), upsert=True) for key, fields in items]
        # Ordered, so that a key repeated within one call ends with its last row.
        return await self._bulk(ops, ordered=True)

    async def insert_missing(self, items: Sequence[tuple[Key, Mapping[str, Any]]]) -> BulkCounts:
        """First write wins: `$setOnInsert` leaves existing keys untouched."""
        now = datetime.now(timezone.utc)
        ops = [UpdateOne(self._checked(key, fields), _set_on_insert(fields, now), upsert=True) for key, fields in items]
        return await self._bulk(ops, ordered=False)

    async def _bulk(self, ops: list[UpdateOne], *, ordered: bool) -> BulkCounts:
        # Each chunk is its own bounded round trip: mongo_timeout_ms bounds every round trip, and a call of 100,000
        # candles is not cut off as a whole (it was, after 15 s, on a slow server). In order, chunk after chunk.
        done = BulkCounts()
        for start in range(0, len(ops), BULK_CHUNK):
            with self._bounded():
                done += await self._bulk_attempts(ops[start:start + BULK_CHUNK], ordered=ordered)
        return done

    async def _bulk_attempts(self, ops: list[UpdateOne], *, ordered: bool) -> BulkCounts:
        done = BulkCounts()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                result = await self.collection.bulk_write(ops, ordered=ordered)
                return done + BulkCounts(result.upserted_count, result.matched_count, result.modified_count)
            except BulkWriteError as exc:
                # Replayed ops that already landed count as matched the second time, so only inserts carry over.
                done += BulkCounts(exc.details.get("nUpserted", 0), 0)
                # Every op is an idempotent upsert, so a batch that lost a duplicate-key race can be replayed whole.
                codes = {e.get("code") for e in exc.details.get("writeErrors", [])}
                if codes != {DUPLICATE_KEY} or attempt == ATTEMPTS:
                    raise self._fail("bulk write", exc) from exc
            except PyMongoError as exc:
                raise self._fail("bulk write", exc) from exc
        raise AssertionError("unreachable")
