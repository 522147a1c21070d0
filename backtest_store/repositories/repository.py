"""The one generic repository: every adapter's I/O goes through it.

Keyed writes are a single atomic `find_one_and_update(filter == unique key, upsert=True)`: MongoDB retries the
duplicate-key race itself when the filter is an equality on every indexed field, and we retry once more on our
side for servers that do not. Driver errors are translated to `StorageError` here, at the boundary (wording in
`faults.py`).

Every call is bounded by `timeout` (the store's `mongo_timeout_ms`), retries and Redis steps included: a call has one
deadline, the Redis lookup gets what is left of it (at most its own socket timeout) and MongoDB the rest, and a
call that retries a race shares one budget rather than getting a fresh one per attempt. Cursors are bounded per batch by the client's
`timeoutMS`, so a long list streams for as long as its consumer needs while no single round trip can hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple, TypeVar

import bson
import pymongo
from bson import ObjectId
from bson.errors import InvalidDocument, InvalidId
from bson.raw_bson import RawBSONDocument
from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from .. import validation
from ..cache import IdCache
from ..drivers import Collection
from ..errors import NotWritten, StorageError
from ..faults import storage_error
from ..models import Item

log = logging.getLogger("backtest_store.repository")

ATTEMPTS = 3
# The actions whose failure leaves a write's outcome to report (`NotWritten` or `OutcomeUnknown`).
WRITES = frozenset({"upsert", "insert", "bulk write"})
# Operations per bulk_write round trip.
BULK_CHUNK = 1000
DUPLICATE_KEY = 11000
# Where a window row's digest is stored (Storage, Notification): what a re-sent row is compared with, so that an
# unchanged row is never sent again. Not part of the TypeScript original's layout; the dump tools never read it.
DIGEST = "payloadDigest"
# Lists ask for batches this large; the server still caps each batch at 16 MiB, which bounds the memory a list
# holds, so 10,000 keys come in one round trip instead of one per 1,000.
LIST_BATCH = 100_000
# What bson raises for a value it cannot encode (the validators run first: reaching these is a bug, or a type the
# fast checks let through, and is still refused before any I/O).
ENCODING_ERRORS = (InvalidDocument, OverflowError, UnicodeEncodeError, TypeError)

Key = Mapping[str, Any]
_T = TypeVar("_T")
# What is left of a call's budget once it has run out: PyMongo reads a zero timeout as "none at all".
SPENT = 0.001


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


def digest(encoded: bytes) -> bytes:
    """The digest stored beside a window row: 16 bytes of BLAKE2b over the row's BSON (key order included, as
    MongoDB's own equality of documents counts it)."""
    return hashlib.blake2b(encoded, digest_size=16).digest()


def encoded_row(row: Mapping[str, Any]) -> bytes:
    """A row's BSON, which both its digest and the update carry (as a `RawBSONDocument`): encoded once. Encoded as
    a value inside a document, as it is stored: a top-level document would have its `_id` key moved first."""
    return bson.encode({"": row})[6:-1]


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
        self._key_set = frozenset(self.key_fields)
        # Storage and Notification rows carry a digest of their payload (see `write_window`).
        self.digests = bool(getattr(model, "windowed", False))
        # Where a call's deadline is read from (a test injects its own, so that no test waits on the wall clock).
        self.clock = time.monotonic

    def _filter(self, key: Key) -> dict[str, Any]:
        """The filter is exactly the unique index, in index order; anything else is a bug in an adapter."""
        if key.keys() != self._key_set:
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
        return storage_error(f"{action} on {self.collection.name}", exc, self.timeout, write=action in WRITES)

    def _ours(self, error: Mapping[str, Any] | None) -> bool:
        """A duplicate of OUR key (a race that another attempt resolves), judged by the index it names: a duplicate
        on another unique index (the original's exchange-less candle index, say) is a refusal, and retrying it
        would only be refused again."""
        error = error or {}
        return error.get("code") == DUPLICATE_KEY and set(error.get("keyPattern") or ()) == self._key_set

    def _deadline(self) -> float | None:
        return None if self.timeout is None else self.clock() + self.timeout

    def _bounded(self, deadline: float | None = None) -> Any:
        """PyMongo's bound: the whole timeout, or what is left of a call's `deadline`."""
        if deadline is None:
            return pymongo.timeout(self.timeout)
        return pymongo.timeout(max(SPENT, deadline - self.clock()))

    async def _cache_step(self, step: Coroutine[Any, Any, _T], deadline: float | None, action: str, missed: _T) -> _T:
        """A Redis step of a call, within what is left of the call's deadline: a Redis that does not answer in time
        is a cache failure like any other (`missed` stands in for its answer), never a longer call."""
        if deadline is None or self.cache is None:
            return await step
        left = deadline - self.clock()
        if left <= 0:
            # MongoDB took the whole budget: Redis was not slow, so the cache stays on; the entry is not needed.
            step.close()
            return missed
        try:
            async with asyncio.timeout(left):
                return await step
        except TimeoutError as exc:
            self.cache.health.failed(action, exc)
            return missed

    def _stage(self, flt: Mapping[str, Any], fields: Mapping[str, Any], now: datetime) -> list[Any]:
        """`_set` encoded once, here: the size check reads the bytes that go on the wire, and PyMongo copies them
        as they are (a `RawBSONDocument`) instead of encoding the payload a second time."""
        stage = {**_literal(fields), "updatedDate": now, "createDate": {"$ifNull": ["$createDate", now]}}
        try:
            raw = bson.encode(stage)
            size = len(raw) + len(bson.encode(flt))
        except ENCODING_ERRORS as exc:
            raise validation.Unencodable(f"cannot be stored: {type(exc).__name__}: {str(exc)[:200]}") from None
        if size > validation.MAX_DOCUMENT_BYTES - validation.ENVELOPE_BYTES:
            validation.document(dict(flt), dict(fields))  # the exact size, and the error naming the document
        return [{"$set": RawBSONDocument(raw)}]

    async def upsert(self, key: Key, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Last writer wins: one round trip, the Redis entry then set from the returned `_id` (the only field the
        server sends back). Returns `{"_id": ...}`."""
        flt = self._filter(key)
        update = self._stage(flt, fields, datetime.now(timezone.utc))
        deadline = self._deadline()
        doc = await self._find_one_and_update(key, update, upsert=True, deadline=deadline)
        assert doc is not None  # an upsert that returns nothing is retried, then raised, by _find_one_and_update
        if self.cache:
            await self._cache_step(self.cache.set(key, doc["_id"]), deadline, "write", None)
        return doc

    async def soft_delete(self, key: Key) -> bool:
        """Mark `removed` on the column and in the payload; a missing key is a no-op (no upsert)."""
        deadline = self._deadline()
        doc = await self._find_one_and_update(key, _soft_delete(datetime.now(timezone.utc)), upsert=False,
                                              deadline=deadline)
        if doc is not None and self.cache:
            await self._cache_step(self.cache.set(key, doc["_id"]), deadline, "write", None)
        return doc is not None

    async def _find_one_and_update(self, key: Key, update: list[Any], *, upsert: bool,
                                   deadline: float | None = None) -> dict[str, Any] | None:
        flt = self._filter(key)
        with self._bounded(deadline):
            return await self._find_one_and_update_attempts(flt, update, upsert=upsert)

    async def _find_one_and_update_attempts(self, flt: dict[str, Any], update: list[Any], *,
                                            upsert: bool) -> dict[str, Any] | None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                doc = await self.collection.find_one_and_update(
                    flt, update, projection=_ID_ONLY, upsert=upsert, return_document=ReturnDocument.AFTER)
            except DuplicateKeyError as exc:
                if attempt == ATTEMPTS or not self._ours({"code": exc.code, **(exc.details or {})}):
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
        raise NotWritten(f"upsert on {self.collection.name} returned no document after {ATTEMPTS} attempts")

    def projection(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A read's projection with the key fields added, so that a cached `_id` can be checked against the key.
        Adapters build theirs once."""
        return {**fields, **{f: 1 for f in self.key_fields}}

    async def find(self, key: Key, projection: Mapping[str, Any] | None = None, *,
                   keyed: bool = False) -> dict[str, Any] | None:
        """Redis → `_id` → MongoDB; on a miss or a mismatched document, the key query, then a cache backfill.
        `keyed=True` says the projection already holds the key fields (`projection()`)."""
        flt = self._filter(key)
        if projection is not None and not keyed:
            projection = self.projection(projection)
        cache = self.cache
        deadline = self._deadline()
        cached = await self._cache_step(cache.get(key), deadline, "read", None) if cache else None
        try:
            # One deadline for the whole call: the id read and the key query get what the Redis lookup left.
            with self._bounded(deadline):
                if cache and type(cached) is str:
                    doc = await self._by_id(cached, projection)
                    if doc is not None and self._matches(doc, key):
                        cache.outcome("hits")
                        return doc
                if cache:
                    # Unreadable (STALE), or pointing at nothing or at another key's document.
                    cache.outcome("misses" if cached is None else "stale")
                doc = await self.collection.find_one(flt, projection)
        except PyMongoError as exc:
            raise self._fail("read", exc) from exc
        if cache:
            if doc is not None:
                await self._cache_step(cache.set(key, doc["_id"]), deadline, "write", None)
            elif type(cached) is str:
                await self._cache_step(cache.forget(key), deadline, "delete", None)
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

    def cursor(self, match: Mapping[str, Any], projection: Mapping[str, Any] | None = None) -> AsyncCursor[Any]:
        """A list's cursor, in batches of up to `LIST_BATCH` documents (and 16 MiB). The caller iterates it itself,
        one async layer fewer per document than `iterate`, and reports a failure with `list_failed`."""
        return self.collection.find(dict(match), projection, batch_size=LIST_BATCH)

    def list_failed(self, exc: PyMongoError) -> StorageError:
        return self._fail("list", exc)

    async def find_all(self, match: Mapping[str, Any], projection: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
        """At most `limit` documents in one list: one round trip for a limit up to the server's batch (a candle
        range of up to 16 MiB)."""
        try:
            with self._bounded():
                return await self.collection.find(dict(match), projection, batch_size=limit, limit=limit).to_list()
        except PyMongoError as exc:
            raise self._fail("read", exc) from exc

    async def stored_values(self, match: Mapping[str, Any], field: str, *extra: str) -> list[dict[str, Any]]:
        """The `field` (and `extra` fields) of every matching document: which keys of a write are stored already,
        and their digests. One round trip for up to 16 MiB of them."""
        projection = {field: 1, "_id": 0, **{f: 1 for f in extra}}
        try:
            with self._bounded():
                return await self.collection.find(dict(match), projection, batch_size=LIST_BATCH).to_list()
        except PyMongoError as exc:
            raise self._fail("read", exc) from exc

    async def stored_among(self, match: Mapping[str, Any], field: str, ids: Sequence[Any],
                           *extra: str) -> list[dict[str, Any]]:
        """`stored_values` for the documents whose `field` is one of `ids`: an `$in` of at most BULK_CHUNK ids per
        round trip, as writes send at most BULK_CHUNK rows, so that every round trip does bounded work within
        mongo_timeout_ms whatever the size of the call (the framework's windows, up to 1,000 rows, take one)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), BULK_CHUNK):
            found += await self.stored_values({**match, field: {"$in": list(ids[start:start + BULK_CHUNK])}},
                                              field, *extra)
        return found

    async def insert_new(self, docs: Sequence[dict[str, Any]]) -> int:
        """First write wins, as plain inserts: a key stored already (by another writer in the meantime) is the
        unique index's duplicate-key error, which leaves that document as it is and is not a failure. Returns how
        many documents were inserted. Unordered: one refused document does not stop the others. Round trips of
        BULK_CHUNK documents, each bounded by mongo_timeout_ms, so that a call of any size can finish."""
        inserted = 0
        for start in range(0, len(docs), BULK_CHUNK):
            inserted += await self._insert_chunk(docs[start:start + BULK_CHUNK])
        return inserted

    async def _insert_chunk(self, docs: Sequence[dict[str, Any]]) -> int:
        try:
            with self._bounded():
                result = await self.collection.insert_many(list(docs), ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            # Only a duplicate of OUR key means "stored already" (see `_ours`).
            refused = [e for e in exc.details.get("writeErrors", []) if not self._ours(e)]
            if refused or exc.details.get("writeConcernErrors"):
                raise self._fail("insert", exc) from exc
            inserted: int = exc.details.get("nInserted", 0)
            return inserted
        except PyMongoError as exc:
            raise self._fail("insert", exc) from exc

    async def upsert_many(self, items: Sequence[tuple[Key, Mapping[str, Any]]]) -> BulkCounts:
        """Last-writer-wins upserts of many keys in one bulk round trip; a row equal to the stored one keeps its
        `updatedDate` (the server skips the write). Used by the dump import, which sends only the rows that differ
        from what is stored; windows go through `write_window`, which sends none of the unchanged ones."""
        now = datetime.now(timezone.utc)
        ops = []
        for key, fields in items:
            flt = self._checked(key, fields)
            if self.digests and type(fields.get("payload")) is dict:
                ops.append(UpdateOne(flt, _set_digested(fields, digest(encoded_row(fields["payload"])), now),
                                     upsert=True))
            else:
                ops.append(UpdateOne(flt, _set_if_changed(fields, now), upsert=True))
        # Ordered, so that a key repeated within one call ends with its last row.
        return await self._bulk(ops, ordered=True)

    async def write_window(self, rows: Sequence[WindowRow], known: Mapping[str, bytes] | None = None) -> BulkCounts:
        """Last writer wins for every row of a re-sent window, sending only rows whose digest differs from the
        stored one.

        `known` is what the caller last wrote, row id → digest. A row whose digest differs from it (or a row it
        does not know) changed since: it is written unconditionally. The others are believed unchanged, but
        another writer may have changed them since: their stored digests are read (ids and digests only) while
        the changed rows are written, and any that differ are written after. With nothing known, the digests of
        every row are read first. So an unchanged window costs one read and no write, and a writer's rows always
        end up stored whoever wrote in between: a row is only ever skipped when the stored bytes are its own.
        """
        if not rows:
            return BulkCounts()
        now = datetime.now(timezone.utc)
        if known:
            changed = [r for r in rows if known.get(r.row_id) != r.digest]
            unchanged = [r for r in rows if known.get(r.row_id) == r.digest]
        else:
            changed, unchanged = [], list(rows)
        written = BulkCounts()
        if unchanged and changed:
            async with asyncio.TaskGroup() as group:
                stored_task = group.create_task(self._stored_digests(unchanged))
                written_task = group.create_task(self._write_rows(changed, now))
            stored, written = stored_task.result(), written_task.result()
        elif unchanged:
            stored = await self._stored_digests(unchanged)
        else:
            stored, written = {}, await self._write_rows(changed, now)
        differ = [r for r in unchanged if stored.get(r.row_id) != r.digest]
        if differ:
            written += await self._write_rows(differ, now)
        skipped = len(unchanged) - len(differ)
        return written + BulkCounts(0, skipped, 0)

    async def _stored_digests(self, rows: Sequence[WindowRow]) -> dict[str, bytes | None]:
        """row id → stored digest, for the rows given (their key prefix is shared: one query on the unique index)."""
        *prefix, last = self.key_fields
        found = await self.stored_among({f: rows[0].key[f] for f in prefix}, last, [r.row_id for r in rows], DIGEST)
        return {doc[last]: doc.get(DIGEST) for doc in found}

    async def _write_rows(self, rows: Sequence[WindowRow], now: datetime) -> BulkCounts:
        ops = [UpdateOne(r.key, _set_digested_raw(r, now), upsert=True) for r in rows]
        return await self._bulk(ops, ordered=False)

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
                # Every op is an idempotent upsert, so a batch that lost a duplicate-key race on our key can be
                # replayed whole; any other refusal is final.
                errors = exc.details.get("writeErrors", [])
                if not errors or not all(self._ours(e) for e in errors) or attempt == ATTEMPTS:
                    raise self._fail("bulk write", exc) from exc
            except PyMongoError as exc:
                raise self._fail("bulk write", exc) from exc
        raise AssertionError("unreachable")


_ID_ONLY = {"_id": 1}


class WindowRow(NamedTuple):
    """One row of a window write, checked and encoded: its full key, its id, its BSON and the BSON's digest. A
    tuple: a window builds thousands of them per call, and a frozen dataclass costs several times more to build."""

    key: dict[str, Any]
    row_id: str
    encoded: bytes
    digest: bytes


def _set_digested(fields: Mapping[str, Any], row_digest: bytes, now: datetime) -> list[dict[str, Any]]:
    """Last writer wins with the row's digest; a row whose stored digest is the same keeps its `updatedDate`."""
    same = {"$eq": [f"${DIGEST}", {"$literal": row_digest}]}
    return [{"$set": {**_literal(fields), DIGEST: {"$literal": row_digest},
                      "updatedDate": {"$cond": [same, "$updatedDate", now]},
                      "createDate": {"$ifNull": ["$createDate", now]}}}]


def _set_digested_raw(row: WindowRow, now: datetime) -> list[dict[str, Any]]:
    """A changed window row: its payload as the bytes already encoded for its digest, sent once."""
    return [{"$set": {"payload": {"$literal": RawBSONDocument(row.encoded)}, DIGEST: {"$literal": row.digest},
                      "updatedDate": now, "createDate": {"$ifNull": ["$createDate", now]}}}]
