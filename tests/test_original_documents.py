"""Reading what the TypeScript original (theonetrade/backtest-kit-redis-mongo-docker) wrote.

The documents are inserted directly with PyMongo, shaped as mongoose and the Node driver store them:
`createDate`/`updatedDate` Dates, `__v: 0`, the value in `payload` (`positions` for Risk), `when` in epoch ms,
`removed` on the soft-deleted collections, candles stamped `exchangeName: "ccxt_binance"`. The
Node driver writes a JavaScript number as an int32 when it is an integer that fits, else as a double, so epoch
milliseconds arrive as doubles; Infinity is a BSON double too.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from backtest_store.dump import export_dump
from tests.zoo import MINUTE
from tests.zoo import T0_MS as T0

WHEN = datetime(2026, 1, 2, tzinfo=timezone.utc)
CREATED = datetime(2026, 1, 1, 0, 0, 1, 123000, tzinfo=timezone.utc)
INT32 = (-(2**31), 2**31 - 1)


def js(value: Any) -> Any:
    """A value as the Node driver serializes a JavaScript one: integers beyond int32 become doubles."""
    if type(value) is int and not INT32[0] <= value <= INT32[1]:
        return float(value)
    if type(value) is dict:
        return {k: js(v) for k, v in value.items()}
    if type(value) is list:
        return [js(v) for v in value]
    return value


def mongoose(**fields: Any) -> dict[str, Any]:
    """A document as mongoose saves it: the schema fields, its timestamps and the version key."""
    return {**js(fields), "createDate": CREATED, "updatedDate": CREATED, "__v": 0}


SIGNAL = {"id": "sig-1", "position": "long", "priceOpen": 42000, "priceTakeProfit": 43500.5,
          "priceStopLoss": 41000, "minuteEstimatedTime": math.inf, "cost": 100, "exchangeName": "ccxt-exchange",
          "strategyName": "trend", "frameName": "", "symbol": "BTCUSDT", "scheduledAt": T0, "pendingAt": T0,
          "timestamp": T0, "_isScheduled": False}
CONTEXT = {"symbol": "BTCUSDT", "strategyName": "trend", "exchangeName": "ccxt-exchange"}


async def insert(store, collection: str, *docs: dict[str, Any]) -> None:
    await store.database[collection].insert_many(list(docs))


async def test_candles_stamped_ccxt_binance_are_read_by_that_exchange(store):
    await insert(store, "candle-items", *(
        mongoose(symbol="BTCUSDT", interval="1m", timestamp=T0 + i * MINUTE, exchangeName="ccxt_binance",
                 open=42000 + i, high=42010.5, low=41990, close=42005, volume=12.5) for i in range(5)))
    candles = await store.adapters.candle("BTCUSDT", "1m", "ccxt_binance").read_candles_data(5, T0, T0 + 5 * MINUTE)
    assert candles is not None and [c["timestamp"] for c in candles] == [T0 + i * MINUTE for i in range(5)]
    assert candles[0] == {"timestamp": T0, "open": 42000, "high": 42010.5, "low": 41990, "close": 42005,
                          "volume": 12.5}
    # Another exchange's name does not see them (the original's index ignored the exchange).
    assert await store.adapters.candle("BTCUSDT", "1m", "binance").read_candles_data(5, T0, 0) is None
    # First write wins over the original's candle: nothing is added or changed.
    adapter = store.adapters.candle("BTCUSDT", "1m", "ccxt_binance")
    assert await adapter.write_candles_data([{"timestamp": T0, "open": 1, "high": 1, "low": 1, "close": 1,
                                              "volume": 1}]) == 0
    assert await store.database["candle-items"].count_documents({}) == 5


async def test_strategy_scoped_records(store):
    await insert(store, "signal-items", mongoose(**CONTEXT, payload=SIGNAL))
    await insert(store, "schedule-items", mongoose(**CONTEXT, payload=None))
    await insert(store, "strategy-items", mongoose(**CONTEXT, payload={
        "pendingSignalId": "sig-1", "createdSignal": None, "commitQueue": [], "closedSignal": None,
        "cancelledSignal": None, "activatedSignal": None, "takeProfitSignal": None, "stopLossSignal": None}))
    await insert(store, "partial-items", mongoose(**CONTEXT, signalId="sig-1", when=T0,
                                                  payload={"sig-1": {"profitLevels": [10], "lossLevels": []}}))
    await insert(store, "breakeven-items", mongoose(**CONTEXT, signalId="sig-1", when=T0, payload={}))
    await insert(store, "recent-items", mongoose(**CONTEXT, frameName="", backtest=False, when=T0,
                                                 payload={**SIGNAL, "pnl": {"pnlPercentage": 0.5}}))
    a = store.adapters
    signal = await a.signal("BTCUSDT", "trend", "ccxt-exchange").read_signal_data()
    assert signal["id"] == "sig-1" and signal["minuteEstimatedTime"] == math.inf and signal["timestamp"] == T0
    assert await a.schedule("BTCUSDT", "trend", "ccxt-exchange").read_schedule_data() is None
    assert (await a.strategy("BTCUSDT", "trend", "ccxt-exchange").read_strategy_data())["pendingSignalId"] == "sig-1"
    assert await a.partial("BTCUSDT", "trend", "ccxt-exchange").read_partial_data("sig-1", WHEN) == {
        "sig-1": {"profitLevels": [10], "lossLevels": []}}
    assert await a.breakeven("BTCUSDT", "trend", "ccxt-exchange").read_breakeven_data("sig-1", WHEN) == {}
    recent = await a.recent("BTCUSDT", "trend", "ccxt-exchange", "", False).read_recent_data()
    assert recent["pnl"] == {"pnlPercentage": 0.5}
    # Our writes update the original's document in place: same key, same document, mongoose's fields kept.
    await a.signal("BTCUSDT", "trend", "ccxt-exchange").write_signal_data(None)
    docs = [d async for d in store.database["signal-items"].find({})]
    assert len(docs) == 1 and docs[0]["payload"] is None and docs[0]["__v"] == 0
    assert docs[0]["createDate"] == CREATED and docs[0]["updatedDate"] > CREATED


async def test_risk_positions(store):
    position = {"strategyName": "trend", "exchangeName": "ccxt-exchange", "frameName": "", "symbol": "BTCUSDT",
                "position": "long", "priceOpen": 42000, "priceStopLoss": 41000, "priceTakeProfit": 43500,
                "minuteEstimatedTime": math.inf, "openTimestamp": T0}
    await insert(store, "risk-items", mongoose(riskName="main", exchangeName="ccxt-exchange", when=T0,
                                               positions=[["trend_ccxt-exchange_BTCUSDT", position]]))
    rows = await store.adapters.risk("main", "ccxt-exchange").read_position_data(WHEN)
    assert rows == [["trend_ccxt-exchange_BTCUSDT", {**position, "openTimestamp": float(T0)}]]
    assert rows[0][1]["minuteEstimatedTime"] == math.inf


async def test_rows(store):
    await insert(store, "storage-items",
                 mongoose(backtest=False, signalId="sig-1", payload={**SIGNAL, "status": "opened", "priority": T0}),
                 mongoose(backtest=True, signalId="sig-2", payload={**SIGNAL, "id": "sig-2", "status": "closed"}))
    await insert(store, "notification-items", mongoose(backtest=False, notificationId="n-1", payload={
        "type": "error.info", "id": "n-1", "backtest": False, "error": {}, "message": "boom"}))
    await insert(store, "log-items", mongoose(entryId="log-1", payload={
        "id": "log-1", "type": "info", "priority": T0, "topic": "tick", "args": [],
        "executionContext": {"symbol": "BTCUSDT", "when": CREATED, "backtest": False}}))
    a = store.adapters
    assert [r["id"] for r in await a.storage(False).read_storage_data()] == ["sig-1"]
    assert [r["id"] for r in await a.storage(True).read_storage_data()] == ["sig-2"]
    assert (await a.notification(False).read_notification_data())[0]["message"] == "boom"
    log = await a.log().read_log_data()
    assert log[0]["executionContext"]["when"] == CREATED  # a Date in BSON
    # Append-only: the original's entry is not rewritten.
    assert await a.log().write_log_data([{"id": "log-1", "topic": "other"}, {"id": "log-2"}]) == 1


async def test_soft_deleted_entries_and_when(store):
    await insert(store, "measure-items",
                 mongoose(bucket="news_1h_0", entryKey=f"BTCUSDT_{T0}", removed=False,
                          payload={"id": f"BTCUSDT_{T0}", "data": {"score": 1}, "removed": False}),
                 mongoose(bucket="news_1h_0", entryKey=f"ETHUSDT_{T0}", removed=True,
                          payload={"id": f"ETHUSDT_{T0}", "data": None, "removed": True}))
    await insert(store, "interval-items", mongoose(bucket="once_15m_1", entryKey="k", removed=False, when=T0,
                                                   payload={"id": "k", "data": 1, "when": CREATED, "removed": False}))
    await insert(store, "memory-items", mongoose(signalId="sig-1", bucketName="notes", memoryId="m-1",
                                                 removed=False, when=T0, payload={
                                                     "priority": T0, "data": {"t": "x"}, "removed": False,
                                                     "index": "x", "when": T0}))
    await insert(store, "state-items", mongoose(signalId="sig-1", bucketName="b", when=T0,
                                                payload={"id": "sig-1_b", "data": {"n": 1}, "when": T0}))
    a = store.adapters
    measure = a.measure("news_1h_0")
    assert (await measure.read_measure_data(f"BTCUSDT_{T0}"))["data"] == {"score": 1}
    assert await measure.read_measure_data(f"ETHUSDT_{T0}") is None
    assert [k async for k in measure.list_measure_data()] == [f"BTCUSDT_{T0}"]
    interval = await a.interval("once_15m_1").read_interval_data("k")
    assert interval["when"] == CREATED
    memory = a.memory("sig-1", "notes")
    assert (await memory.read_memory_data("m-1"))["when"] == T0
    assert [k async for k, _ in memory.list_memory_data()] == ["m-1"]
    assert (await a.state("sig-1", "b").read_state_data())["data"] == {"n": 1}


async def test_session_without_symbol_and_mode(store, tmp_path):
    """The original keys Session by (strategy, exchange, frame) only (the 14.1.0 contract).

    Our Session key adds symbol and mode (HEAD contract), so such a document is invisible to the adapter and
    the export refuses it rather than inventing a symbol; the data stays in the collection untouched.
    """
    await insert(store, "session-items", mongoose(strategyName="trend", exchangeName="ccxt-exchange", frameName="",
                                                  when=T0, payload={"id": "x", "data": {"equity": 1}, "when": T0}))
    assert await store.adapters.session("trend", "ccxt-exchange", "", "BTCUSDT", False).read_session_data() is None
    report = await export_dump(store, tmp_path / "out")
    assert report.adapters["session"].skipped == 1
    assert "lacks symbol" in report.skipped_documents[0][1]
    assert await store.database["session-items"].count_documents({}) == 1
