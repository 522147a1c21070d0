"""Each contract against real servers: defaults, read-after-write, overwrite, `when` stored. The tests that go over
several contracts take them from the registry (backtest_store/contracts.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backtest_store import InvalidInput, Store
from backtest_store.contracts import BY_NAME, CONTRACTS, STRATEGY, Contract
from backtest_store.models import (
    DictionaryItem,
    MemoryItem,
    RecentItem,
    RiskItem,
    SessionItem,
    StateItem,
    StorageItem,
)
from tests.zoo import MINUTE, T0, T0_MS, candles

INF_SIGNAL = {"id": "sig-1", "position": "long", "priceOpen": 100.0, "minuteEstimatedTime": float("inf"),
              "symbol": "BTCUSDT", "strategyName": "s", "exchangeName": "e", "_entry": [{"price": 100.0, "cost": 10}]}


async def stored(store: Store, model, **key):
    return await store.database[model.collection_name()].find_one(key)


class TestCandle:
    async def test_exact_range_read_after_write(self, store: Store) -> None:
        adapter = store.adapters.candle("BTCUSDT", "1m", "binance")
        await adapter.wait_for_init(True)
        assert await adapter.read_candles_data(5, T0_MS, T0_MS + 5 * MINUTE) is None
        assert await adapter.write_candles_data(candles(T0_MS, 10)) == 10
        got = await adapter.read_candles_data(5, T0_MS + 2 * MINUTE, T0_MS + 7 * MINUTE)
        assert got == candles(T0_MS, 10)[2:7]
        assert [c["timestamp"] for c in got] == sorted(c["timestamp"] for c in got)

    async def test_gap_reads_none(self, store: Store) -> None:
        adapter = store.adapters.candle("BTCUSDT", "5m", "binance")
        rows = candles(T0_MS, 6, 5 * MINUTE)
        del rows[3]
        await adapter.write_candles_data(rows)
        assert await adapter.read_candles_data(3, T0_MS, 0) is not None
        assert await adapter.read_candles_data(6, T0_MS, 0) is None  # one missing → miss, never neighbours
        assert await adapter.read_candles_data(2, T0_MS + 15 * MINUTE, 0) is None

    async def test_first_write_wins_and_exchange_is_part_of_key(self, store: Store) -> None:
        a = store.adapters.candle("BTCUSDT", "1m", "binance")
        b = store.adapters.candle("BTCUSDT", "1m", "bybit")
        await a.write_candles_data(candles(T0_MS, 3, price=100))
        assert await a.write_candles_data(candles(T0_MS, 3, price=999)) == 0
        assert (await a.read_candles_data(3, T0_MS, 0))[0]["open"] == 100
        assert await b.read_candles_data(3, T0_MS, 0) is None
        await b.write_candles_data(candles(T0_MS, 3, price=200))
        assert (await b.read_candles_data(3, T0_MS, 0))[0]["open"] == 200
        assert (await a.read_candles_data(3, T0_MS, 0))[0]["open"] == 100

    async def test_forming_candle_is_skipped(self, store: Store) -> None:
        adapter = store.adapters.candle("ETHUSDT", "1h", "binance")
        now_ms = T0_MS + 90 * MINUTE  # half an hour into an hour: the candle of that hour is still forming
        adapter.clock = lambda: now_ms / 1000
        open_hour = now_ms - now_ms % (60 * MINUTE)
        rows = candles(open_hour - 60 * MINUTE, 2, 60 * MINUTE)  # the last one closes in the future
        assert await adapter.write_candles_data(rows) == 1
        assert await adapter.read_candles_data(1, open_hour - 60 * MINUTE, 0) == rows[:1]
        assert await adapter.read_candles_data(1, open_hour, 0) is None

    async def test_zero_limit_is_empty(self, store: Store) -> None:
        assert await store.adapters.candle("X", "1m", "e").read_candles_data(0, T0_MS, 0) == []


# A sample value for each constructor field, by document field name.
SAMPLE = {"symbol": "BTCUSDT", "strategyName": "strat", "exchangeName": "binance", "interval": "1m",
          "riskName": "main-risk", "backtest": True, "bucket": "fn_1m_0", "signalId": "sig-1",
          "bucketName": "notes", "frameName": "frame", "dictionaryName": "marks"}


async def empty_read(adapter, contract: Contract):
    """What the contract's read gives before any write, called as backtest-kit calls it."""
    read = getattr(adapter, next(n for n in vars(contract.adapter) if n.startswith("read_") and n.endswith("_data")))
    args = {"candle": (1, T0_MS, 0), "levels": ("sig-1", T0), "entries": ("key",)}.get(contract.shape, ())
    if contract.name == "risk":
        args = (T0,)
    return await read(*args)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
async def test_every_contract_reads_its_empty_value_and_writes_nothing(store: Store, contract: Contract) -> None:
    adapter = getattr(store.adapters, contract.name)(*(SAMPLE[f] for f in contract.fields))
    assert isinstance(adapter, contract.adapter)
    await adapter.wait_for_init(True)
    assert await empty_read(adapter, contract) == contract.empty
    assert await store.database[contract.model.collection_name()].count_documents({}) == 0


@pytest.mark.parametrize("kind", [c.name for c in CONTRACTS if c.shape == "record" and c.fields == STRATEGY])
async def test_single_record_signal_like(store: Store, kind: str) -> None:
    adapter = store.adapters.__getattribute__(kind)("BTC/USDT:USDT", "strat", "binance")
    read = getattr(adapter, f"read_{kind}_data")
    write = getattr(adapter, f"write_{kind}_data")
    await adapter.wait_for_init(True)
    assert await read() is None
    await write(INF_SIGNAL)
    assert await read() == INF_SIGNAL  # Infinity survives (BSON double)
    await write({**INF_SIGNAL, "priceOpen": 101.0})
    assert (await read())["priceOpen"] == 101.0
    await write(None)  # "cleared", the record still exists
    assert await read() is None
    doc = await store.database[f"{kind}-items"].find_one({"symbol": "BTC/USDT:USDT"})
    assert doc["payload"] is None and doc["strategyName"] == "strat" and doc["exchangeName"] == "binance"
    assert doc["createDate"] <= doc["updatedDate"]
    assert await store.database[f"{kind}-items"].count_documents({}) == 1


async def test_risk_positions_and_when(store: Store) -> None:
    risk = store.adapters.risk("main-risk", "binance")
    assert await risk.read_position_data(T0) == []
    rows = [["s_binance_BTCUSDT", {"symbol": "BTCUSDT", "minuteEstimatedTime": float("inf"), "openTimestamp": T0_MS}]]
    await risk.write_position_data(rows, T0)
    assert await risk.read_position_data(T0 - timedelta(days=1)) == rows  # `when` never filters a read
    doc = await stored(store, RiskItem, riskName="main-risk", exchangeName="binance")
    assert doc["positions"] == rows and doc["when"] == T0_MS and "payload" not in doc
    await risk.write_position_data([], T0)
    assert await risk.read_position_data(T0) == []


LEVELS = {"partial": {"sig-1": {"profitLevels": [10, 20], "lossLevels": []}}, "breakeven": {"sig-1": {"reached": True}}}


@pytest.mark.parametrize("kind", [c.name for c in CONTRACTS if c.shape == "levels"])
async def test_signal_levels(store: Store, kind: str) -> None:
    model, data = BY_NAME[kind].model, LEVELS[kind]
    adapter = getattr(store.adapters, kind)("BTCUSDT", "strat", "binance")
    read = getattr(adapter, f"read_{kind}_data")
    write = getattr(adapter, f"write_{kind}_data")
    assert await read("sig-1", T0) == {}
    await write(data, "sig-1", T0 + timedelta(minutes=5))
    assert await read("sig-1", T0) == data
    assert await read("sig-2", T0) == {}
    await write({}, "sig-1", T0)  # cleared on close; an older `when` still overwrites
    assert await read("sig-1", T0) == {}
    doc = await stored(store, model, symbol="BTCUSDT", strategyName="strat", exchangeName="binance", signalId="sig-1")
    assert doc["when"] == T0_MS


@pytest.mark.parametrize("kind", [c.name for c in CONTRACTS if c.shape == "rows" and not c.insert_only])
async def test_rows_upserted_by_id_per_mode(store: Store, kind: str) -> None:
    live = getattr(store.adapters, kind)(False)
    backtest = getattr(store.adapters, kind)(True)
    read, write = getattr(live, f"read_{kind}_data"), getattr(live, f"write_{kind}_data")
    assert await read() == []
    window = [{"id": f"r{i}", "priority": i, "status": "opened", "createdAt": T0_MS + i} for i in range(60)]
    await write(window)
    await write([{**window[0], "status": "closed"}, {"id": "r60", "priority": 60}])
    rows = {r["id"]: r for r in await read()}
    assert len(rows) == 61  # more than the framework's 50-row window: reads are never capped below it
    assert rows["r0"]["status"] == "closed" and rows["r1"]["status"] == "opened"
    assert await getattr(backtest, f"read_{kind}_data")() == []


async def test_log_is_append_only(store: Store) -> None:
    log = store.adapters.log()
    assert await log.read_log_data() == []
    window = [{"id": f"l{i}", "priority": i, "topic": "t", "args": [i, {"k": None}]} for i in range(1100)]
    assert await log.write_log_data(window[:1000]) == 1000
    changed = [{**e, "topic": "rewritten"} for e in window[:1000]]
    assert await log.write_log_data(changed[1:] + window[1000:]) == 100  # only the new ids are written
    entries = await log.read_log_data()
    assert len(entries) == 1100
    assert all(e["topic"] == "t" for e in entries)


@pytest.mark.parametrize("kind", [c.name for c in CONTRACTS if c.shape == "entries" and c.fields == ("bucket",)])
async def test_bucket_entries_soft_delete_and_revive(store: Store, kind: str) -> None:
    model = BY_NAME[kind].model
    adapter = getattr(store.adapters, kind)("fn_1m_0")
    other = getattr(store.adapters, kind)("fn_1m_1")
    read, write = getattr(adapter, f"read_{kind}_data"), getattr(adapter, f"write_{kind}_data")
    remove, listing = getattr(adapter, f"remove_{kind}_data"), getattr(adapter, f"list_{kind}_data")
    assert await read("BTCUSDT_1") is None
    await remove("missing")  # no-op, no upsert
    assert await store.database[model.collection_name()].count_documents({}) == 0
    for i in range(3):
        await write({"id": f"BTCUSDT_{i}", "data": {"v": i}, "removed": False}, f"BTCUSDT_{i}", T0)
    await getattr(other, f"write_{kind}_data")({"id": "x", "data": 1, "removed": False}, "x", T0)
    assert await read("BTCUSDT_1") == {"id": "BTCUSDT_1", "data": {"v": 1}, "removed": False}
    await remove("BTCUSDT_1")
    assert await read("BTCUSDT_1") is None
    assert sorted([k async for k in listing()]) == ["BTCUSDT_0", "BTCUSDT_2"]
    doc = await stored(store, model, bucket="fn_1m_0", entryKey="BTCUSDT_1")
    assert doc["removed"] is True and doc["payload"]["removed"] is True and doc["when"] == T0_MS
    await write({"id": "BTCUSDT_1", "data": {"v": 9}, "removed": False}, "BTCUSDT_1", T0)  # revive
    assert (await read("BTCUSDT_1"))["data"] == {"v": 9}
    assert sorted([k async for k in listing()]) == ["BTCUSDT_0", "BTCUSDT_1", "BTCUSDT_2"]


@pytest.mark.parametrize("removed,hidden", [
    (float("nan"), False), ([], True), ({}, True),  # where Python and JavaScript disagree: JavaScript decides
    (0, False), (-0.0, False), ("", False), (None, False), (False, False), (1, True), ("x", True), (True, True),
])
async def test_removed_is_javascript_truthiness(store: Store, removed: object, hidden: bool) -> None:
    """backtest-kit reads an entry as `data.removed ? null : data`."""
    measure, memory = store.adapters.measure("fn_1m_0"), store.adapters.memory("sig-1", "notes")
    await measure.write_measure_data({"id": "k", "data": 1, "removed": removed}, "k", T0)
    await memory.write_memory_data({"priority": 1, "data": {}, "removed": removed, "index": "", "when": 1}, "m", T0)
    assert (await measure.read_measure_data("k") is None) is hidden
    assert [k async for k in measure.list_measure_data()] == ([] if hidden else ["k"])
    assert (await memory.read_memory_data("m") is None) is hidden
    assert await memory.has_memory_data("m") is True


async def test_memory(store: Store) -> None:
    memory = store.adapters.memory("sig-1", "notes")
    entry = {"priority": 1, "data": {"text": "hello"}, "removed": False, "index": "hello", "when": T0_MS}
    assert await memory.read_memory_data("m1") is None
    assert await memory.has_memory_data("m1") is False
    await memory.write_memory_data(entry, "m1", T0)
    await memory.write_memory_data({**entry, "index": "two"}, "m2", T0)
    await store.adapters.memory("sig-2", "notes").write_memory_data(entry, "m9", T0)
    assert await memory.read_memory_data("m1") == entry
    await memory.remove_memory_data("m1")
    assert await memory.read_memory_data("m1") is None
    assert await memory.has_memory_data("m1") is True  # has ignores `removed`
    assert [pair async for pair in memory.list_memory_data()] == [("m2", {**entry, "index": "two"})]
    doc = await stored(store, MemoryItem, signalId="sig-1", bucketName="notes", memoryId="m1")
    assert doc["removed"] is True and doc["when"] == T0_MS
    memory.dispose()


async def test_recent_live_frame_is_empty_string(store: Store) -> None:
    live = store.adapters.recent("BTCUSDT", "s", "e", "", False)
    backtest = store.adapters.recent("BTCUSDT", "s", "e", "", True)
    assert await live.read_recent_data() is None
    await live.write_recent_data({**INF_SIGNAL, "timestamp": T0_MS}, T0)
    assert (await live.read_recent_data())["timestamp"] == T0_MS
    assert await backtest.read_recent_data() is None
    doc = await stored(store, RecentItem, symbol="BTCUSDT", strategyName="s", exchangeName="e", frameName="",
                       backtest=False)
    assert doc["when"] == T0_MS


async def test_state_older_when_overwrites(store: Store) -> None:
    state = store.adapters.state("sig-1", "bucket")
    assert await state.read_state_data() is None
    await state.write_state_data({"id": "sig-1_bucket", "data": {"n": 2}, "when": T0_MS + MINUTE}, T0 + timedelta(minutes=1))
    await state.write_state_data({"id": "sig-1_bucket", "data": {"n": 1}, "when": T0_MS}, T0)
    assert (await state.read_state_data())["data"] == {"n": 1}
    doc = await stored(store, StateItem, signalId="sig-1", bucketName="bucket")
    assert doc["when"] == T0_MS
    state.dispose()


def marks(signal_id: str, name: str, when_ms: int, **values: object) -> dict:
    """DictionaryData as backtest-kit 20 writes it: each key's value with the time it was set."""
    return {"id": f"{signal_id}_{name}", "data": {k: {"value": v, "when": when_ms} for k, v in values.items()},
            "when": when_ms}


async def test_dictionary_round_trip_and_older_when_overwrites(store: Store) -> None:
    book = store.adapters.dictionary("sig-1", "marks")
    await book.wait_for_init(True)
    assert await book.read_dictionary_data() is None
    later = marks("sig-1", "marks", T0_MS + MINUTE, level=2.5, note="trail", flags=[1, None, {"k": True}])
    await book.write_dictionary_data(later, T0 + timedelta(minutes=1))
    assert await book.read_dictionary_data() == later
    assert await store.adapters.dictionary("sig-1", "other").read_dictionary_data() is None
    assert await store.adapters.dictionary("sig-2", "marks").read_dictionary_data() is None
    earlier = marks("sig-1", "marks", T0_MS, level=1.0)
    await book.write_dictionary_data(earlier, T0)  # a restarted backtest resets what live wrote: last writer wins
    assert await book.read_dictionary_data() == earlier
    doc = await stored(store, DictionaryItem, signalId="sig-1", dictionaryName="marks")
    assert doc["payload"] == earlier and doc["when"] == T0_MS and doc["createDate"] <= doc["updatedDate"]
    assert await store.database["dictionary-items"].count_documents({}) == 1
    book.dispose()


@pytest.mark.parametrize("call", [
    lambda s: s.adapters.dictionary("", "marks"),
    lambda s: s.adapters.dictionary("sig-1", {"$ne": None}),
    lambda s: s.adapters.dictionary("sig-1", None),
])
def test_dictionary_bad_context(store: Store, call) -> None:
    with pytest.raises(InvalidInput):
        call(store)


@pytest.mark.parametrize("data,when", [
    (None, T0),  # the original's schema requires the payload
    ([["level", {"value": 1, "when": T0_MS}]], T0),
    ("{}", T0),
    ({"id": "x", "data": {}, "when": T0_MS}, datetime(2024, 1, 1)),  # naive `when`
    ({"id": "x", "data": {}, "when": T0_MS}, T0_MS),
    ({"id": "x", "data": {"k": {"value": {1, 2}, "when": T0_MS}}, "when": T0_MS}, T0),  # not JSON
])
async def test_dictionary_bad_input_raises_before_any_io(store: Store, data: object, when: object) -> None:
    book = store.adapters.dictionary("sig-1", "marks")
    before = sum(store.mongo_commands.counts.values())
    with pytest.raises(InvalidInput):
        await book.write_dictionary_data(data, when)
    assert sum(store.mongo_commands.counts.values()) == before
    assert await store.database["dictionary-items"].count_documents({}) == 0


async def test_session_keyed_by_symbol_and_mode(store: Store) -> None:
    a = store.adapters.session("s", "e", "frame", "BTCUSDT", True)
    b = store.adapters.session("s", "e", "frame", "ETHUSDT", True)
    c = store.adapters.session("s", "e", "frame", "BTCUSDT", False)
    await a.write_session_data({"id": "BTCUSDT:s:e:frame:backtest", "data": {"x": 1}, "when": T0_MS}, T0)
    assert (await a.read_session_data())["data"] == {"x": 1}
    assert await b.read_session_data() is None and await c.read_session_data() is None
    doc = await stored(store, SessionItem, strategyName="s", exchangeName="e", frameName="frame", symbol="BTCUSDT",
                       backtest=True)
    assert doc["when"] == T0_MS
    a.dispose()


async def test_round_trips(store: Store) -> None:
    """One MongoDB command per keyed write and per candle read, whatever the limit."""
    counts = store.mongo_commands.counts
    candle = store.adapters.candle("BTCUSDT", "1m", "binance")
    await candle.write_candles_data(candles(T0_MS, 1000))
    before = counts.copy()
    assert len(await candle.read_candles_data(1000, T0_MS, 0)) == 1000
    assert counts - before == {"find": 1}
    before = counts.copy()
    await candle.write_candles_data(candles(T0_MS + 1000 * MINUTE, 500))
    assert counts - before == {"insert": 1}  # new candles are plain inserts (first write wins on the unique key)

    sig = store.adapters.signal("BTCUSDT", "s", "e")
    before, redis_before = counts.copy(), store.cache_stats.commands
    await sig.write_signal_data({"id": 1})
    assert counts - before == {"findAndModify": 1}
    assert store.cache_stats.commands - redis_before == 2  # a new key: HSET and EXPIRE, one Redis round trip
    before, redis_before = counts.copy(), store.cache_stats.commands
    await sig.write_signal_data({"id": 2})
    assert counts - before == {"findAndModify": 1}
    assert store.cache_stats.commands == redis_before  # its _id is known in this process


async def test_resent_window_rewrites_only_changed_rows(store: Store) -> None:
    repo = store.repository(StorageItem)

    def rows(window: list[dict]) -> list:
        return [({"backtest": False, "signalId": row["id"]}, {"payload": row}) for row in window]

    window = [{"id": f"r{i}", "priority": i, "note": "$not-a-field-path"} for i in range(50)]
    first = await repo.upsert_many(rows(window))
    assert (first.inserted, first.modified) == (50, 0)
    # The first write's dates moved to a long-past instant: a rewrite stamps the wall clock's time, which is later
    # whatever the clock's resolution, with no waiting for it to tick.
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    await store.database["storage-items"].update_many({}, {"$set": {"updatedDate": long_ago, "createDate": long_ago}})
    again = await repo.upsert_many(rows([*window[:49], {**window[49], "status": "closed"}]))
    assert (again.inserted, again.matched, again.modified) == (0, 50, 1)
    doc = await store.database["storage-items"].find_one({"signalId": "r0"})
    assert doc["payload"]["note"] == "$not-a-field-path" and doc["updatedDate"] == doc["createDate"] == long_ago
    changed = await store.database["storage-items"].find_one({"signalId": "r49"})
    assert changed["payload"]["status"] == "closed" and changed["updatedDate"] > long_ago
    assert changed["createDate"] == long_ago
