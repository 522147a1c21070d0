"""(d) The raw floor: PyMongo and redis-py doing the round trips backtest-store does, with nothing else.

Same documents, same Redis hashes, same algorithms (one range query per candle read; inserts of unknown candles
and log entries; window rows compared by digest; one `findAndModify` per keyed write, and an `HSET` + `EXPIRE` the
first time a key is seen; keyed reads by cached `_id`, known in-process or else asked of Redis), without input checks, error translation, timeouts, stale-entry handling or layers. What
backtest-store costs above this is what its checks and structure cost.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from ..adapters.candle import KnownRanges
from .. import validation
from ..cache.keys import encode_key
from ..repositories.repository import BULK_CHUNK, DIGEST, LIST_BATCH, digest, encoded_row
from .contracts import Factories, Shape, when_ms
from .raw import RawClients

_CANDLE = {"_id": 0, "timestamp": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1, "extra": 1,
           "keyOrder": 1}
_STEP = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
         "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "1d": 86_400_000}
_ID = {"_id": 1}


class _Mongo(Shape):
    def __init__(self, env: RawClients, contract: Any, context: dict[str, Any]) -> None:
        super().__init__(env, contract, context)
        self.raw = env
        self.coll = env.db[contract.model.collection_name()]
        self.key_fields = contract.model.context_key()


async def _insert(coll: Any, docs: list[dict[str, Any]]) -> int:
    inserted = 0
    for start in range(0, len(docs), BULK_CHUNK):
        try:
            inserted += len((await coll.insert_many(docs[start:start + BULK_CHUNK], ordered=False)).inserted_ids)
        except BulkWriteError as exc:
            inserted += exc.details.get("nInserted", 0)
    return inserted


async def _among(coll: Any, match: dict[str, Any], field: str, ids: list[str],
                 projection: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), BULK_CHUNK):
        found += await coll.find({**match, field: {"$in": ids[start:start + BULK_CHUNK]}}, projection,
                                 batch_size=LIST_BATCH).to_list()
    return found


class Candle(_Mongo):
    def __init__(self, env: RawClients, contract: Any, context: dict[str, Any]) -> None:
        super().__init__(env, contract, context)
        self.step = _STEP[context["interval"]]
        self.known = KnownRanges()

    async def read_candles(self, limit: int, since: int) -> list[dict[str, Any]] | None:
        last = since + (limit - 1) * self.step
        docs: list[dict[str, Any]] = await self.coll.find(
            {**self.context, "timestamp": {"$gte": since, "$lte": last}}, _CANDLE, batch_size=limit,
            limit=limit).to_list()
        if len(docs) != limit:
            return None
        self.known.add(since, last, self.step)
        return docs

    async def write_candles(self, candles: list[dict[str, Any]]) -> int:
        step, known = self.step, self.known
        stamps = [c["timestamp"] for c in candles]
        first, last = min(stamps), max(stamps)
        if known.covers(first, last):
            return 0
        new = {c["timestamp"]: c for c in candles if not known.covers(c["timestamp"], c["timestamp"])}
        if len(new) > 1 and not known:
            for doc in await self.coll.find({**self.context, "timestamp": {"$gte": first, "$lte": last}},
                                            {"timestamp": 1, "_id": 0}, batch_size=LIST_BATCH).to_list():
                new.pop(doc["timestamp"], None)
        now = datetime.now(timezone.utc)
        inserted = await _insert(self.coll, [{**self.context, **c, "createDate": now, "updatedDate": now}
                                             for c in new.values()])
        known.add(first, last, step)
        return inserted


TTL_S = 7 * 24 * 3600


class Record(_Mongo):
    """A read: one `find_one` by the `_id` known in this process (else one `HGET` first, or by key); a write: one
    `findAndModify`, and an `HSET` + `EXPIRE` when the key's `_id` was not known here."""

    def __init__(self, env: RawClients, contract: Any, context: dict[str, Any]) -> None:
        super().__init__(env, contract, context)
        self.field = contract.value_field
        self.projection = {self.field: 1, "removed": 1}
        self.prefix = f"{env.prefix}:{contract.model.collection_name()}:"

    def _key(self, extra: dict[str, Any]) -> dict[str, Any]:
        key = {**self.context, **extra}
        return {f: key[f] for f in self.key_fields}

    async def _find(self, key: dict[str, Any], projection: dict[str, Any]) -> dict[str, Any] | None:
        pk = encode_key(self.key_fields, key)
        doc_id = self.raw.ids.get(self.prefix + pk) or await self.raw.redis.hget(self.prefix + pk, "doc_id")
        if doc_id:
            doc: dict[str, Any] | None = await self.coll.find_one({"_id": ObjectId(doc_id)}, projection)
            if doc is not None:
                self.raw.ids[self.prefix + pk] = doc_id
                return doc
        doc = await self.coll.find_one(key, projection)
        if doc is not None:
            await self._remember(pk, doc["_id"])
        return doc

    async def _remember(self, pk: str, doc_id: Any) -> None:
        value = str(doc_id)
        if self.raw.ids.get(self.prefix + pk) == value:
            return
        self.raw.ids[self.prefix + pk] = value
        pipe = self.raw.redis.pipeline(transaction=False)
        pipe.hset(self.prefix + pk, mapping={"pk": pk, "doc_id": value})
        pipe.expire(self.prefix + pk, TTL_S)
        await pipe.execute()

    async def _upsert(self, key: dict[str, Any], fields: dict[str, Any]) -> None:
        now = datetime.now(timezone.utc)
        update = [{"$set": {**{k: {"$literal": v} for k, v in fields.items()}, "updatedDate": now,
                            "createDate": {"$ifNull": ["$createDate", now]}}}]
        doc = await self.coll.find_one_and_update(key, update, projection=_ID, upsert=True,
                                                  return_document=ReturnDocument.AFTER)
        if doc is not None:
            await self._remember(encode_key(self.key_fields, key), doc["_id"])

    async def read(self, default: Any, signal_id: str | None = None) -> Any:
        doc = await self._find(self._key({} if signal_id is None else {"signalId": signal_id}), self.projection)
        if doc is None or doc.get(self.field) is None:
            return default
        return doc[self.field]

    async def write(self, value: Any, when: datetime | None, signal_id: str | None = None) -> None:
        fields: dict[str, Any] = {self.field: value}
        if when is not None:
            fields["when"] = when_ms(when)
        await self._upsert(self._key({} if signal_id is None else {"signalId": signal_id}), fields)


class Entries(Record):
    def _entry(self, key: str) -> dict[str, Any]:
        return self._key({self.contract.entry_field: key})

    async def read_entry(self, key: str) -> Any:
        doc = await self._find(self._entry(key), self.projection)
        return None if doc is None or doc.get("removed") else doc.get("payload")

    async def has_entry(self, key: str) -> bool:
        return await self._find(self._entry(key), _ID) is not None

    async def write_entry(self, data: Any, key: str, when: datetime) -> None:
        await self._upsert(self._entry(key), {"payload": data, "removed": validation.js_truthy(data.get("removed")),
                                              "when": when_ms(when)})

    async def remove_entry(self, key: str) -> None:
        now = datetime.now(timezone.utc)
        payload = {"$cond": [{"$eq": [{"$type": "$payload"}, "object"]},
                             {"$mergeObjects": ["$payload", {"removed": True}]}, "$payload"]}
        doc = await self.coll.find_one_and_update(
            self._entry(key), [{"$set": {"removed": True, "payload": payload, "updatedDate": now}}],
            projection=_ID, return_document=ReturnDocument.AFTER)
        if doc is not None:
            await self._remember(encode_key(self.key_fields, self._entry(key)), doc["_id"])

    async def keys(self) -> Any:
        field = self.contract.entry_field
        async for doc in self.coll.find({**self.context, "removed": {"$ne": True}}, {field: 1, "_id": 0},
                                        batch_size=LIST_BATCH):
            yield doc[field]

    async def entries(self) -> Any:
        field = self.contract.entry_field
        async for doc in self.coll.find({**self.context, "removed": {"$ne": True}},
                                        {field: 1, "payload": 1, "_id": 0}, batch_size=LIST_BATCH):
            yield doc[field], doc.get("payload")


class Rows(_Mongo):
    def __init__(self, env: RawClients, contract: Any, context: dict[str, Any]) -> None:
        super().__init__(env, contract, context)
        self.written: dict[str, bytes] = {}
        self.stored: frozenset[str] = frozenset()

    async def read_rows(self) -> list[Any]:
        return [doc["payload"] async for doc in self.coll.find(self.context, {"payload": 1, "_id": 0},
                                                                batch_size=LIST_BATCH)]

    async def write_rows(self, rows: list[dict[str, Any]]) -> int:
        return await (self._append(rows) if self.contract.append_only else self._window(rows))

    async def _append(self, rows: list[dict[str, Any]]) -> int:
        field, stored = self.contract.entry_field, self.stored
        new = {row["id"]: row for row in rows if row["id"] not in stored}
        if len(new) > 1 and not stored:
            for doc in await _among(self.coll, {}, field, list(new), {field: 1, "_id": 0}):
                new.pop(doc[field], None)
        now = datetime.now(timezone.utc)
        inserted = await _insert(self.coll, [{**self.context, field: row_id, "payload": row, "createDate": now,
                                              "updatedDate": now} for row_id, row in new.items()])
        self.stored = frozenset(row["id"] for row in rows)
        return inserted

    async def _window(self, rows: list[dict[str, Any]]) -> int:
        field, known = self.contract.entry_field, self.written
        window = {}
        for row in rows:
            encoded = encoded_row(row)
            window[row["id"]] = (encoded, digest(encoded))
        changed = [i for i, (_, d) in window.items() if known.get(i) != d]
        unchanged = [i for i, (_, d) in window.items() if known.get(i) == d] if known else list(window)
        if not known:
            changed = []
        now = datetime.now(timezone.utc)

        async def stored() -> dict[str, Any]:
            if not unchanged:
                return {}
            docs = await _among(self.coll, self.context, field, unchanged, {field: 1, DIGEST: 1, "_id": 0})
            return {doc[field]: doc.get(DIGEST) for doc in docs}

        async def write(ids: list[str]) -> None:
            for start in range(0, len(ids), BULK_CHUNK):
                await self.coll.bulk_write([UpdateOne(
                    {**self.context, field: i},
                    [{"$set": {"payload": {"$literal": RawBSONDocument(window[i][0])},
                               DIGEST: {"$literal": window[i][1]}, "updatedDate": now,
                               "createDate": {"$ifNull": ["$createDate", now]}}}], upsert=True)
                    for i in ids[start:start + BULK_CHUNK]], ordered=False)

        found, _ = await asyncio.gather(stored(), write(changed))
        await write([i for i in unchanged if found.get(i) != window[i][1]])
        self.written = {i: d for i, (_, d) in window.items()}
        return len(window)


def factories(env: RawClients) -> Factories:
    return Factories(env, {"candle": Candle, "record": Record, "levels": Record, "rows": Rows, "entries": Entries})
