"""(f) The minimal client: what a user would write instead of backtest-store, with plain PyMongo async and no Redis.

A keyed read is one `find_one` by the unique key; a keyed write one `findAndModify` by the unique key (upsert, the
same document as backtest-store's); a removal one `findAndModify`. Candles and rows are the raw floor's (d), which
uses no Redis for them either. No input checks, no error translation, no cache.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pymongo import ReturnDocument

from . import floor
from .contracts import Factories
from .raw import RawClients

_ID = {"_id": 1}


class Record(floor.Record):
    async def _find(self, key: dict[str, Any], projection: dict[str, Any]) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.coll.find_one(key, projection)
        return doc

    async def _upsert(self, key: dict[str, Any], fields: dict[str, Any]) -> None:
        now = datetime.now(timezone.utc)
        update = [{"$set": {**{k: {"$literal": v} for k, v in fields.items()}, "updatedDate": now,
                            "createDate": {"$ifNull": ["$createDate", now]}}}]
        await self.coll.find_one_and_update(key, update, projection=_ID, upsert=True,
                                            return_document=ReturnDocument.AFTER)


class Entries(Record, floor.Entries):
    async def remove_entry(self, key: str) -> None:
        now = datetime.now(timezone.utc)
        payload = {"$cond": [{"$eq": [{"$type": "$payload"}, "object"]},
                             {"$mergeObjects": ["$payload", {"removed": True}]}, "$payload"]}
        await self.coll.find_one_and_update(
            self._entry(key), [{"$set": {"removed": True, "payload": payload, "updatedDate": now}}],
            projection=_ID, return_document=ReturnDocument.AFTER)


def factories(env: RawClients) -> Factories:
    return Factories(env, {"candle": floor.Candle, "record": Record, "levels": Record, "rows": floor.Rows,
                           "entries": Entries})
