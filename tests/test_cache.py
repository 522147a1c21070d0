"""The Redis key → `_id` cache: hits, stale entries, outages, flush at open, and keys that cannot collide."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from bson import ObjectId

from backtest_store.cache import encode_key
from backtest_store.embedded import EmbeddedServer, valkey_binary
from backtest_store.models import MemoryItem, SignalItem
from tests.zoo import T0 as NOW
from tests.zoo import OpenStore, start_server


def redis_key(store, collection: str, *parts: str) -> str:
    return f"{store.settings.cache_prefix}:{collection}:{':'.join(parts)}"


async def test_write_sets_cache_and_read_hits(store) -> None:
    sig = store.adapters.signal("BTCUSDT", "s", "e")
    await sig.write_signal_data({"id": "1"})
    doc = await store.database["signal-items"].find_one({"symbol": "BTCUSDT"})
    cached = await store.redis.hgetall(redis_key(store, "signal-items", "BTCUSDT", "s", "e"))
    assert cached["doc_id"] == str(doc["_id"])
    assert set(cached) == {"pk", "doc_id"}  # Redis holds the key and the id, never the payload
    hits = store.cache_stats.hits
    assert await sig.read_signal_data() == {"id": "1"}
    assert store.cache_stats.hits == hits + 1


async def test_stale_entry_falls_back_and_is_repaired(store) -> None:
    a = store.adapters.signal("A", "s", "e")
    b = store.adapters.signal("B", "s", "e")
    await a.write_signal_data({"who": "a"})
    await b.write_signal_data({"who": "b"})
    doc_b = await store.database["signal-items"].find_one({"symbol": "B"})
    key_a = redis_key(store, "signal-items", "A", "s", "e")
    await store.redis.hset(key_a, "doc_id", str(doc_b["_id"]))  # points at another context's document
    store.local_ids.clear()  # as a process that knows only what Redis says
    stale = store.cache_stats.stale
    assert await a.read_signal_data() == {"who": "a"}
    assert store.cache_stats.stale == stale + 1
    doc_a = await store.database["signal-items"].find_one({"symbol": "A"})
    assert await store.redis.hget(key_a, "doc_id") == str(doc_a["_id"])
    for bogus in ("not-an-object-id", str(ObjectId())):  # corrupt, and pointing at nothing
        await store.redis.hset(key_a, "doc_id", bogus)
        store.local_ids.clear()
        assert await a.read_signal_data() == {"who": "a"}


async def test_miss_backfills(store) -> None:
    sig = store.adapters.signal("BTCUSDT", "s", "e")
    await sig.write_signal_data({"id": "1"})
    await store.flush_cache()
    misses = store.cache_stats.misses
    assert await sig.read_signal_data() == {"id": "1"}
    assert store.cache_stats.misses == misses + 1
    assert await store.redis.exists(redis_key(store, "signal-items", "BTCUSDT", "s", "e")) == 1


async def test_context_parts_cannot_collide(store) -> None:
    one = store.adapters.signal("A:B", "C", "e")
    two = store.adapters.signal("A", "B:C", "e")
    await one.write_signal_data({"who": 1})
    await two.write_signal_data({"who": 2})
    assert await one.read_signal_data() == {"who": 1}
    assert await two.read_signal_data() == {"who": 2}
    keys = [k async for k in store.redis.scan_iter(match=f"{store.settings.cache_prefix}:signal-items:*")]
    assert len(keys) == 2
    fields = SignalItem.context_key()
    assert encode_key(fields, {"symbol": "A:B", "strategyName": "C", "exchangeName": "e"}) != \
        encode_key(fields, {"symbol": "A", "strategyName": "B:C", "exchangeName": "e"})
    assert encode_key(("a", "b"), {"a": "x%3Ay", "b": ""}) != encode_key(("a", "b"), {"a": "x:y", "b": ""})


async def test_keys_live_under_prefix_distinct_from_the_original(store) -> None:
    await store.adapters.measure("bucket").write_measure_data({"id": "k", "data": 1, "removed": False}, "k",
                                                              NOW)
    keys = [k async for k in store.redis.scan_iter(match=f"{store.settings.cache_prefix}:*")]
    assert keys and all(not k.startswith("measure_cache") for k in keys)


async def test_flush_at_open_deletes_only_our_prefix(open_store: OpenStore) -> None:
    first = await open_store()
    await first.adapters.signal("X", "s", "e").write_signal_data({"a": 1})
    ours = redis_key(first, "signal-items", "X", "s", "e")
    foreign = f"other-{first.settings.cache_prefix}:keep"
    await first.redis.set(foreign, "1")
    try:
        kept = await open_store(flush_cache_on_open=False)
        assert await kept.redis.exists(ours) == 1
        await open_store()  # default: flush
        assert await first.redis.exists(ours) == 0
        assert await first.redis.get(foreign) == "1"
    finally:
        await first.redis.delete(foreign)


@pytest.fixture
async def own_redis(tmp_path: Path):
    server = await start_server(lambda port: EmbeddedServer(
        "valkey-server", [str(valkey_binary()), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                          "--appendonly", "no", "--dir", str(tmp_path)], port, tmp_path / "valkey.log"))
    yield server
    server.stop()


async def test_redis_stopped_mid_test(open_store: OpenStore, own_redis: EmbeddedServer, caplog) -> None:
    store = await open_store(redis_url=f"redis://127.0.0.1:{own_redis.port}/0", cache_retry_after=0.0)
    sig = store.adapters.signal("BTCUSDT", "s", "e")
    memory = store.adapters.memory("sig", "bucket")
    when = NOW
    await sig.wait_for_init(True)
    await sig.write_signal_data({"v": 1})
    assert await sig.read_signal_data() == {"v": 1}
    assert store.cache_stats.errors == 0

    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="backtest_store.cache")
    await sig.write_signal_data({"v": 2})
    assert await sig.read_signal_data() == {"v": 2}
    await memory.write_memory_data({"data": {}, "removed": False}, "m", when)
    assert await memory.has_memory_data("m") is True
    await memory.remove_memory_data("m")
    assert await memory.read_memory_data("m") is None
    # Only what this process did not know yet needed Redis: the first write of the memory entry.
    assert store.cache_stats.errors >= 1
    assert any("Redis" in r.getMessage() and "MongoDB" in r.getMessage() for r in caplog.records)
    assert await store.database["signal-items"].count_documents({}) == 1


async def test_unreachable_redis_at_open(open_store: OpenStore, closed_port: int) -> None:
    store = await open_store(redis_url=f"redis://127.0.0.1:{closed_port}/0")  # a closed port costs no wait
    sig = store.adapters.signal("BTCUSDT", "s", "e")
    await sig.wait_for_init(True)  # MongoDB answered; the cache is merely off
    await sig.write_signal_data({"v": 1})
    assert await sig.read_signal_data() == {"v": 1}
    assert store.cache_stats.errors >= 1


# -- the first level (in this process) over Redis --------------------------------------------------------------


def counts(store):
    return store.mongo_commands.counts.copy(), store.redis_commands.counts.copy()


def since(store, before):
    mongo, redis = counts(store)
    return dict(mongo - before[0]), dict(redis - before[1])


async def test_known_id_reads_and_writes_send_no_redis_command(store) -> None:
    sig = store.adapters.signal("KNOWN", "s", "e")
    await sig.write_signal_data({"v": 1})
    before = counts(store)
    await sig.write_signal_data({"v": 2})
    assert await sig.read_signal_data() == {"v": 2}
    assert since(store, before) == ({"findAndModify": 1, "find": 1}, {})


async def test_document_recreated_by_another_store_is_found_by_key_and_repaired(open_store: OpenStore) -> None:
    """Another Store on the same database soft-deletes, then the document is deleted and written again (a new
    `_id`): this process's known `_id` is stale; the read falls back to the key once, repairs both levels, and
    the next read is by the new `_id` again."""
    mine = await open_store()
    theirs = await open_store(flush_cache_on_open=False)
    a = mine.adapters.memory("sig", "bucket")
    b = theirs.adapters.memory("sig", "bucket")
    await a.write_memory_data({"data": {"v": 1}, "removed": False}, "m", NOW)
    assert await a.read_memory_data("m") == {"data": {"v": 1}, "removed": False}
    await b.remove_memory_data("m")  # soft delete: the same document, so the same _id
    assert await a.read_memory_data("m") is None
    assert await a.has_memory_data("m") is True  # still stored, marked removed
    collection = mine.database["memory-items"]
    old = (await collection.find_one({"signalId": "sig", "memoryId": "m"}))["_id"]
    await collection.delete_one({"_id": old})
    await b.write_memory_data({"data": {"v": 2}, "removed": False}, "m", NOW)
    new = (await collection.find_one({"signalId": "sig", "memoryId": "m"}))["_id"]
    assert new != old
    stale = mine.cache_stats.stale
    before = counts(mine)
    assert await a.read_memory_data("m") == {"data": {"v": 2}, "removed": False}
    mongo, redis = since(mine, before)
    assert mongo == {"find": 2} and redis == {"HSET": 1, "EXPIRE": 1}  # by the stale _id, by key; the repair
    assert mine.cache_stats.stale == stale + 1
    cache = mine.repository(MemoryItem).cache
    key = {"signalId": "sig", "bucketName": "bucket", "memoryId": "m"}
    assert mine.local_ids.get(cache.redis_key(key)) == str(new)
    assert await mine.redis.hget(cache.redis_key(key), "doc_id") == str(new)
    before = counts(mine)
    assert await a.read_memory_data("m") == {"data": {"v": 2}, "removed": False}
    assert since(mine, before) == ({"find": 1}, {})


async def test_redis_entries_expire_and_an_expired_entry_costs_one_fallback(open_store: OpenStore) -> None:
    """Every entry written to Redis has a TTL (`cache_ttl_s`). An entry that expired or was evicted (deleted here,
    as the server would: no test waits for a clock) costs a process that does not know the key one read by key,
    and the entry is written again, with its TTL; nothing else."""
    writer = await open_store(cache_ttl_s=3600)
    await writer.adapters.signal("TTL", "s", "e").write_signal_data({"v": 1})
    cache = writer.repository(SignalItem).cache
    key = {"symbol": "TTL", "strategyName": "s", "exchangeName": "e"}
    assert 0 < await writer.redis.ttl(cache.redis_key(key)) <= 3600
    await writer.redis.delete(cache.redis_key(key))  # expired, or evicted under maxmemory
    reader = await open_store(flush_cache_on_open=False, cache_ttl_s=3600)
    sig = reader.adapters.signal("TTL", "s", "e")
    await reader.adapters.signal("WARM", "s", "e").read_signal_data()  # connections open
    misses = reader.cache_stats.misses
    before = counts(reader)
    assert await sig.read_signal_data() == {"v": 1}
    assert since(reader, before) == ({"find": 1}, {"HGETALL": 1, "HSET": 1, "EXPIRE": 1})
    assert reader.cache_stats.misses == misses + 1
    assert 0 < await reader.redis.ttl(cache.redis_key(key)) <= 3600
    before = counts(reader)
    assert await sig.read_signal_data() == {"v": 1}
    assert since(reader, before) == ({"find": 1}, {})


async def test_first_level_is_bounded(open_store: OpenStore) -> None:
    store = await open_store(cache_local_entries=3)
    for i in range(5):
        await store.adapters.signal(f"S{i}", "s", "e").write_signal_data({"v": i})
    assert len(store.local_ids) == 3
    cache = store.repository(SignalItem).cache
    assert store.local_ids.get(cache.redis_key({"symbol": "S0", "strategyName": "s", "exchangeName": "e"})) is None
    # The least recently used went first; Redis still holds it, so a read costs one HGETALL, then it is known.
    before = counts(store)
    assert await store.adapters.signal("S0", "s", "e").read_signal_data() == {"v": 0}
    assert since(store, before) == ({"find": 1}, {"HGETALL": 1})


async def test_ttl_zero_keeps_entries(open_store: OpenStore) -> None:
    store = await open_store(cache_ttl_s=0)
    await store.adapters.signal("KEEP", "s", "e").write_signal_data({"v": 1})
    cache = store.repository(SignalItem).cache
    assert await store.redis.ttl(cache.redis_key({"symbol": "KEEP", "strategyName": "s", "exchangeName": "e"})) == -1
