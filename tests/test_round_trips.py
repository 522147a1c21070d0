"""What each call sends, counted against the real servers (no timing): one MongoDB command per keyed call once this
process knows the key's `_id` (and one Redis round trip, HSET and EXPIRE, the first time), whatever the Redis; nothing sent again for an unchanged window; one insert of one document for a Log window
with one new entry; lists in few batches; and last writer wins between two writers who each skip what they believe
unchanged."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bson
import pytest
from aredis_om.model import model as redis_om_model
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from backtest_store import Store
from backtest_store.counting import RedisCommandCounter
from backtest_store.demo import run_demo
from backtest_store.embedded import EmbeddedServer, valkey_binary
from backtest_store.models import SignalItem
from backtest_store.repositories.repository import BULK_CHUNK
from tests.conftest import OpenStore
from tests.zoo import start_server

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)
T0_MS = 1_704_067_200_000


def mongo(store: Store) -> Counter[str]:
    return store.mongo_commands.counts.copy()


def redis(store: Store) -> Counter[str]:
    return store.redis_commands.counts.copy()


class Sent:
    """The MongoDB commands a store sends, as documents (on top of its counts)."""

    def __init__(self, store: Store) -> None:
        self.commands: list[dict[str, Any]] = []
        counter = store.mongo_commands

        def started(event: Any) -> None:
            counter.counts[event.command_name] += 1
            self.commands.append(event.command)

        counter.started = started  # type: ignore[method-assign]

    def clear(self) -> None:
        self.commands.clear()

    def names(self) -> list[str]:
        return [next(iter(c)) for c in self.commands]

    def carries(self, text: str) -> bool:
        """Whether any command sent holds `text` anywhere (a payload's value)."""
        return any(text.encode() in bson.encode(c) for c in self.commands)


@pytest.fixture
async def own_valkey(tmp_path: Path):
    """A valkey 9 of this test's own: nothing else talks to it, so its INFO commandstats are ours alone."""
    server = await start_server(lambda port: EmbeddedServer(
        "valkey-server", [str(valkey_binary()), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                          "--appendonly", "no", "--dir", str(tmp_path)], port, tmp_path / "valkey.log"))
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


class CommandStats:
    """The server's own count of the commands it ran (`INFO commandstats`), on a connection of its own: the
    difference between two readings, less the INFO that took the second one."""

    def __init__(self, url: str) -> None:
        self.client: Any = Redis.from_url(url, decode_responses=True)

    async def read(self) -> Counter[str]:
        stats = await self.client.info("commandstats")
        return Counter({name.removeprefix("cmdstat_").upper(): value["calls"] for name, value in stats.items()})

    async def since(self, before: Counter[str]) -> Counter[str]:
        return await self.read() - before - Counter({"INFO": 1})

    async def close(self) -> None:
        await self.client.aclose()


async def keyed_calls_send_what_this_process_does_not_know(store: Store) -> None:
    """A key's first write sends its mapping to Redis (HSET and EXPIRE, one round trip); after that, writes and
    reads of that key send nothing to Redis: its `_id` is known in this process."""
    sig = store.adapters.signal("BTCUSDT", "s", "e")
    await sig.wait_for_init(True)
    await store.adapters.signal("WARM", "s", "e").write_signal_data({"id": "warm"})  # connections open
    before_m, before_r = mongo(store), redis(store)
    await sig.write_signal_data({"id": "first"})
    assert mongo(store) - before_m == {"findAndModify": 1}
    assert redis(store) - before_r == {"HSET": 1, "EXPIRE": 1}
    for i in range(3):
        before_m, before_r = mongo(store), redis(store)
        await sig.write_signal_data({"id": i})
        assert mongo(store) - before_m == {"findAndModify": 1}
        assert redis(store) == before_r
    before_m, before_r = mongo(store), redis(store)
    assert await sig.read_signal_data() == {"id": 2}
    assert mongo(store) - before_m == {"find": 1}  # by the known _id
    assert redis(store) == before_r


async def test_keyed_calls_on_the_sessions_redis(store: Store) -> None:
    await keyed_calls_send_what_this_process_does_not_know(store)


async def test_keyed_calls_on_a_valkey_9_by_its_own_count(own_valkey: str, open_store: OpenStore) -> None:
    store = await open_store(redis_url=own_valkey)
    await keyed_calls_send_what_this_process_does_not_know(store)
    sig = store.adapters.signal("ETHUSDT", "s", "e")
    await sig.write_signal_data({"id": "warm"})
    stats = CommandStats(own_valkey)
    try:
        before = await stats.read()
        for i in range(5):
            await sig.write_signal_data({"id": i})
            assert await sig.read_signal_data() == {"id": i}
        # What the server itself counted: nothing, the key's _id is known here.
        assert await stats.since(before) == {}
        before = await stats.read()
        for i in range(3):
            await store.adapters.signal(f"NEW{i}", "s", "e").write_signal_data({"id": i})
        assert await stats.since(before) == {"HSET": 3, "EXPIRE": 3}
    finally:
        await stats.close()


async def test_a_new_mapping_is_one_round_trip_even_where_redis_om_would_send_httl(own_valkey: str,
                                                                                   open_store: OpenStore) -> None:
    """redis-om 1.2's `save()` sends `HTTL` before its `HSET` on servers reporting Redis >= 7.4 (valkey 9 has
    HTTL but reports 7.2.4: the version check is forced here). The cache writes the same hash with HSET and its
    EXPIRE, pipelined."""
    store = await open_store(redis_url=own_valkey)
    redis_om_model._HASH_FIELD_EXPIRATION_SUPPORT_CACHE[store.redis] = True
    try:
        cache = store.repository(SignalItem).cache
        assert cache is not None
        key = {"symbol": "A", "strategyName": "s", "exchangeName": "e"}
        await cache.set(key, "0123456789abcdef01234560")  # connections open
        before = redis(store)
        await cache.model(pk="redis-om", doc_id="0123456789abcdef01234567").save()
        assert redis(store) - before == {"HTTL": 1, "HSET": 1}  # what the cache does not do
        before = redis(store)
        await cache.set(key, "0123456789abcdef01234567")
        assert redis(store) - before == {"HSET": 1, "EXPIRE": 1}
        before = redis(store)
        await cache.set(key, "0123456789abcdef01234567")  # known here: nothing sent
        assert redis(store) == before
        # The same layout as redis-om's: a hash with `pk` and `doc_id`, under the model's key.
        ours = await store.redis.hgetall(cache.model.make_primary_key(cache.pk(key)))
        theirs = await store.redis.hgetall(cache.model.make_primary_key("redis-om"))
        assert set(ours) == set(theirs) == {"pk", "doc_id"}
        assert ours["doc_id"] == theirs["doc_id"] and ours["pk"] == cache.pk(key)
        assert (await cache.model.get(cache.pk(key))).doc_id == "0123456789abcdef01234567"  # redis-om reads it
    finally:
        redis_om_model._HASH_FIELD_EXPIRATION_SUPPORT_CACHE.pop(store.redis, None)


async def test_a_key_known_only_to_redis_is_one_hgetall_then_nothing(open_store: OpenStore) -> None:
    """Another process (a Store of its own) wrote the key: the first read here asks Redis once, then reads by `_id`;
    every later read is one MongoDB read and no Redis command."""
    writer = await open_store()
    await writer.adapters.signal("SHARED", "s", "e").write_signal_data({"v": 1})
    reader = await open_store(flush_cache_on_open=False)
    sig = reader.adapters.signal("SHARED", "s", "e")
    await reader.adapters.signal("WARM", "s", "e").read_signal_data()  # connections open
    before_m, before_r = mongo(reader), redis(reader)
    assert await sig.read_signal_data() == {"v": 1}
    assert mongo(reader) - before_m == {"find": 1} and redis(reader) - before_r == {"HGETALL": 1}
    for _ in range(3):
        before_m, before_r = mongo(reader), redis(reader)
        assert await sig.read_signal_data() == {"v": 1}
        assert mongo(reader) - before_m == {"find": 1} and redis(reader) == before_r


def storage_rows(n: int, marker: str = "unchanged-marker") -> list[dict[str, Any]]:
    return [{"id": f"r{i:03d}", "priority": i, "status": "opened", "note": f"{marker} {i}",
             "pnl": {"pnlPercentage": 0.1 * i, "priceOpen": 100.0 + i}} for i in range(n)]


# The framework's windows (50 Storage rows, 500 notifications), and one beyond BULK_CHUNK: its digests are read
# BULK_CHUNK ids per round trip.
@pytest.mark.parametrize("kind,size", [("storage", 50), ("notification", 500), ("storage", 1500)])
async def test_unchanged_window_sends_no_payload_and_writes_nothing(store: Store, kind: str, size: int) -> None:
    sent = Sent(store)
    adapter = getattr(store.adapters, kind)(True)
    write = getattr(adapter, f"write_{kind}_data")
    window = storage_rows(size)
    await write(window)
    stored = {d["payload"]["id"]: d["updatedDate"] async for d in store.database[f"{kind}-items"].find({})}
    for fresh in (False, True):  # the adapter that wrote it, and one that knows nothing (another process)
        if fresh:
            adapter = getattr(store.adapters, kind)(True)
            write = getattr(adapter, f"write_{kind}_data")
        sent.clear()
        before_r = redis(store)
        await write([dict(row) for row in window])  # equal rows, other objects
        assert sent.names() == ["find"] * -(-size // BULK_CHUNK), sent.names()  # the stored digests, no write
        assert not sent.carries("unchanged-marker")  # no payload went out
        assert redis(store) == before_r
    again = {d["payload"]["id"]: d["updatedDate"] async for d in store.database[f"{kind}-items"].find({})}
    assert again == stored  # nothing rewritten, not even a timestamp

    # One row changed: that row is written, and only that row's payload is sent.
    sent.clear()
    changed = [dict(row) for row in window]
    changed[7] = {**changed[7], "status": "closed", "note": "changed-marker"}
    await write(changed)
    updates = [c for c in sent.commands if "update" in c]
    assert len(updates) == 1 and len(updates[0]["updates"]) == 1
    assert sent.carries("changed-marker") and not sent.carries("unchanged-marker")
    rows = {r["id"]: r for r in await getattr(adapter, f"read_{kind}_data")()}
    assert rows["r007"]["status"] == "closed" and len(rows) == size


async def test_log_window_with_one_new_entry_inserts_that_entry_only(store: Store) -> None:
    sent = Sent(store)
    log = store.adapters.log()
    window = [{"id": f"l{i:04d}", "priority": i, "topic": "old-entry"} for i in range(1000)]
    assert await log.write_log_data(window) == 1000
    for i in range(1000, 1003):
        window = window[1:] + [{"id": f"l{i:04d}", "priority": i, "topic": "new-entry"}]
        sent.clear()
        assert await log.write_log_data(window) == 1
        assert sent.names() == ["insert"]
        (insert,) = sent.commands
        assert [d["entryId"] for d in insert["documents"]] == [f"l{i:04d}"]
        assert not sent.carries("old-entry")
    # A new adapter (a restart) looks the ids up first, then inserts what is missing.
    sent.clear()
    window = window[1:] + [{"id": "l9999", "priority": 9999, "topic": "new-entry"}]
    assert await store.adapters.log().write_log_data(window) == 1
    assert sent.names() == ["find", "insert"] and not sent.carries("old-entry")
    assert len(await log.read_log_data()) == 1004


async def test_ten_thousand_list_entries_are_one_round_trip(store: Store) -> None:
    docs = [{"bucket": "big_15m_0", "entryKey": f"k{i:05d}", "payload": {"id": f"k{i:05d}", "data": i, "removed": False},
             "removed": False, "when": T0_MS} for i in range(10_000)]
    await store.database["measure-items"].insert_many(docs)
    before = mongo(store)
    keys = [k async for k in store.adapters.measure("big_15m_0").list_measure_data()]
    assert len(keys) == 10_000 and keys[0] == "k00000"
    assert mongo(store) - before == {"find": 1}  # not 1 find + 10 getMore
    before = mongo(store)
    entries = [e async for e in store.adapters.memory("sig", "b").list_memory_data()]
    assert entries == [] and mongo(store) - before == {"find": 1}


async def test_candle_writes_send_only_unknown_candles(store: Store) -> None:
    sent = Sent(store)
    rows = [{"timestamp": T0_MS + i * 60_000, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0}
            for i in range(1000)]
    writer = store.adapters.candle("BTCUSDT", "1m", "x")
    sent.clear()
    assert await writer.write_candles_data(rows) == 1000
    assert sent.names() == ["find", "insert"]  # a new adapter asks which exist first
    sent.clear()
    assert await writer.write_candles_data(rows) == 0
    assert sent.names() == []  # it knows them: nothing sent
    sent.clear()
    assert await store.adapters.candle("BTCUSDT", "1m", "x").write_candles_data(rows) == 0
    assert sent.names() == ["find"]  # another adapter: one small read, no write
    reader = store.adapters.candle("BTCUSDT", "1m", "x")
    assert len(await reader.read_candles_data(1000, T0_MS, 0) or []) == 1000
    sent.clear()
    more = rows[500:] + [{**rows[-1], "timestamp": T0_MS + (1000 + i) * 60_000} for i in range(10)]
    assert await reader.write_candles_data(more) == 10  # the 500 it read are skipped, 10 inserted at once
    assert sent.names() == ["insert"] and len(sent.commands[0]["documents"]) == 10
    # Candles deleted behind its back: the read misses, the range is forgotten, the refetch is written again.
    await store.database["candle-items"].delete_many({"timestamp": {"$gte": T0_MS + 100 * 60_000,
                                                                   "$lt": T0_MS + 110 * 60_000}})
    assert await reader.read_candles_data(1000, T0_MS, 0) is None
    assert await reader.write_candles_data(rows[100:110]) == 10
    assert len(await reader.read_candles_data(1010, T0_MS, 0) or []) == 1010


async def test_window_rows_last_writer_wins_between_two_writers(open_store: OpenStore) -> None:
    """Two stores (two processes' worth of adapters, each remembering what it wrote): a row one of them believes
    unchanged is checked against the stored digest, so its write lands even when the other wrote in between."""
    a_store, b_store = await open_store(), await open_store()
    a, b = a_store.adapters.storage(False), b_store.adapters.storage(False)
    mine = [{"id": f"r{i}", "who": "a", "priority": i} for i in range(20)]
    theirs = [{"id": f"r{i}", "who": "b", "priority": i} for i in range(20)]

    async def stored() -> dict[str, str]:
        return {r["id"]: r["who"] for r in await a.read_storage_data()}

    await a.write_storage_data(mine)
    await b.write_storage_data(theirs)
    assert set((await stored()).values()) == {"b"}
    await a.write_storage_data(mine)  # unchanged for a, but b wrote since: a's rows go back
    assert set((await stored()).values()) == {"a"}
    await b.write_storage_data(theirs[:5] + mine[5:])  # b takes five rows back
    await a.write_storage_data(mine)
    assert set((await stored()).values()) == {"a"}

    # Racing: each writes its own window again and again, concurrently; then each writes once more, in turn. The
    # last one to write owns every row, whatever happened before.
    async def hammer(adapter: Any, rows: list[dict[str, Any]], rounds: int) -> None:
        for i in range(rounds):
            await adapter.write_storage_data([{**r, "round": i % 3} for r in rows])

    await asyncio.gather(hammer(a, mine, 15), hammer(b, theirs, 15))
    await a.write_storage_data([{**r, "round": 14 % 3} for r in mine])
    await b.write_storage_data([{**r, "round": 14 % 3} for r in theirs])
    assert set((await stored()).values()) == {"b"}
    await a.write_storage_data([{**r, "round": 14 % 3} for r in mine])
    assert set((await stored()).values()) == {"a"}


async def test_counting_is_off_unless_asked(servers: Any) -> None:
    store = await Store.open(mongo_url=servers.mongo_db("counting_off"), redis_url=servers.redis,
                             cache_prefix="counting_off", flush_cache_on_open=False)
    try:
        assert store.mongo.options.event_listeners == []  # no PyMongo command events at all
        assert not store.redis_commands.attached
        await store.wait_ready()
        await store.adapters.signal("B", "s", "e").read_signal_data()
        assert store.stats()["mongo_commands"] == {} and store.stats()["redis_commands"] == {}
    finally:
        await store.close()


async def test_demo_reports_the_redis_commands_the_server_received(own_valkey: str, open_store: OpenStore) -> None:
    store = await open_store(redis_url=own_valkey)
    await store.wait_ready()
    stats = CommandStats(own_valkey)
    try:
        before = await stats.read()
        summary = await run_demo(store, symbols=1, minutes=120, seed=5, mode="live")
        received = await stats.since(before)
    finally:
        await stats.close()
    assert summary["redis_commands"] == sum(received.values()) > 0
    # The server's names for them: HGETALL, HSET, and redis-py's own on any connection it opened meanwhile.
    ours = Counter({name.replace(" ", "|"): n for name, n in summary["redis_command_names"].items()})
    assert ours == received, (ours, received)


async def test_a_counter_counts_pipelines_command_by_command(servers: Any) -> None:
    client: Any = Redis.from_url(servers.redis, decode_responses=True)
    counter = RedisCommandCounter()
    assert counter.attach(client)
    try:
        await client.ping()
        before = counter.counts.copy()
        async with client.pipeline(transaction=False) as pipe:
            pipe.set("bts-count-a", "1").get("bts-count-a").delete("bts-count-a")
            await pipe.execute()
        assert counter.counts - before == {"SET": 1, "GET": 1, "DEL": 1}
    finally:
        await client.aclose()
    assert not RedisCommandCounter().attach(AsyncMongoClient)  # nothing to hook: counts nothing, says so


async def test_a_keyed_write_encodes_its_payload_once_and_the_driver_embeds_those_bytes(store: Store,
                                                                                        monkeypatch) -> None:
    """The repository encodes the update's stage once (the size check reads those bytes) and hands PyMongo a
    `RawBSONDocument`, which PyMongo copies as it is: a document that refuses to be iterated or read by key shows
    the driver never decodes or re-encodes it."""
    from bson.raw_bson import RawBSONDocument

    import backtest_store.repositories.repository as repository

    class Untouchable(RawBSONDocument):
        def __iter__(self):  # type: ignore[no-untyped-def]
            raise AssertionError("the driver iterated the encoded stage")

        def items(self):  # type: ignore[no-untyped-def]
            raise AssertionError("the driver re-encoded the encoded stage")

        def __getitem__(self, item):  # type: ignore[no-untyped-def]
            raise AssertionError("the driver read the encoded stage")

    encoded: list[int] = []
    real_encode = repository.bson.encode

    def counting_encode(document: Any, *args: Any, **kwargs: Any) -> bytes:
        out = real_encode(document, *args, **kwargs)
        encoded.append(len(out))
        return out

    positions = [[f"p{i}", {"symbol": f"S{i}", "priceOpen": 100.0 + i, "note": "x" * 50}] for i in range(2000)]
    payload_bytes = len(bson.encode({"positions": positions}))
    risk = store.adapters.risk("encode-once", "e")
    sent = Sent(store)
    monkeypatch.setattr(repository, "RawBSONDocument", Untouchable)
    monkeypatch.setattr(repository.bson, "encode", counting_encode)  # bson's own: anyone's encoding counts
    await risk.write_position_data(positions, NOW)
    # One encoding of the payload (besides, the small filter's), and no second one.
    assert len([n for n in encoded if n >= payload_bytes]) == 1 and all(n < 1000 for n in encoded if n < payload_bytes)
    (command,) = [c for c in sent.commands if "findAndModify" in c]
    assert type(command["update"][0]["$set"]) is Untouchable
    monkeypatch.undo()
    assert await risk.read_position_data(NOW) == positions
