"""Concurrent writers to one key: one document, no error, nothing lost."""

from __future__ import annotations

import asyncio

import bson
import pytest

from backtest_store import StorageError, Store
from backtest_store.models import SignalItem
from backtest_store.repositories import Repository
from tests.zoo import T0 as NOW


async def test_fifty_writers_one_key(store: Store) -> None:
    adapters = [store.adapters.signal("BTCUSDT", "s", "e") for _ in range(50)]
    await asyncio.gather(*(a.write_signal_data({"writer": i}) for i, a in enumerate(adapters)))
    docs = await store.database["signal-items"].find({}).to_list()
    assert len(docs) == 1
    assert docs[0]["payload"]["writer"] in range(50)
    assert await adapters[0].read_signal_data() == docs[0]["payload"]


async def test_fifty_writers_soft_delete_collection(store: Store) -> None:
    async def write(i: int) -> None:
        await store.adapters.interval("bucket").write_interval_data({"id": "k", "data": i, "removed": False}, "k", NOW)

    await asyncio.gather(*(write(i) for i in range(50)))
    assert await store.database["interval-items"].count_documents({}) == 1


async def test_concurrent_row_windows(store: Store) -> None:
    window = [{"id": f"r{i}", "priority": i} for i in range(50)]
    await asyncio.gather(*(store.adapters.storage(False).write_storage_data(window) for _ in range(20)))
    await asyncio.gather(*(store.adapters.log().write_log_data(window) for _ in range(20)))
    assert await store.database["storage-items"].count_documents({}) == 50
    assert await store.database["log-items"].count_documents({}) == 50


class ForgetfulCollection:
    """A server that loses the document of a racing upsert (seen once from SecantusDB under load)."""

    name = "signal-items"

    def __init__(self, losses: int) -> None:
        self.losses, self.calls = losses, 0

    async def find_one_and_update(self, flt, update, **options):
        self.calls += 1
        if self.calls <= self.losses:
            return None
        # The update is a pipeline whose values are `$literal`s (its stage encoded once, as a RawBSONDocument).
        stage = update[0]["$set"]
        stage = bson.decode(stage.raw) if hasattr(stage, "raw") else stage
        fields = {k: v["$literal"] for k, v in stage.items() if isinstance(v, dict) and "$literal" in v}
        return {"_id": "x", **flt, **fields}


async def test_upsert_that_returns_nothing_is_retried_then_raised() -> None:
    key = {"symbol": "B", "strategyName": "s", "exchangeName": "e"}
    flaky = ForgetfulCollection(losses=1)
    doc = await Repository(SignalItem, flaky, None).upsert(key, {"payload": 1})  # type: ignore[arg-type]
    assert doc["payload"] == 1 and flaky.calls == 2
    broken = ForgetfulCollection(losses=99)
    with pytest.raises(StorageError):
        await Repository(SignalItem, broken, None).upsert(key, {"payload": 1})  # type: ignore[arg-type]
    assert broken.calls == 3
