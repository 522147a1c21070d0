"""(c) The TypeScript original's access pattern (`theonetrade/backtest-kit-redis-mongo-docker`), reproduced for the
benchmark only, on the same documents (see `/work/shared/spec/persist-contract.md` §7):

- a keyed read is `GET <key>` then `findOne({_id})`; on a miss `findOne(filter)` then `SET <key> <_id>`;
- a keyed write is `findOneAndUpdate(filter, {$set}, upsert, new)` returning the whole document, then `SET`;
- a candle read is that keyed read once per candle, in sequence; a candle write is one `findOneAndUpdate`
  (`$setOnInsert`) and one `SET` per candle;
- Storage and Notification windows, and Log windows (every entry, existing or not), are one `findOneAndUpdate`
  and one `SET` per row, in sequence;
- lists are one `find` capped at 1,000 documents, newest `updatedDate` first (@backtest-kit/mongo's sort; the
  original sorts by a field that does not exist), Notification and Log reads at 200, newest `createDate` first.

Its documents are ours (`$set` of the payload instead of `$literal` values, which the benchmark's payloads do not
need); its Redis keys are plain strings under `<prefix>:<collection>:<parts>`, never expiring.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument

from .. import validation
from ..cache.keys import encode_key
from .contracts import Factories, Shape, when_ms
from .raw import RawClients

_STEP = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
         "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "1d": 86_400_000}
LIST_LIMIT = 1000
ROWS_LIMIT = 200
OHLCV = ("timestamp", "open", "high", "low", "close", "volume")


class _Base(Shape):
    def __init__(self, env: RawClients, contract: Any, context: dict[str, Any]) -> None:
        super().__init__(env, contract, context)
        self.raw = env
        self.coll = env.db[contract.model.collection_name()]
        self.key_fields = contract.model.context_key()
        self.prefix = f"{env.prefix}:{contract.model.collection_name()}:"

    def _key(self, extra: dict[str, Any]) -> dict[str, Any]:
        key = {**self.context, **extra}
        return {f: key[f] for f in self.key_fields}

    async def _find(self, key: dict[str, Any]) -> dict[str, Any] | None:
        redis_key = self.prefix + encode_key(self.key_fields, key)
        doc_id = await self.raw.redis.get(redis_key)
        doc: dict[str, Any] | None = None
        if doc_id:
            doc = await self.coll.find_one({"_id": ObjectId(doc_id)})
        if doc is None:
            doc = await self.coll.find_one(key)
            if doc is not None:
                await self.raw.redis.set(redis_key, str(doc["_id"]))
        return doc

    async def _upsert(self, key: dict[str, Any], update: dict[str, Any]) -> dict[str, Any] | None:
        now = datetime.now(timezone.utc)
        update = {**update, "$setOnInsert": {**update.get("$setOnInsert", {}), "createDate": now}}
        update["$set"] = {**update.get("$set", {}), "updatedDate": now}
        doc: dict[str, Any] | None = await self.coll.find_one_and_update(
            key, update, upsert=True, return_document=ReturnDocument.AFTER)
        if doc is not None:
            await self.raw.redis.set(self.prefix + encode_key(self.key_fields, key), str(doc["_id"]))
        return doc


class Candle(_Base):
    async def read_candles(self, limit: int, since: int) -> list[dict[str, Any]] | None:
        step, out = _STEP[self.context["interval"]], []
        for i in range(limit):
            doc = await self._find(self._key({"timestamp": since + i * step}))
            if doc is None:
                return None
            out.append({f: doc[f] for f in OHLCV})
        return out

    async def write_candles(self, candles: list[dict[str, Any]]) -> int:
        for candle in candles:
            values = {k: v for k, v in candle.items() if k != "timestamp"}
            await self._upsert(self._key({"timestamp": candle["timestamp"]}), {"$setOnInsert": values})
        return len(candles)


class Record(_Base):
    async def read(self, default: Any, signal_id: str | None = None) -> Any:
        doc = await self._find(self._key({} if signal_id is None else {"signalId": signal_id}))
        field = self.contract.value_field
        if doc is None or doc.get(field) is None:
            return default
        return doc[field]

    async def write(self, value: Any, when: datetime | None, signal_id: str | None = None) -> None:
        fields: dict[str, Any] = {self.contract.value_field: value}
        if when is not None:
            fields["when"] = when_ms(when)
        await self._upsert(self._key({} if signal_id is None else {"signalId": signal_id}), {"$set": fields})


class Entries(_Base):
    def _entry(self, key: str) -> dict[str, Any]:
        return self._key({self.contract.entry_field: key})

    async def read_entry(self, key: str) -> Any:
        doc = await self._find(self._entry(key))
        return None if doc is None or doc.get("removed") else doc.get("payload")

    async def has_entry(self, key: str) -> bool:
        return await self._find(self._entry(key)) is not None

    async def write_entry(self, data: Any, key: str, when: datetime) -> None:
        await self._upsert(self._entry(key), {"$set": {"payload": data, "removed": validation.js_truthy(data.get("removed")),
                                                       "when": when_ms(when)}})

    async def remove_entry(self, key: str) -> None:
        entry = self._entry(key)
        doc = await self.coll.find_one_and_update(
            entry, {"$set": {"removed": True, "payload.removed": True, "updatedDate": datetime.now(timezone.utc)}},
            return_document=ReturnDocument.AFTER)
        if doc is not None:
            await self.raw.redis.set(self.prefix + encode_key(self.key_fields, entry), str(doc["_id"]))

    def _listed(self) -> Any:
        return self.coll.find({**self.context, "removed": {"$ne": True}}).sort("updatedDate", DESCENDING).limit(
            LIST_LIMIT)

    async def keys(self) -> Any:
        async for doc in self._listed():
            yield doc[self.contract.entry_field]

    async def entries(self) -> Any:
        async for doc in self._listed():
            yield doc[self.contract.entry_field], doc.get("payload")


class Rows(_Base):
    async def read_rows(self) -> list[Any]:
        if self.contract.name == "storage":
            cursor = self.coll.find(self.context).sort("updatedDate", DESCENDING).limit(LIST_LIMIT)
            return [doc["payload"] async for doc in cursor]
        cursor = self.coll.find(self.context).sort("createDate", DESCENDING).limit(ROWS_LIMIT)
        return list(reversed([doc["payload"] async for doc in cursor]))

    async def write_rows(self, rows: list[dict[str, Any]]) -> int:
        field = self.contract.entry_field
        for row in rows:  # every row, in sequence: the Log's existing entries included
            await self._upsert(self._key({field: row["id"]}), {"$set": {"payload": row}})
        return len(rows)


def factories(env: RawClients) -> Factories:
    return Factories(env, {"candle": Candle, "record": Record, "levels": Record, "rows": Rows, "entries": Entries})
