"""`import-dump` / `export-dump` against the real servers: a realistic dump of every adapter, round-tripped."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from backtest_store import Store
from backtest_store.cli import main as cli_main
from backtest_store.dump import ADAPTER_NAMES, export_dump, import_dump
from backtest_store.dump.layout import DATA_ROOTS
from backtest_store.dump.jsonfile import to_json
from backtest_store.contracts import DOCUMENTS
from backtest_store.models import (
    MeasureItem,
    RiskItem,
    ScheduleItem,
    SignalItem,
    StrategyItem,
)
from backtest_store.validation import when_ms
from tests import external
from tests.realdata import load_ts_original, unpack_dump
from tests.zoo import MINUTE
from tests.zoo import T0 as NOW
from tests.zoo import T0_MS as T0

CANDLES_1M = 30
LARGE_CANDLES = int(os.environ.get("BACKTEST_STORE_LARGE_DUMP", "200000"))


def unique(label: str) -> str:
    return f"{label}_{uuid.uuid4().hex[:10]}"


def write(root: Path, rel: str, value: Any = None, *, raw: bytes | None = None) -> Path:
    """A file as backtest-kit writes it: `JSON.stringify` output, compact, UTF-8, no trailing newline."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw if raw is not None else json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    return path


def pnl(price_open: float, price_close: float) -> dict[str, Any]:
    return {"pnlPercentage": round((price_close - price_open) / price_open * 100, 4), "priceOpen": price_open,
            "priceClose": price_close, "pnlCost": 1.25, "pnlEntries": 100}


def signal_row(signal_id: str, symbol: str, strategy: str, exchange: str, *, frame: str = "",
               estimated: float | None = 240, **extra: Any) -> dict[str, Any]:
    """An `ISignalRow`; `minuteEstimatedTime: null` is Infinity on disk."""
    return {
        "id": signal_id, "position": "long", "note": "breakout — ретест", "priceOpen": 42000.5,
        "priceTakeProfit": 43500, "priceStopLoss": 41000.25, "minuteEstimatedTime": estimated, "cost": 100,
        "exchangeName": exchange, "strategyName": strategy, "frameName": frame, "symbol": symbol,
        "scheduledAt": T0, "pendingAt": T0 + MINUTE, "timestamp": T0, "_isScheduled": False,
        "_entry": [{"price": 42000.5, "cost": 100, "timestamp": T0}],
        "_peak": {"price": 42800, "timestamp": T0 + 5 * MINUTE, **pnl(42000.5, 42800)},
        "_fall": {"price": 41900, "timestamp": T0 + 2 * MINUTE, **pnl(42000.5, 41900)},
        **extra,
    }


def public_row(signal_id: str, symbol: str, strategy: str, exchange: str, **extra: Any) -> dict[str, Any]:
    """An `IPublicSignalRow`."""
    return {**signal_row(signal_id, symbol, strategy, exchange, **extra), "originalPriceStopLoss": 41000.25,
            "originalPriceTakeProfit": 43500, "originalPriceOpen": 42000.5, "partialExecuted": 0, "totalEntries": 1,
            "totalPartials": 0, "pnl": pnl(42000.5, 42300), "peakProfit": pnl(42000.5, 42800),
            "maxDrawdown": pnl(42000.5, 41900)}


# Names with `_` in them make `<symbol>_<strategy>_<exchange>` directory names ambiguous on purpose.
STRATEGY, EXCHANGE = "trend_follow", "binance"
BTC_DIR = f"BTCUSDT_{STRATEGY}_{EXCHANGE}"
ETH_DIR = f"ETHUSDT_{STRATEGY}_{EXCHANGE}"

# What the import must skip, by path relative to the dump, and a word of the reason.
EXPECTED_SKIPS = {
    f"data/candle/binance/BTCUSDT/1m/.tmp-0123456789ab-{T0}.json": "temporary",
    "data/storage/live/broken.json": "corrupt",
    "data/measure/fetchNews_1h_0/nan.json": "corrupt",
    f"data/candle/binance/BTC/USDT/1m/{T0}.json": "unexpected location",
    "data/strategy/XRPUSDT_mean_rev_okx_spot/strategy.json": "ambiguous",
}


def build_dump(root: Path) -> dict[str, int]:
    """A dump covering every adapter. Returns the files each adapter must import."""
    expected = dict.fromkeys(ADAPTER_NAMES, 0)
    # Candle: 30 one-minute candles and 3 hourly ones.
    for i in range(CANDLES_1M):
        ts = T0 + i * MINUTE
        write(root, f"data/candle/binance/BTCUSDT/1m/{ts}.json",
              {"timestamp": ts, "open": 42000 + i, "high": 42010.5 + i, "low": 41990 + i, "close": 42005 + i,
               "volume": 12.345})
    for i in range(3):
        ts = T0 + i * 60 * MINUTE
        write(root, f"data/candle/binance/ETHUSDT/1h/{ts}.json",
              {"timestamp": ts, "open": 3100, "high": 3150, "low": 3080.75, "close": 3120, "volume": 900})
    expected["candle"] = CANDLES_1M + 3
    # Signal: the open BTC position (eternal hold: Infinity is null on disk); ETH cleared with a literal null, its
    # context named by the Storage row of the closed ETH signal.
    write(root, f"data/signal/{BTC_DIR}/BTCUSDT.json", signal_row("sig-btc", "BTCUSDT", STRATEGY, EXCHANGE,
                                                                   estimated=None))
    write(root, f"data/signal/{ETH_DIR}/ETHUSDT.json", raw=b"null")
    expected["signal"] = 2
    # Schedule: a limit entry waiting on SOL.
    write(root, f"data/schedule/SOLUSDT_{STRATEGY}_{EXCHANGE}/SOLUSDT.json",
          {**signal_row("sched-sol", "SOLUSDT", STRATEGY, EXCHANGE), "_isScheduled": True})
    expected["schedule"] = 1
    # Strategy: BTC resolved from the Signal's context; XRP's name splits three ways and nothing names it.
    snapshot = {"pendingSignalId": "sig-btc", "lastPendingId": "sig-btc", "createdSignal": None,
                "commitQueue": [{"action": "breakeven", "symbol": "BTCUSDT", "backtest": False,
                                 "currentPrice": 42600}],
                "closedSignal": None, "cancelledSignal": None, "activatedSignal": None, "takeProfitSignal": None,
                "stopLossSignal": None, "retryOpenSignal": None, "retryOpenCount": 0, "retryCloseCount": 0,
                "isPaused": False}
    write(root, f"data/strategy/{BTC_DIR}/strategy.json", snapshot)
    write(root, "data/strategy/XRPUSDT_mean_rev_okx_spot/strategy.json", snapshot)
    expected["strategy"] = 1
    # Risk: the positions map; the exchange is the directory's suffix.
    position = {"strategyName": STRATEGY, "exchangeName": EXCHANGE, "frameName": "", "symbol": "BTCUSDT",
                "position": "long", "priceOpen": 42000.5, "priceStopLoss": 41000.25, "priceTakeProfit": 43500,
                "minuteEstimatedTime": None, "openTimestamp": T0 + MINUTE}
    write(root, f"data/risk/main_risk_{EXCHANGE}/positions.json",
          [[f"{STRATEGY}_{EXCHANGE}_BTCUSDT", position]])
    expected["risk"] = 1
    # Partial and Breakeven: ETH has no Signal file (it was cleared), so its context comes from Storage rows.
    write(root, f"data/partial/{BTC_DIR}/sig-btc.json", {"sig-btc": {"profitLevels": [10, 20], "lossLevels": []}})
    write(root, f"data/partial/{ETH_DIR}/sig-eth.json", {})
    write(root, f"data/breakeven/{BTC_DIR}/sig-btc.json", {"sig-btc": {"reached": True}})
    expected["partial"], expected["breakeven"] = 2, 1
    # Storage: the live signal history (closed ETH, opened BTC) and one corrupt file.
    write(root, "data/storage/live/sig-eth.json",
          {**public_row("sig-eth", "ETHUSDT", STRATEGY, EXCHANGE), "status": "closed", "currentPrice": 3200,
           "closeReason": "take_profit", "closeTimestamp": T0 + 90 * MINUTE, "createdAt": T0,
           "updatedAt": T0 + 90 * MINUTE, "priority": T0 + 90 * MINUTE})
    write(root, "data/storage/live/sig-btc.json",
          {**public_row("sig-btc", "BTCUSDT", STRATEGY, EXCHANGE), "status": "opened", "currentPrice": 42300,
           "createdAt": T0, "updatedAt": T0 + MINUTE, "priority": T0 + MINUTE})
    write(root, "data/storage/live/broken.json", raw=b'{"id":"broken","status":')
    expected["storage"] = 2
    # Notification: a signal variant and an error variant (no timestamps), live and backtest.
    write(root, "data/notification/live/n-1.json",
          {"type": "signal.opened", "id": "n-1", "backtest": False, "timestamp": T0, "createdAt": T0,
           "symbol": "BTCUSDT", "signalId": "sig-btc", "strategyName": STRATEGY, "exchangeName": EXCHANGE,
           "priceOpen": 42000.5, "position": "long"})
    write(root, "data/notification/backtest/n-2.json",
          {"type": "error.info", "id": "n-2", "backtest": True, "error": {"name": "Error", "stack": "at x"},
           "message": "exchange timeout"})
    expected["notification"] = 2
    # Log: two entries; `executionContext.when` is an ISO string on disk.
    for i in range(2):
        write(root, f"data/log/log/log-{i}.json",
              {"id": f"log-{i}", "type": "info", "priority": T0 + i, "createdAt": "2026-01-01T00:00:00.000Z",
               "timestamp": T0, "methodContext": {"exchangeName": EXCHANGE, "strategyName": STRATEGY,
                                                   "frameName": ""},
               "executionContext": {"symbol": "BTCUSDT", "when": "2026-01-01T00:00:00.000Z", "backtest": False},
               "topic": "tick", "args": [1, "two", {"three": [3.5]}, None]})
    expected["log"] = 2
    # Measure: a cached result, a soft-removed one, and a file with a NaN token (corrupt to JSON.parse).
    write(root, f"data/measure/fetchNews_1h_0/BTCUSDT_{T0}.json",
          {"id": f"BTCUSDT_{T0}", "data": {"headlines": ["a", "b"], "score": 0.75}, "removed": False})
    write(root, f"data/measure/fetchNews_1h_0/ETHUSDT_{T0}.json",
          {"id": f"ETHUSDT_{T0}", "data": {"headlines": []}, "removed": True})
    write(root, "data/measure/fetchNews_1h_0/nan.json", raw=b'{"id":"nan","data":NaN,"removed":false}')
    expected["measure"] = 2
    # Interval: an "already fired" marker, `when` an ISO string.
    write(root, f"data/interval/signalOnce_15m_1/BTCUSDT_{T0}.json",
          {"id": f"BTCUSDT_{T0}", "data": {"fired": True}, "when": "2026-01-01T00:15:00.000Z", "removed": False})
    expected["interval"] = 1
    # Memory (not under data/): one live entry and one soft-removed.
    write(root, "memory/sig-btc/notes/m-1.json",
          {"priority": T0 + 3, "data": {"text": "support at 41k"}, "removed": False, "index": "support 41k",
           "when": T0 + 2 * MINUTE})
    write(root, "memory/sig-btc/notes/m-2.json",
          {"priority": T0 + 4, "data": {"text": "old"}, "removed": True, "index": "old", "when": T0 + 3 * MINUTE})
    expected["memory"] = 2
    # Recent: live (no frame level) and backtest with a frame.
    write(root, f"data/recent/{BTC_DIR}_live/BTCUSDT.json",
          public_row("sig-btc", "BTCUSDT", STRATEGY, EXCHANGE, timestamp=T0 + 7 * MINUTE))
    write(root, f"data/recent/{BTC_DIR}_jan_2026_backtest/BTCUSDT.json",
          public_row("sig-bt", "BTCUSDT", STRATEGY, EXCHANGE, frame="jan_2026", timestamp=T0 + 8 * MINUTE))
    expected["recent"] = 2
    # State: `<signalId>/<bucket>/<bucket>.json`.
    write(root, "state/sig-btc/risk_bucket/risk_bucket.json",
          {"id": "sig-btc_risk_bucket", "data": {"trailing": 0.5}, "when": T0 + 4 * MINUTE})
    expected["state"] = 1
    # Session: live collapses the frame level; backtest has it.
    write(root, f"session/{STRATEGY}/{EXCHANGE}/BTCUSDT_live.json",
          {"id": f"BTCUSDT:{STRATEGY}:{EXCHANGE}:live", "data": {"equity": 1000}, "when": T0 + 5 * MINUTE})
    write(root, f"session/{STRATEGY}/{EXCHANGE}/jan_2026/BTCUSDT_backtest.json",
          {"id": f"BTCUSDT:{STRATEGY}:{EXCHANGE}:jan_2026:backtest", "data": None, "when": T0 + 6 * MINUTE})
    expected["session"] = 2
    # Dictionary (backtest-kit 20): `<signalId>/<dictionaryName>.json`, no bucket-named directory level.
    write(root, "dictionary/sig-btc/levels_ru.json",
          {"id": "sig-btc_levels_ru", "data": {"stop": {"value": 41000.25, "when": T0 + MINUTE},
                                              "заметка": {"value": "ретест", "when": T0 + 2 * MINUTE}},
           "when": T0 + 2 * MINUTE})
    write(root, "dictionary/sig-eth/empty.json", {"id": "sig-eth_empty", "data": {}, "when": T0})
    expected["dictionary"] = 2
    # Files the import must skip without failing.
    write(root, f"data/candle/binance/BTCUSDT/1m/.tmp-0123456789ab-{T0}.json", {"timestamp": T0})
    write(root, f"data/candle/binance/BTC/USDT/1m/{T0}.json",
          {"timestamp": T0, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1})
    # Not persistence data: reports, JSONL logs, heatmaps, and breakeven *reports* (not data/breakeven).
    write(root, "backtest/trend_follow.md", raw=b"# report")
    write(root, "live/trend_follow.md", raw=b"# report")
    write(root, "breakeven/BTCUSDT.md", raw=b"# breakeven report")
    write(root, "heatmap/trend_follow.json", {"not": "persistence"})
    write(root, "log/backtest.jsonl", raw=b'{"line":1}\n')
    return expected


async def snapshot(store: Store) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every document as (context key) -> (value as JSON, removed, when): what must survive a round trip."""
    out: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    for model in DOCUMENTS:
        repo = store.repository(model)
        rows = {}
        async for doc in repo.iterate({}, None):
            key = tuple(doc[f] for f in model.context_key())
            if model.__name__ == "CandleItem":
                value = {f: doc[f] for f in ("open", "high", "low", "close", "volume")}
            else:
                value = doc.get(model.value_field)
            rows[key] = (json.dumps(to_json(value), sort_keys=True), doc.get("removed"), doc.get("when"))
        out[model.collection_name()] = rows
    return out


def parsed_files(root: Path, *, leave_out: Any = ()) -> dict[str, Any]:
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*.json")}
    return {rel: json.loads(p.read_bytes()) for rel, p in files.items()
            if rel.split("/")[0] in DATA_ROOTS and rel not in leave_out}


@pytest.fixture
async def other_store(servers):
    """A second store on its own fresh database (the `open_store` ones share one database per test)."""
    name = unique("t2")
    store = await Store.open(mongo_url=servers.mongo_db(name), redis_url=servers.redis, cache_prefix=unique("bts2"))
    await store.create_indexes()
    yield store
    await store.mongo.drop_database(name)
    await store.flush_cache()
    await store.close()


async def test_dump_round_trip(store, other_store, tmp_path):
    dump = tmp_path / "dump"
    expected = build_dump(dump)

    first = await import_dump(store, dump)
    assert {n: a.imported for n, a in first.adapters.items()} == expected
    assert all(a.unchanged == 0 for a in first.adapters.values())
    skipped = dict(first.skipped_files)
    assert set(skipped) == set(EXPECTED_SKIPS), skipped
    for rel, word in EXPECTED_SKIPS.items():
        assert word in skipped[rel].lower(), (rel, skipped[rel])
    assert first.skipped == len(EXPECTED_SKIPS)
    assert {"backtest", "live", "breakeven", "heatmap", "log"} <= set(first.ignored)

    # Resolved from the payload, from other adapters' data, never guessed.
    a = store.adapters
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert (await a.signal("BTCUSDT", STRATEGY, EXCHANGE).read_signal_data())["id"] == "sig-btc"
    assert await a.signal("ETHUSDT", STRATEGY, EXCHANGE).read_signal_data() is None
    assert (await a.strategy("BTCUSDT", STRATEGY, EXCHANGE).read_strategy_data())["pendingSignalId"] == "sig-btc"
    assert await a.partial("ETHUSDT", STRATEGY, EXCHANGE).read_partial_data("sig-eth", when) == {}
    assert (await a.breakeven("BTCUSDT", STRATEGY, EXCHANGE).read_breakeven_data("sig-btc", when)) == {
        "sig-btc": {"reached": True}}
    assert len(await a.risk("main_risk", EXCHANGE).read_position_data(when)) == 1
    assert (await a.recent("BTCUSDT", STRATEGY, EXCHANGE, "jan_2026", True).read_recent_data())["id"] == "sig-bt"
    assert (await a.session(STRATEGY, EXCHANGE, "", "BTCUSDT", False).read_session_data())["data"] == {"equity": 1000}
    assert await a.candle("BTCUSDT", "1m", "binance").read_candles_data(CANDLES_1M, T0, 0) is not None
    # Soft-removed entries stay soft-removed; `when` comes from the payload where it has one.
    measure = a.measure("fetchNews_1h_0")
    assert await measure.read_measure_data(f"ETHUSDT_{T0}") is None
    assert [k async for k in measure.list_measure_data()] == [f"BTCUSDT_{T0}"]
    removed = await store.repository(MeasureItem).find({"bucket": "fetchNews_1h_0", "entryKey": f"ETHUSDT_{T0}"})
    assert removed["removed"] is True and removed.get("when") is None
    assert await a.memory("sig-btc", "notes").has_memory_data("m-2")
    assert [k async for k, _ in a.memory("sig-btc", "notes").list_memory_data()] == ["m-1"]
    before = await snapshot(store)
    whens = {c: {k[-1] if len(k) == 1 else k: v[2] for k, v in rows.items()} for c, rows in before.items()}
    assert whens["memory-items"][("sig-btc", "notes", "m-1")] == T0 + 2 * MINUTE
    assert whens["interval-items"][("signalOnce_15m_1", f"BTCUSDT_{T0}")] == T0 + 15 * MINUTE
    assert whens["recent-items"][("BTCUSDT", STRATEGY, EXCHANGE, "", False)] == T0 + 7 * MINUTE
    assert whens["state-items"][("sig-btc", "risk_bucket")] == T0 + 4 * MINUTE
    assert whens["dictionary-items"][("sig-btc", "levels_ru")] == T0 + 2 * MINUTE
    assert (await a.dictionary("sig-eth", "empty").read_dictionary_data())["data"] == {}
    assert whens["risk-items"][("main_risk", EXCHANGE)] is None

    # Idempotent: everything unchanged, nothing added.
    again = await import_dump(store, dump)
    assert {n: a.imported for n, a in again.adapters.items()} == dict.fromkeys(ADAPTER_NAMES, 0)
    assert {n: a.unchanged for n, a in again.adapters.items()} == expected
    assert again.skipped == first.skipped
    assert await snapshot(store) == before

    # Export: the same files the framework wrote, minus what was skipped; never a temp file left behind.
    out = tmp_path / "out"
    exported = await export_dump(store, out)
    assert {n: a.written for n, a in exported.adapters.items()} == expected
    assert exported.skipped == 0
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    assert parsed_files(out) == parsed_files(dump, leave_out=EXPECTED_SKIPS)
    for path in out.rglob("*.json"):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf") and b"\n" not in data and b": " not in data

    # The export, imported into a fresh database, holds the same documents.
    reimported = await import_dump(other_store, out)
    assert reimported.skipped == 0
    assert await snapshot(other_store) == before


async def test_export_never_writes_nan_or_infinity(store, tmp_path):
    row = signal_row("sig-inf", "BTCUSDT", "s", "e", estimated=float("inf"), extra=[float("nan"), float("-inf")])
    await store.adapters.signal("BTCUSDT", "s", "e").write_signal_data(row)
    memory = store.adapters.memory("sig-inf", "notes")
    await memory.write_memory_data({"priority": 1, "data": {}, "removed": False, "index": "", "when": 5}, "m",
                                   datetime(2026, 1, 1, tzinfo=timezone.utc))
    await memory.remove_memory_data("m")
    report = await export_dump(store, tmp_path / "out")
    assert report.adapters["signal"].written == 1 and report.adapters["memory"].written == 1
    data = (tmp_path / "out/data/signal/BTCUSDT_s_e/BTCUSDT.json").read_bytes()
    assert b'"minuteEstimatedTime":null' in data and b'"extra":[null,null]' in data
    assert b"Infinity" not in data and b"NaN" not in data
    assert json.loads(data)["minuteEstimatedTime"] is None
    # Soft-removed entries export with their `removed: true` payload.
    assert json.loads((tmp_path / "out/memory/sig-inf/notes/m.json").read_bytes())["removed"] is True
    assert not [p for p in (tmp_path / "out").rglob(".tmp-*")]


async def test_export_refuses_names_that_are_not_file_names(store, tmp_path):
    a = store.adapters
    await a.signal("BTC/USDT", "s", "e").write_signal_data({"id": "x"})
    await a.memory("..", "notes").write_memory_data({"data": {}}, "m", datetime(2026, 1, 1, tzinfo=timezone.utc))
    await a.measure("bucket").write_measure_data({"id": "../../escape", "data": 1}, "../../escape",
                                                 datetime(2026, 1, 1, tzinfo=timezone.utc))
    await a.signal("ETHUSDT", "s", "e").write_signal_data({"id": "ok"})
    before = sorted(p for p in tmp_path.rglob("*"))
    report = await export_dump(store, tmp_path / "out")
    assert report.adapters["signal"].written == 1 and report.adapters["signal"].skipped == 1
    assert report.adapters["memory"].skipped == 1 and report.adapters["measure"].skipped == 1
    reasons = " | ".join(r for _, r in report.skipped_documents)
    assert "'BTC/USDT'" in reasons and "'..'" in reasons and "escape" in reasons
    written = sorted(p for p in tmp_path.rglob("*") if p not in before)
    assert all(p.is_relative_to(tmp_path / "out") for p in written)
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written if p.is_file()] == [
        "data/signal/ETHUSDT_s_e/ETHUSDT.json"]


def test_cli_import_and_export_json(servers, tmp_path, monkeypatch, capsys):
    """The console commands, against the test servers through the environment, with `--json` reports."""
    db = unique("cli")
    monkeypatch.setenv("CC_MONGO_CONNECTION_STRING", servers.mongo_db(db))
    monkeypatch.setenv("CC_REDIS_URL", servers.redis)
    monkeypatch.setenv("BACKTEST_STORE_CACHE_PREFIX", unique("cli"))
    dump = tmp_path / "dump"
    write(dump, f"data/candle/binance/BTCUSDT/1m/{T0}.json",
          {"timestamp": T0, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 3})
    write(dump, "data/storage/live/broken.json", raw=b"{")
    try:
        assert cli_main(["import-dump", str(dump), "--json", "--no-progress"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["adapters"]["candle"]["imported"] == 1 and report["skipped"] == 1
        assert report["skipped_files"][0]["path"] == "data/storage/live/broken.json"
        assert cli_main(["export-dump", str(tmp_path / "out"), "--json", "--no-progress"]) == 0
        assert json.loads(capsys.readouterr().out)["adapters"]["candle"]["written"] == 1
        assert (tmp_path / f"out/data/candle/binance/BTCUSDT/1m/{T0}.json").exists()
        assert cli_main(["import-dump", str(tmp_path / "missing"), "--no-progress"]) == 2
    finally:
        import asyncio

        async def drop() -> None:
            from pymongo import AsyncMongoClient
            client: AsyncMongoClient = AsyncMongoClient(servers.mongo_db(db))
            await client.drop_database(db)
            await client.close()

        asyncio.run(drop())


def write_candles(root: Path, count: int) -> None:
    """`count` one-minute candle files, spread over symbols so that no directory is unrealistically large."""
    per_symbol = 50_000
    for start in range(0, count, per_symbol):
        directory = root / f"data/candle/binance/SYM{start // per_symbol}USDT/1m"
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(min(per_symbol, count - start)):
            ts = T0 + i * MINUTE
            (directory / f"{ts}.json").write_bytes(
                b'{"timestamp":%d,"open":42000.5,"high":42010,"low":41990.25,"close":42005,"volume":12.345}' % ts)


@pytest.mark.large_dump
async def test_large_dump_streams_in_bounded_memory(store, tmp_path, report):
    dump = tmp_path / "dump"
    started = time.perf_counter()
    write_candles(dump, LARGE_CANDLES)
    generated = time.perf_counter() - started
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        started = time.perf_counter()
        imported = await import_dump(store, dump)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report(f"large dump: {LARGE_CANDLES:,} candle files generated in {generated:.1f} s, imported in {seconds:.1f} s "
          f"({LARGE_CANDLES / seconds:,.0f} files/s); Python heap peak during import {peak / 2**20:.1f} MiB "
          f"(tracemalloc); process max RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB")
    assert imported.adapters["candle"].imported == LARGE_CANDLES and imported.skipped == 0
    # Bounded: a list of 200k paths alone would be tens of MiB; one batch of parsed candles is well under 10.
    assert peak < 64 * 2**20


async def test_ambiguous_names_are_resolved_from_data_or_reported(store, tmp_path):
    a = store.adapters
    # Already in the database, not in the dump: a Signal and a Storage row naming contexts with `_` in them.
    await a.signal("ADAUSDT", "grid_bot", "okx_spot").write_signal_data(
        signal_row("sig-ada", "ADAUSDT", "grid_bot", "okx_spot"))
    await a.storage(False).write_storage_data([public_row("sig-dot", "DOTUSDT", "grid_bot", "okx_spot")])
    dump = tmp_path / "dump"
    write(dump, "data/strategy/ADAUSDT_grid_bot_okx_spot/strategy.json", {"pendingSignalId": None})
    write(dump, "data/partial/DOTUSDT_grid_bot_okx_spot/sig-dot.json", {})
    write(dump, "data/breakeven/LTCUSDT_grid_bot_okx_spot/sig-ltc.json", {})  # nothing names it
    write(dump, "data/risk/main_risk_okx_spot/positions.json",
          [["k", {"exchangeName": "okx_spot", "symbol": "ADAUSDT", "strategyName": "grid_bot"}]])
    # No position names the exchange: okx_spot is named in that role elsewhere in the dump, new_venue is not.
    write(dump, "data/risk/other_risk_okx_spot/positions.json", [])
    write(dump, "data/risk/third_risk_new_venue/positions.json", [])
    write(dump, "data/signal/XRPUSDT_s_e/XRPUSDT.json", {"id": "no-context"})  # only one way to split
    write(dump, "data/recent/XRPUSDT_s_e_live/XRPUSDT.json", {**public_row("r", "XRPUSDT", "s", "other")})
    write(dump, "session/s/e/frame/frame.json", {"id": "14.1.0 layout", "data": {}, "when": T0})
    report = await import_dump(store, dump)
    skipped = dict(report.skipped_files)
    assert set(skipped) == {"data/breakeven/LTCUSDT_grid_bot_okx_spot/sig-ltc.json",
                            "data/risk/third_risk_new_venue/positions.json",
                            "data/recent/XRPUSDT_s_e_live/XRPUSDT.json", "session/s/e/frame/frame.json"}, skipped
    assert "ambiguous" in skipped["data/breakeven/LTCUSDT_grid_bot_okx_spot/sig-ltc.json"]
    assert "ambiguous" in skipped["data/risk/third_risk_new_venue/positions.json"]
    assert "do not match" in skipped["data/recent/XRPUSDT_s_e_live/XRPUSDT.json"]
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert await a.strategy("ADAUSDT", "grid_bot", "okx_spot").read_strategy_data() == {"pendingSignalId": None}
    assert await a.partial("DOTUSDT", "grid_bot", "okx_spot").read_partial_data("sig-dot", when) == {}
    assert len(await a.risk("main_risk", "okx_spot").read_position_data(when)) == 1
    assert await store.repository(RiskItem).find({"riskName": "other_risk", "exchangeName": "okx_spot"})
    assert await a.signal("XRPUSDT", "s", "e").read_signal_data() == {"id": "no-context"}


def candle_file(root: Path, exchange: str, symbol: str) -> None:
    write(root, f"data/candle/{exchange}/{symbol}/1m/{T0}.json",
          {"timestamp": T0, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 3})


async def stored(store: Store, model: type, key: dict[str, Any]) -> dict[str, Any] | None:
    """The document of `key` without the fields that differ between two writes of the same state."""
    doc = await store.repository(model).find(key)
    return doc and {k: v for k, v in doc.items() if k not in ("_id", "createDate", "updatedDate")}


async def test_null_files_clear_records(store, other_store, tmp_path):
    """A literal null is the framework's cleared record: it clears what an earlier import stored."""
    a = store.adapters
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    # Open records from an earlier import of the same dump, before the framework closed the position.
    await a.signal("BTCUSDT", "s", "e").write_signal_data(signal_row("sig-1", "BTCUSDT", "s", "e"))
    await a.schedule("BTCUSDT", "s", "e").write_schedule_data(signal_row("sig-2", "BTCUSDT", "s", "e"))
    await a.strategy("BTCUSDT", "s", "e").write_strategy_data({"pendingSignalId": "sig-1"})
    await a.risk("r", "e").write_position_data([["s_e_BTCUSDT", {"symbol": "BTCUSDT"}]], when)
    dump = tmp_path / "dump"
    nulls = {"signal": "data/signal/BTCUSDT_s_e/BTCUSDT.json", "schedule": "data/schedule/BTCUSDT_s_e/BTCUSDT.json",
             "strategy": "data/strategy/BTCUSDT_s_e/strategy.json", "risk": "data/risk/r_e/positions.json"}
    for rel in nulls.values():
        write(dump, rel, raw=b"null")
    # Where the framework never writes null, a null file stays a reported skip.
    never = ["data/partial/BTCUSDT_s_e/sig-1.json", "data/recent/BTCUSDT_s_e_live/BTCUSDT.json",
             "data/measure/bucket/key.json", "session/s/e/BTCUSDT_live.json"]
    for rel in never:
        write(dump, rel, raw=b"null")

    report = await import_dump(store, dump)
    assert {n: c.imported for n, c in report.adapters.items() if c.imported} == dict.fromkeys(nulls, 1)
    skipped = dict(report.skipped_files)
    assert set(skipped) == set(never) and all("null" in reason for reason in skipped.values()), skipped
    assert await a.signal("BTCUSDT", "s", "e").read_signal_data() is None
    assert await a.schedule("BTCUSDT", "s", "e").read_schedule_data() is None
    assert await a.strategy("BTCUSDT", "s", "e").read_strategy_data() is None
    assert await a.risk("r", "e").read_position_data(when) == []
    # The same state as the adapters' own clearing writes.
    b = other_store.adapters
    await b.signal("BTCUSDT", "s", "e").write_signal_data(None)
    await b.schedule("BTCUSDT", "s", "e").write_schedule_data(None)
    await b.strategy("BTCUSDT", "s", "e").write_strategy_data(None)
    key = {"symbol": "BTCUSDT", "strategyName": "s", "exchangeName": "e"}
    for model in (SignalItem, ScheduleItem, StrategyItem):
        assert await stored(store, model, key) == await stored(other_store, model, key)
        assert (await stored(store, model, key))["payload"] is None
    risk = await stored(store, RiskItem, {"riskName": "r", "exchangeName": "e"})
    assert risk["positions"] is None and risk["when"] == when_ms(when)

    # Exported as null, and stable: the dump and its export import as unchanged.
    out = tmp_path / "out"
    exported = await export_dump(store, out)
    assert exported.skipped == 0
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.json")} == dict.fromkeys(
        nulls.values(), b"null")
    for source in (dump, out):
        again = await import_dump(store, source)
        assert again.imported == 0 and again.unchanged == len(nulls), again.as_dict()


async def test_joined_names_resolved_from_what_the_dump_says(store, tmp_path):
    """`_`-joined directory names, resolved from the names the same dump states plainly elsewhere, whatever the
    order in which the files are met; what still splits several ways is reported, never guessed."""
    a = store.adapters
    dump = tmp_path / "dump"
    # Stated plainly: candle folders (exchange, symbol), a Session path (strategy, exchange, symbol), Notification
    # rows (a context each), a Storage row (the context of one signal).
    candle_file(dump, "okx_spot", "ADAUSDT")
    candle_file(dump, "okx_spot", "XRPUSDT")
    write(dump, "session/mean_rev/okx_spot/XRPUSDT_live.json",
          {"id": "XRPUSDT:mean_rev:okx_spot:live", "data": {}, "when": T0})
    for i, (symbol, strategy, exchange) in enumerate([("DOTUSDT", "grid_bot", "binance"), ("DOTUSDT", "a", "b_c"),
                                                      ("DOTUSDT", "a_b", "c")]):
        write(dump, f"data/notification/live/n-{i}.json", {"type": "signal.opened", "id": f"n-{i}", "backtest": False,
                                                           "symbol": symbol, "strategyName": strategy,
                                                           "exchangeName": exchange})
    write(dump, "data/storage/live/sig-d.json", public_row("sig-d", "DOTUSDT", "a_b", "c"))
    # A full context named by the Session file.
    write(dump, "data/strategy/XRPUSDT_mean_rev_okx_spot/strategy.json", {"pendingSignalId": None})
    write(dump, "data/partial/XRPUSDT_mean_rev_okx_spot/sig-x.json", {"sig-x": {"profitLevels": [10]}})
    # Every part named in its role (ADAUSDT and okx_spot by candles, grid_bot by a Notification about DOTUSDT).
    write(dump, "data/signal/ADAUSDT_grid_bot_okx_spot/ADAUSDT.json", raw=b"null")
    write(dump, "data/recent/ADAUSDT_grid_bot_okx_spot_live/ADAUSDT.json", {"id": "r-ada"})
    write(dump, "data/risk/main_risk_okx_spot/positions.json", raw=b"null")
    # Named only by a file read later: the Schedule row (Schedule is imported after Signal).
    write(dump, "data/signal/SOLUSDT_trend_up_okx_spot/SOLUSDT.json", raw=b"null")
    write(dump, "data/schedule/SOLUSDT_trend_up_okx_spot/SOLUSDT.json",
          {**signal_row("sched-sol", "SOLUSDT", "trend_up", "okx_spot"), "_isScheduled": True})
    # DOTUSDT_a_b_c is (a, b_c) or (a_b, c): both are named in full. The Storage row of sig-d settles its file only.
    write(dump, "data/strategy/DOTUSDT_a_b_c/strategy.json", {"pendingSignalId": None})
    write(dump, "data/breakeven/DOTUSDT_a_b_c/sig-d.json", {"sig-d": {"reached": True}})

    report = await import_dump(store, dump)
    skipped = dict(report.skipped_files)
    assert set(skipped) == {"data/strategy/DOTUSDT_a_b_c/strategy.json"}, skipped
    reason = skipped["data/strategy/DOTUSDT_a_b_c/strategy.json"]
    assert "ambiguous" in reason and "DOTUSDT/a/b_c" in reason and "DOTUSDT/a_b/c" in reason, reason
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert await a.strategy("XRPUSDT", "mean_rev", "okx_spot").read_strategy_data() == {"pendingSignalId": None}
    assert await a.partial("XRPUSDT", "mean_rev", "okx_spot").read_partial_data("sig-x", when) == {
        "sig-x": {"profitLevels": [10]}}
    assert await stored(store, SignalItem, {"symbol": "ADAUSDT", "strategyName": "grid_bot",
                                            "exchangeName": "okx_spot"}) is not None
    assert await a.recent("ADAUSDT", "grid_bot", "okx_spot", "", False).read_recent_data() == {"id": "r-ada"}
    assert await stored(store, RiskItem, {"riskName": "main_risk", "exchangeName": "okx_spot"}) is not None
    assert await stored(store, SignalItem, {"symbol": "SOLUSDT", "strategyName": "trend_up",
                                            "exchangeName": "okx_spot"}) is not None
    assert await a.breakeven("DOTUSDT", "a_b", "c").read_breakeven_data("sig-d", when) == {"sig-d": {"reached": True}}
    # Nothing was stored under a split the dump does not name.
    for model in DOCUMENTS:
        async for doc in store.repository(model).iterate({}, None):
            assert doc.get("strategyName") in (None, "mean_rev", "grid_bot", "trend_up", "a_b"), doc
    assert (await import_dump(store, dump)).imported == 0


async def test_name_hints_are_bounded_and_never_guess_past_the_cap(store, tmp_path, monkeypatch):
    """Past the cap on remembered names, what is remembered can no longer rule a split out: reported, not guessed."""
    from backtest_store.dump import hints
    monkeypatch.setattr(hints, "MAX_HINTS", 2)
    dump = tmp_path / "dump"
    for symbol in ("ADAUSDT", "BNBUSDT", "DOTUSDT"):
        candle_file(dump, "okx_spot", symbol)
    write(dump, "data/notification/live/n-1.json", {"id": "n-1", "symbol": "ADAUSDT", "strategyName": "grid_bot",
                                                    "exchangeName": "okx_spot"})
    write(dump, "data/strategy/ADAUSDT_grid_bot_okx_spot/strategy.json", {"pendingSignalId": None})
    report = await import_dump(store, dump)
    reason = dict(report.skipped_files)["data/strategy/ADAUSDT_grid_bot_okx_spot/strategy.json"]
    assert "ambiguous" in reason and "too many" in reason, reason


async def test_export_refuses_contexts_that_share_a_path(store, tmp_path):
    """Two contexts whose `_`-joins are one path: neither is written, both are reported with their keys."""
    a = store.adapters
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    await a.strategy("A_B", "C", "x").write_strategy_data({"who": 1})
    await a.strategy("A", "B_C", "x").write_strategy_data({"who": 2})
    await a.strategy("A", "B", "x").write_strategy_data({"who": 3})  # its own path
    # Signal's file is the symbol: ("A_B","C","x") writes A_B_C_x/A_B.json, not the A.json the other two share.
    await a.signal("A", "B_C", "x").write_signal_data({"id": "1"})
    await a.signal("A", "B", "C_x").write_signal_data({"id": "2"})
    await a.signal("A_B", "C", "x").write_signal_data({"id": "3"})
    await a.risk("r_a", "b").write_position_data([], when)
    await a.risk("r", "a_b").write_position_data([], when)
    # Recent: three ways to S_a_b_c_live, the frame level included.
    await a.recent("S", "a_b", "c", "", False).write_recent_data({"id": "1"}, when)
    await a.recent("S", "a", "b_c", "", False).write_recent_data({"id": "2"}, when)
    await a.recent("S", "a", "b", "c", False).write_recent_data({"id": "3"}, when)
    await a.recent("S", "a", "b", "c", True).write_recent_data({"id": "4"}, when)  # S_a_b_c_backtest
    # Partial: the directory is shared, only the same signal id is the same file.
    await a.partial("A_B", "C", "x").write_partial_data({}, "sig-1", when)
    await a.partial("A", "B_C", "x").write_partial_data({}, "sig-1", when)
    await a.partial("A", "B_C", "x").write_partial_data({}, "sig-2", when)

    report = await export_dump(store, tmp_path / "out")
    refused = dict(report.skipped_documents)
    assert {n: (c.written, c.skipped) for n, c in report.adapters.items() if c.written or c.skipped} == {
        "strategy": (1, 2), "signal": (1, 2), "risk": (0, 2), "recent": (1, 3), "partial": (1, 2)}, refused
    expected = {
        "strategy-items {symbol='A_B', strategyName='C', exchangeName='x'}": "strategyName='B_C'",
        "strategy-items {symbol='A', strategyName='B_C', exchangeName='x'}": "symbol='A_B'",
        "signal-items {symbol='A', strategyName='B_C', exchangeName='x'}": "exchangeName='C_x'",
        "signal-items {symbol='A', strategyName='B', exchangeName='C_x'}": "strategyName='B_C'",
        "risk-items {riskName='r_a', exchangeName='b'}": "riskName='r'",
        "risk-items {riskName='r', exchangeName='a_b'}": "riskName='r_a'",
        "partial-items {symbol='A_B', strategyName='C', exchangeName='x', signalId='sig-1'}": "symbol='A'",
        "partial-items {symbol='A', strategyName='B_C', exchangeName='x', signalId='sig-1'}": "symbol='A_B'",
    }
    for what, other in expected.items():
        assert what in refused and other in refused[what] and "data/" in refused[what], (what, refused)
    recent = [r for w, r in refused.items() if w.startswith("recent-items")]
    assert len(recent) == 3 and all(r.count("{symbol='S'") == 2 for r in recent), recent
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json"))
    assert written == ["data/partial/A_B_C_x/sig-2.json", "data/recent/S_a_b_c_backtest/S.json",
                       "data/signal/A_B_C_x/A_B.json", "data/strategy/A_B_x/strategy.json"]
    assert json.loads((tmp_path / "out/data/signal/A_B_C_x/A_B.json").read_bytes()) == {"id": "3"}


async def test_export_writes_numbers_and_strings_as_json_stringify(store, tmp_path):
    """Doubles as a TypeScript writer stores them (100.0 is a double in BSON) come out as JavaScript prints them."""
    payload = {"tiny": 0.0000124, "whole": 100.0, "big": 1e21, "below": 1e20, "small": 1.5e-7, "negzero": -0.0,
               "huge": 2.0**53 + 2, "int64": 2**60, "text": "line\u2028sep \x01 ретест \"q\" \\", "z": 1, "a": 2}
    await store.repository(SignalItem).upsert({"symbol": "BTCUSDT", "strategyName": "s", "exchangeName": "e"},
                                              {"payload": payload})
    report = await export_dump(store, tmp_path / "out")
    assert report.adapters["signal"].written == 1
    assert (tmp_path / "out/data/signal/BTCUSDT_s_e/BTCUSDT.json").read_bytes() == (
        '{"tiny":0.0000124,"whole":100,"big":1e+21,"below":100000000000000000000,"small":1.5e-7,"negzero":0,'
        '"huge":9007199254740994,"int64":1152921504606847000,"text":"line\u2028sep \\u0001 ретест \\"q\\" \\\\",'
        '"z":1,"a":2}').encode()


async def test_real_dump_round_trips_byte_for_byte(store, tmp_path, report):
    """backtest-kit 19.5.0's own dump: imported and exported, every file comes back with the same bytes."""
    dump = unpack_dump(tmp_path / "src")
    original = {p.relative_to(dump).as_posix(): p for p in dump.rglob("*")
                if p.is_file() and not p.name.startswith(".tmp-")}
    started = time.perf_counter()
    first = await import_dump(store, dump)
    imported = time.perf_counter() - started
    assert first.skipped == 0, first.skipped_files
    assert first.imported == first.files == len(original) == 8186
    out = tmp_path / "out"
    started = time.perf_counter()
    exported = await export_dump(store, out)
    export_seconds = time.perf_counter() - started
    assert exported.skipped == 0, exported.skipped_documents
    copy = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}
    assert not [rel for rel in copy if rel.rsplit("/", 1)[-1].startswith(".tmp-")]
    assert sorted(set(original) - set(copy)) == [] and sorted(set(copy) - set(original)) == []
    differ = [rel for rel, path in original.items() if path.read_bytes() != copy[rel].read_bytes()]
    assert differ == [], differ[:10]
    assert copy["data/schedule/ETHUSDT_limit-short_synth-live/ETHUSDT.json"].read_bytes() == b"null"
    started = time.perf_counter()
    again = await import_dump(store, dump)
    reimported = time.perf_counter() - started
    assert again.imported == 0 and again.skipped == 0 and again.unchanged == len(original), again.as_dict()
    report(f"real dump ({len(original):,} files): import {imported:.1f} s, export {export_seconds:.1f} s, "
           f"second import {reimported:.1f} s")


async def test_typescript_written_documents_export_as_json_stringify_writes_them(store, tmp_path):
    """The TypeScript original stores every number as a double: each exported file is exactly the bytes
    JSON.stringify gives for it (checked by node: `JSON.stringify(JSON.parse(text)) === text`)."""
    node = external.node()
    await load_ts_original(store.database, "current", indexes=False)
    out = tmp_path / "out"
    report = await export_dump(store, out)
    # Candles too: their timestamps are whole-number doubles there. Dictionary is backtest-kit 20's: the 19.5
    # original has none.
    assert all(report.adapters[n].written for n in ADAPTER_NAMES if n != "dictionary"), report.as_dict()
    assert report.adapters["candle"].written == 10 and report.skipped == 0, report.as_dict()
    files = sorted(str(p) for p in out.rglob("*.json"))
    assert len(files) == report.written
    check = ("const fs = require('fs'); const bad = [];"
             "for (const f of JSON.parse(fs.readFileSync(0, 'utf8'))) {"
             "  const text = fs.readFileSync(f, 'utf8');"
             "  if (JSON.stringify(JSON.parse(text)) !== text) bad.push([f, text.slice(0, 200)]); }"
             "process.stdout.write(JSON.stringify(bad));")
    done = subprocess.run([node, "-e", check], input=json.dumps(files).encode(), capture_output=True, check=True)
    assert json.loads(done.stdout) == []


async def test_what_mongodb_cannot_store_is_reported_not_fatal(store, tmp_path):
    """A lone surrogate is valid JSON (JSON.stringify writes one as `\\ud800`) and a file name need not be UTF-8,
    but MongoDB stores UTF-8 only: such files are reported and the import goes on."""
    dump = tmp_path / "dump"
    write(dump, "data/storage/live/lone.json", raw=b'{"id":"lone","note":"\\ud800"}')
    write(dump, "data/storage/live/key.json", raw=b'{"id":"key","\\udfff":1}')
    write(dump, "data/storage/live/fine.json", {"id": "fine"})
    bad_dir = os.path.join(os.fsencode(dump), b"data/measure/bucket\xff")
    os.makedirs(bad_dir)
    with open(os.path.join(bad_dir, b"k.json"), "wb") as f:
        f.write(b'{"id":"k","data":1,"removed":false}')
    report = await import_dump(store, dump)
    assert report.adapters["storage"].imported == 1
    skipped = dict(report.skipped_files)
    assert {"data/storage/live/lone.json", "data/storage/live/key.json"} <= set(skipped), skipped
    assert report.adapters["measure"].skipped == 1 and report.skipped == 3, skipped
    assert "UTF-8" in skipped["data/storage/live/lone.json"]
    assert "data/measure/bucket\\udcff/k.json" in skipped
    json.dumps(report.as_dict(), ensure_ascii=False).encode("utf-8")  # the CLI prints it


async def test_extra_candle_fields_and_odd_payload_keys_round_trip_byte_for_byte(store, tmp_path):
    """What the framework's files hold beyond OHLCV, and payload keys MongoDB reads as operators or paths."""
    src = tmp_path / "dump"
    files = {
        f"data/candle/binance/BTCUSDT/1m/{T0}.json":
            f'{{"timestamp":{T0},"open":1.5,"high":2,"low":1,"close":1.75,"volume":10,"quoteVolume":17.5,"trades":42}}',
        f"data/candle/binance/BTCUSDT/1m/{T0 + MINUTE}.json":
            f'{{"open":1.75,"close":1.5,"high":2.5,"low":1.25,"volume":0.0000124,"timestamp":{T0 + MINUTE}}}',
        "memory/sig-1/notes/m1.json":
            '{"priority":1,"data":{"$gt":1,"a.b":{"$in":["$x"]},".":null},"removed":false,"index":"","when":1}',
        "data/log/log/l1.json": '{"id":"l1","priority":1,"args":[{"$set":{"x.y":1}}]}',
        "session/s/e/BTCUSDT_live.json": '{"id":"BTCUSDT:s:e:live","data":{"$where":"1","k.v":[1e+21,1.5e-7]},"when":1}',
        "dictionary/sig-1/marks.json": ('{"id":"sig-1_marks","data":{"z":{"value":-0.5,"when":1},"$gt":{"value":'
                                        '[5e-324,1e+21,"\u2028ретест",null,{"a.b":true}],"when":2},"":{"value":'
                                        '{},"when":3}},"when":3}'),
        "dictionary/sig_2.x/a b.json": '{"id":"sig_2.x_a b","data":{},"when":1740955260000}',
        # `removed` as JavaScript reads it (`data.removed ? null : data`): [] hides the entry, NaN cannot occur.
        "data/measure/b_1m_0/hidden.json": '{"id":"hidden","data":1,"removed":[]}',
        "data/measure/b_1m_0/shown.json": '{"id":"shown","data":1,"removed":0}',
    }
    for rel, text in files.items():
        write(src, rel, raw=text.encode())
    report = await import_dump(store, src)
    assert report.skipped == 0 and report.imported == len(files), report.as_dict()
    out = tmp_path / "out"
    await export_dump(store, out)
    for rel, text in files.items():
        assert (out / rel).read_bytes() == text.encode(), rel
    again = await import_dump(store, out)
    assert again.imported == 0 and again.unchanged == len(files), again.as_dict()
    assert [k async for k in store.adapters.measure("b_1m_0").list_measure_data()] == ["shown"]


# -- hostile dumps: every bad file is reported and skipped, none stops the import ------------------------------------

async def test_links_are_never_followed(store, tmp_path):
    outside = tmp_path / "outside"
    write(outside, "secret.json", {"id": "stolen", "priority": 1})
    write(outside, "folder/k.json", {"id": "k", "data": 1, "removed": False})
    src = tmp_path / "dump"
    write(src, "data/log/log/ok.json", {"id": "ok", "priority": 1})
    (src / "data/log/log/stolen.json").symlink_to(outside / "secret.json")
    (src / "data/measure").mkdir(parents=True)
    (src / "data/measure/bucket_1m_0").symlink_to(outside / "folder", target_is_directory=True)
    report = await import_dump(store, src)
    reasons = {path: reason for path, reason in report.skipped_files}
    assert "symbolic link" in reasons["data/log/log/stolen.json"]
    assert "symbolic link" in reasons["data/measure/bucket_1m_0"]
    assert [r["id"] for r in await store.adapters.log().read_log_data()] == ["ok"]
    assert await store.database["measure-items"].count_documents({}) == 0


async def test_files_that_cannot_be_documents_are_refused_unread(store, tmp_path):
    src = tmp_path / "dump"
    write(src, "data/log/log/big.json", raw=b'{"id":"big","blob":"' + b"x" * (17 * 1024 * 1024) + b'"}')
    write(src, "data/log/log/ok.json", {"id": "ok", "priority": 1})
    report = await import_dump(store, src)
    assert report.adapters["log"].imported == 1 and report.adapters["log"].skipped == 1
    assert "16 MiB" in dict(report.skipped_files)["data/log/log/big.json"]


async def test_deep_nesting_and_huge_numbers_never_stop_the_import(store, tmp_path):
    src = tmp_path / "dump"
    write(src, "data/log/log/deep.json", raw=b'{"id":"deep","a":' + b"[" * 1000 + b"]" * 1000 + b"}")
    write(src, "data/log/log/deeper.json", raw=b'{"id":"deeper","a":' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    write(src, "data/log/log/nested.json", raw=b'{"id":"nested","a":' + b"[" * 120 + b"]" * 120 + b"}")
    write(src, "data/log/log/huge.json", raw=b'{"id":"huge","n":1e400,"i":' + b"9" * 400 + b"}")
    write(src, "data/log/log/ok.json", {"id": "ok", "priority": 1})
    for _ in range(2):  # a rerun never stops on the same file either
        report = await import_dump(store, src)
        reasons = dict(report.skipped_files)
        assert set(reasons) == {"data/log/log/deep.json", "data/log/log/deeper.json", "data/log/log/nested.json"}
        assert all("nested" in reason for reason in reasons.values()), reasons
    stored = {r["id"]: r for r in await store.adapters.log().read_log_data()}
    assert set(stored) == {"huge", "ok"} and stored["huge"]["n"] == float("inf")  # as JSON.parse reads it


async def test_a_document_the_server_refuses_is_split_out_of_its_batch(store, tmp_path):
    # An index of the operator's own: the second row with the same payload.key is refused by the server.
    await store.database["notification-items"].create_index("payload.key", unique=True, name="operator_unique")
    src = tmp_path / "dump"
    for i in range(10):
        write(src, f"data/notification/live/n{i}.json", {"id": f"n{i}", "key": "same" if i in (3, 7) else f"k{i}"})
    report = await import_dump(store, src)
    assert report.adapters["notification"].imported == 9 and report.adapters["notification"].skipped == 1
    (path, reason), = report.skipped_files
    assert path in ("data/notification/live/n3.json", "data/notification/live/n7.json") and "refused" in reason
    assert await store.database["notification-items"].count_documents({}) == 9


async def test_candles_still_forming_are_skipped(store, tmp_path):
    src = tmp_path / "dump"
    future = 4102444800000  # 2100-01-01
    candle = {"timestamp": T0, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}
    write(src, f"data/candle/binance/BTCUSDT/1m/{T0}.json", candle)
    write(src, f"data/candle/binance/BTCUSDT/1m/{future}.json", {**candle, "timestamp": future})
    report = await import_dump(store, src)
    assert report.adapters["candle"].imported == 1
    assert "still forming" in dict(report.skipped_files)[f"data/candle/binance/BTCUSDT/1m/{future}.json"]


def nested_folders(top: Path, levels: int, name: str) -> None:
    """`levels` nested folders below `top`, made relative to an open handle (the path may pass PATH_MAX), and a
    measure file at the bottom."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("k.json", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write('{"id":"k","data":1,"removed":false}')
    finally:
        os.close(fd)


def remove_nested(top: Path, name: str) -> None:
    """Remove what `nested_folders` made, one level at a time with short paths: a recursive removal (pytest's own
    clean-up of old temporary folders too) hits the recursion limit or PATH_MAX."""
    while (top / name).is_dir():
        if (top / name / name).is_dir():
            os.rename(top / name / name, top / "next")
            os.rmdir(top / name)
            os.rename(top / "next", top / name)
        else:
            shutil.rmtree(top / name)


# Each: what to put in the dump, the path reported, and a word of the reason. On main each one either stopped the
# import with a traceback (ValueError, NotADirectoryError, RecursionError) or was skipped without a report line.
BAD_ENTRIES = {
    "an integer of 5,000 digits": (
        lambda src: write(src, "data/log/log/long.json", raw=b'{"id":"long","n":' + b"9" * 5000 + b"}"), None, None),
    "a FIFO named .json": (lambda src: os.mkfifo(src / "data/log/log/fifo.json"), "data/log/log/fifo.json", "FIFO"),
    "a FIFO with another name": (lambda src: os.mkfifo(src / "data/log/log/fifo"), "data/log/log/fifo", "FIFO"),
    "a file where a kind folder belongs": (
        lambda src: write(src, "data/storage", raw=b"not a folder"), "data/storage", "not a folder"),
    "a FIFO where a kind folder belongs": (lambda src: os.mkfifo(src / "state"), "state", "not a folder"),
    "1,200 nested folders": (
        lambda src: nested_folders(src / "data/measure/bucket_1m_0", 1200, "d"), "data/measure/bucket_1m_0/d/d/d",
        "deeper"),
    "a path past PATH_MAX": (
        lambda src: nested_folders(src / "data/measure/bucket_1m_0", 25, "d" * 200),
        "data/measure/bucket_1m_0/" + "/".join(["d" * 200] * 3), "deeper"),
}


@pytest.mark.parametrize("entry", list(BAD_ENTRIES))
async def test_a_bad_entry_is_a_reported_skip_and_never_stops_the_import(store, tmp_path, entry):
    make, path, reason = BAD_ENTRIES[entry]
    src = tmp_path / "dump"
    write(src, "data/log/log/ok.json", {"id": "ok", "priority": 1})
    write(src, "data/measure/bucket_1m_0/fine.json", {"id": "fine", "data": 1, "removed": False})
    make(src)
    try:
        for _ in range(2):  # a rerun never stops on the same entry either
            report = await import_dump(store, src)
            reasons = dict(report.skipped_files)
            assert reasons == ({} if path is None else {path: reasons.get(path)}), reasons
            assert path is None or reason in reasons[path], reasons
    finally:
        for name in ("d", "d" * 200):
            remove_nested(src / "data/measure/bucket_1m_0", name)
    stored = {r["id"]: r for r in await store.adapters.log().read_log_data()}
    assert {"ok"} <= set(stored) and await store.database["measure-items"].count_documents({}) == 1
    if entry == "an integer of 5,000 digits":
        assert stored["long"]["n"] == float("inf")  # what JSON.parse reads: Infinity


MEMORY_CHILD = """
import asyncio, json, resource, sys
from backtest_store import Store
from backtest_store.dump import import_dump

async def main():
    store = await Store.open(sys.argv[1], sys.argv[2], cache_prefix=sys.argv[3])
    try:
        await store.wait_ready()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = await import_dump(store, sys.argv[4])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"before_kib": before, "after_kib": after, "report": report.as_dict()}))
    finally:
        await store.mongo.drop_database(store.database.name)
        await store.flush_cache()
        await store.close()

asyncio.run(main())
"""


def test_import_memory_is_bounded_by_parsed_bytes_not_file_count(servers, tmp_path, report):
    """Eight 15 MiB files of `[{},{},...]` took 3.1 GB at once when a batch of 1,000 files was parsed whole: each is
    refused unparsed now (its structure alone is over 16 MiB of BSON), and files that are stored are parsed a
    budget at a time. Measured in a child process: its peak RSS is its own."""
    src = tmp_path / "dump"
    huge = b"[" + b"{}," * (15 * 2**20 // 3 - 1) + b"{}]"
    for i in range(8):
        write(src, f"data/log/log/huge{i}.json", raw=b'{"id":"huge%d","a":' % i + huge + b"}")
    stored = b"[" + b"{}," * 599_999 + b"{}]"  # 1.8 MB on disk, 8 MB of BSON, ~45 MB parsed
    for i in range(4):
        write(src, f"data/log/log/big{i}.json", raw=b'{"id":"big%d","a":' % i + stored + b"}")
    child = subprocess.run([sys.executable, "-c", MEMORY_CHILD, servers.mongo_db(unique("mem")), servers.redis,
                            unique("bts"), str(src)], capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout)
    grew = (result["after_kib"] - result["before_kib"]) / 1024
    report(f"import of 8 x 15 MiB '[{{}},...]' files and 4 x 1.8 MB stored ones: peak RSS grew {grew:.0f} MiB "
           f"({result['before_kib'] / 1024:.0f} -> {result['after_kib'] / 1024:.0f} MiB)")
    # The whole child's peak, its start included (ru_maxrss never goes down): main reached 3,266 MiB.
    assert result["after_kib"] / 1024 < 600, result
    reasons = {path: reason for path, reason in
               ((s["path"], s["reason"]) for s in result["report"]["skipped_files"])}
    assert set(reasons) == {f"data/log/log/huge{i}.json" for i in range(8)}, reasons
    assert all("not parsed" in reason for reason in reasons.values()), reasons
    assert result["report"]["adapters"]["log"]["imported"] == 4


LINK_SETUPS = {
    # name: (link inside the target, whether it points at a folder that exists, paths whose documents are refused)
    "data is a link": ("data", True, "data/"),
    "the log folder is a link": ("data/log/log", True, "data/log/log/"),
    "a signal's memory folder is a link": ("memory/sig1", True, "memory/sig1/"),
    "a dangling folder link": ("data/signal", False, "data/signal/"),
    "a link one level up a memory folder": ("memory", True, "memory/"),
}


@pytest.mark.parametrize("setup", list(LINK_SETUPS))
async def test_export_never_follows_a_link_below_its_target(store, tmp_path, setup):
    link, exists, refused_under = LINK_SETUPS[setup]
    await store.adapters.signal("BTCUSDT", "s", "e").write_signal_data(signal_row("p1", "BTCUSDT", "s", "e"))
    await store.adapters.log().write_log_data([{"id": "l1", "priority": 1}, {"id": "l2", "priority": 2}])
    await store.adapters.memory("sig1", "notes").write_memory_data({"text": "one"}, "m1", NOW)
    await store.adapters.memory("sig2", "notes").write_memory_data({"text": "two"}, "m2", NOW)
    plain = await export_dump(store, tmp_path / "plain")
    assert plain.skipped == 0
    every = {str(p.relative_to(tmp_path / "plain")) for p in (tmp_path / "plain").rglob("*.json")}
    elsewhere = tmp_path / "elsewhere"
    if exists:
        elsewhere.mkdir()
    target = tmp_path / "target"
    (target / link).parent.mkdir(parents=True, exist_ok=True)
    (target / link).symlink_to(elsewhere, target_is_directory=True)
    report = await export_dump(store, target)
    assert not exists or list(elsewhere.iterdir()) == [], list(elsewhere.rglob("*"))
    assert not elsewhere.exists() or exists
    refused = {p for p in every if p.startswith(refused_under)}
    assert refused and report.skipped == len(refused), report.as_dict()
    assert all("symbolic link" in reason for _, reason in report.skipped_documents), report.skipped_documents
    written = {str(p.relative_to(target)) for p in target.rglob("*.json") if not p.is_symlink()}
    assert written == every - refused


async def test_export_replaces_a_file_link_instead_of_writing_through_it(store, tmp_path):
    await store.adapters.log().write_log_data([{"id": "l1", "priority": 1}])
    outside = tmp_path / "outside.json"
    outside.write_text("untouched")
    (tmp_path / "target/data/log/log").mkdir(parents=True)
    (tmp_path / "target/data/log/log/l1.json").symlink_to(outside)
    report = await export_dump(store, tmp_path / "target")
    assert report.written == 1 and outside.read_text() == "untouched"
    assert not (tmp_path / "target/data/log/log/l1.json").is_symlink()


async def test_export_closes_its_folder_handles(store, tmp_path, monkeypatch):
    """Files are written relative to open folder handles: a few at a time, all closed at the end."""
    from backtest_store.dump import exporter

    monkeypatch.setattr(exporter, "MAX_DIRS", 3)
    for i in range(12):
        await store.adapters.memory(f"sig{i}", "notes").write_memory_data({"n": i}, "m", NOW)
    before = len(os.listdir("/proc/self/fd"))
    report = await export_dump(store, tmp_path / "out")
    assert report.written == 12 and report.skipped == 0
    assert len(list((tmp_path / "out/memory").rglob("*.json"))) == 12
    assert len(os.listdir("/proc/self/fd")) == before


def _cli_env(servers, monkeypatch, db: str) -> None:
    monkeypatch.setenv("CC_MONGO_CONNECTION_STRING", servers.mongo_db(db))
    monkeypatch.setenv("CC_REDIS_URL", servers.redis)
    monkeypatch.setenv("BACKTEST_STORE_CACHE_PREFIX", unique("cli"))


def _drop(servers, db: str) -> None:
    import asyncio

    from pymongo import AsyncMongoClient

    async def drop() -> None:
        client: AsyncMongoClient = AsyncMongoClient(servers.mongo_db(db))
        await client.drop_database(db)
        await client.close()

    asyncio.run(drop())


def test_cli_import_into_an_empty_database_creates_our_indexes_first(servers, tmp_path, monkeypatch, capsys):
    """`migrate apply` has not run, and the database is empty: the import creates our indexes, then imports."""
    db = unique("noidx")
    _cli_env(servers, monkeypatch, db)
    dump = tmp_path / "dump"
    for i in range(3):
        write(dump, f"data/candle/binance/BTCUSDT/1m/{T0 + i * MINUTE}.json",
              {"timestamp": T0 + i * MINUTE, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 3})
    try:
        assert cli_main(["import-dump", str(dump), "--json", "--no-progress"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["adapters"]["candle"]["imported"] == 3
        assert "created the indexes" in captured.err and "goes on without them" not in captured.err

        async def indexes() -> list[str]:
            from pymongo import AsyncMongoClient
            client: AsyncMongoClient = AsyncMongoClient(servers.mongo_db(db))
            try:
                return [ix["name"] async for ix in await client[db]["candle-items"].list_indexes()]
            finally:
                await client.close()

        import asyncio
        names = asyncio.run(indexes())
        assert any(name != "_id_" for name in names), names
    finally:
        _drop(servers, db)


def test_cli_import_into_a_database_with_data_and_no_indexes_is_refused_at_once(servers, tmp_path, monkeypatch,
                                                                                capsys):
    """Data is there, our indexes are not: one line naming the command to run, exit 2, nothing written."""
    db = unique("noidx")
    _cli_env(servers, monkeypatch, db)
    dump = tmp_path / "dump"
    write(dump, f"data/candle/binance/BTCUSDT/1m/{T0}.json",
          {"timestamp": T0, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 3})

    async def seed() -> int:
        from pymongo import AsyncMongoClient
        client: AsyncMongoClient = AsyncMongoClient(servers.mongo_db(db))
        try:
            await client[db]["signal-items"].insert_one({"symbol": "X", "strategyName": "s", "exchangeName": "e"})
            return await client[db]["candle-items"].count_documents({})
        finally:
            await client.close()

    import asyncio
    try:
        asyncio.run(seed())
        assert cli_main(["import-dump", str(dump), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "migrate apply" in err and "Traceback" not in err
        assert asyncio.run(seed()) == 0  # nothing imported
    finally:
        _drop(servers, db)
