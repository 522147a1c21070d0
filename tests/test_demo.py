"""The demo: a deterministic simulated backtest through every adapter, and its CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from backtest_store import Store
from backtest_store.cli.demo import render
from backtest_store.demo import LIVE_ONLY, PERSISTED, run_demo
from backtest_store.contracts import DOCUMENTS, NAMES
from tests.zoo import OpenStore, unique

COLLECTIONS = [model.collection_name() for model in DOCUMENTS]
SECTIONS = ("run", "simulation", "documents", "calls", "candles", "cache", "mongo_commands",
            "mongo_commands_total", "redis_commands")
SERVER_ENV = ("CC_MONGO_CONNECTION_STRING", "CC_REDIS_URL", "CC_REDIS_HOST", "CC_REDIS_PORT", "CC_REDIS_USER",
              "CC_REDIS_PASSWORD", "BACKTEST_STORE_CACHE_PREFIX")


async def snapshot(store: Store) -> dict[str, list[str]]:
    """Every stored document without `_id` and the wall-clock timestamps, in a canonical order."""
    out = {}
    for name in COLLECTIONS:
        docs = store.database[name].find({}, {"_id": 0, "createDate": 0, "updatedDate": 0})
        out[name] = sorted([json.dumps(doc, sort_keys=True, default=str) async for doc in docs])
    return out


def assert_summary_shape(summary: dict[str, Any]) -> None:
    for section in SECTIONS:
        assert section in summary, section
    assert set(summary["documents"]) == set(COLLECTIONS)
    assert summary["calls"]
    for name, stats in summary["calls"].items():
        assert stats["calls"] >= 1, name
        assert 0 <= stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"], name
    for method in ("candle.read_candles_data", "notification.write_notification_data", "log.write_log_data"):
        assert method in summary["calls"]
    assert 0.0 <= summary["cache"]["hit_ratio"] <= 1.0
    assert 0.0 <= summary["candles"]["hit_ratio"] <= 1.0
    assert summary["mongo_commands"] and summary["mongo_commands_total"] == sum(summary["mongo_commands"].values())
    assert summary["redis_commands"] > 0


async def test_live_mode_fills_every_collection(store: Store) -> None:
    summary = await run_demo(store, symbols=2, minutes=300, seed=7, mode="live")

    assert_summary_shape(summary)
    empty = [name for name, count in summary["documents"].items() if count == 0]
    assert not empty, f"the demo stored nothing in {empty}"
    sim = summary["simulation"]
    assert sim["signals_opened"] >= 1 and sim["signals_closed"] >= 1 and sim["signals_scheduled"] >= 1
    assert sim["exchange_fetches"] >= 1 and summary["candles"]["misses"] >= 1
    # Every adapter took part, each through its own methods.
    adapters = {name.split(".")[0] for name in summary["calls"]}
    assert adapters == set(NAMES), sorted(adapters)
    assert summary["run"]["mode"] == "live" and sorted(summary["run"]["persisted"]) == sorted(NAMES)
    marks = await store.database["dictionary-items"].find_one({"payload.data.closeReason": {"$exists": True}})
    assert marks is not None and set(marks["payload"]["data"]) == {"priceOpen", "note", "closeReason"}
    assert summary["cache"]["hits"] > 0
    # Live contexts have no frame (the framework passes frameName ""), and the rows say live.
    recent = await store.database["recent-items"].find_one({})
    assert recent is not None and recent["frameName"] == "" and recent["backtest"] is False
    session = await store.database["session-items"].find_one({})
    assert session is not None and session["payload"]["id"].endswith(":live")


async def test_backtest_mode_writes_what_the_framework_writes_in_a_backtest(store: Store) -> None:
    summary = await run_demo(store, symbols=2, minutes=300, seed=7)

    assert_summary_shape(summary)
    assert summary["run"]["mode"] == "backtest"
    live_only = {f"{name}-items" for name in LIVE_ONLY}
    assert {name for name, count in summary["documents"].items() if count} == set(COLLECTIONS) - live_only
    assert {name.split(".")[0] for name in summary["calls"]} == set(PERSISTED["backtest"])
    assert summary["simulation"]["signals_closed"] >= 1  # the strategy still trades; only what is stored differs
    session = await store.database["session-items"].find_one({})
    assert session is not None and session["frameName"] == "demo-frame" and session["backtest"] is True

    text = io.StringIO()
    render(summary, Console(file=text, width=120))
    for title in ("Documents per collection", "Adapter calls", "Caches", "Commands issued", "mode: backtest"):
        assert title in text.getvalue()


async def test_demo_is_deterministic(open_store: OpenStore) -> None:
    first, second, other = [await open_store(fresh=True) for _ in range(3)]
    a = await run_demo(first, symbols=2, minutes=180, seed=11)
    b = await run_demo(second, symbols=2, minutes=180, seed=11)
    await run_demo(other, symbols=2, minutes=180, seed=12)

    assert a["documents"] == b["documents"]
    assert a["simulation"] == b["simulation"]
    same = await snapshot(first)
    assert same == await snapshot(second)
    different = await snapshot(other)
    assert different != same
    closes = [[doc["close"] async for doc in s.database["candle-items"].find({"symbol": "BTCUSDT"}).sort("timestamp")]
              for s in (first, other)]
    assert closes[0] and closes[1] and closes[0] != closes[1]


async def test_second_run_duplicates_nothing(store: Store) -> None:
    first = await run_demo(store, symbols=2, minutes=240, seed=3)
    before = {name: await store.database[name].count_documents({}) for name in COLLECTIONS}
    second = await run_demo(store, symbols=2, minutes=240, seed=3)
    after = {name: await store.database[name].count_documents({}) for name in COLLECTIONS}

    assert after == before
    assert second["documents"] == first["documents"]
    # Candles are insert-only: the second run finds every one and never calls the exchange.
    assert second["candles"]["misses"] == 0 and second["simulation"]["exchange_fetches"] == 0
    assert "candle.write_candles_data" not in second["calls"]
    # The init reads see the first run's rows.
    assert second["simulation"]["restored"] == {"storage_rows": before["storage-items"],
                                                "notifications": before["notification-items"],
                                                "log_entries": before["log-items"]}


def _command() -> list[str]:
    script = Path(sys.executable).with_name("backtest-store")
    return [str(script)] if script.exists() else [sys.executable, "-m", "backtest_store"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV}
    env.update(extra)
    return env


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*_command(), "demo", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


async def test_cli_json_on_configured_servers(servers: Any, tmp_path: Path) -> None:
    database, prefix = unique("democli"), unique("bts")
    mongo_url = servers.mongo_db(database)
    env = _env(CC_MONGO_CONNECTION_STRING=mongo_url, CC_REDIS_URL=servers.redis, BACKTEST_STORE_CACHE_PREFIX=prefix)
    try:
        # A fresh database has no indexes: the demo runs, and tells the user to create them.
        proc = _run_cli(["--symbols", "1", "--minutes", "90", "--seed", "5", "--mode", "live", "--json"], env, tmp_path)
        summary = json.loads(proc.stdout)  # stdout is the JSON and nothing else
        assert_summary_shape(summary)
        assert summary["servers"]["mode"] == "configured"
        assert summary["run"]["symbols"] == ["BTCUSDT"] and summary["run"]["minutes"] == 90
        assert summary["run"]["mode"] == "live" and summary["documents"]["strategy-items"] == 1
        assert summary["documents"]["candle-items"] > 0
        assert "migrate apply" in proc.stderr
        assert not (tmp_path / ".backtest-store").exists()  # no embedded server was started
    finally:
        cleanup = await Store.open(mongo_url=mongo_url, redis_url=servers.redis, cache_prefix=prefix)
        await cleanup.mongo.drop_database(database)
        await cleanup.flush_cache()
        await cleanup.close()


@pytest.mark.servers  # the CLI (or Store.local) starts embedded servers of its own
def test_cli_embedded_default_twice(tmp_path: Path) -> None:
    args = ["--symbols", "1", "--minutes", "60", "--data-dir", "tmp", "--json"]
    runs = [json.loads(_run_cli(args, _env(), tmp_path).stdout) for _ in range(2)]

    assert (tmp_path / "tmp" / "mongo").is_dir()
    for summary in runs:
        assert summary["servers"]["mode"] == "embedded"
        assert_summary_shape(summary)
    assert runs[0]["documents"]["candle-items"] > 0
    assert runs[1]["documents"] == runs[0]["documents"]
    assert runs[1]["simulation"]["exchange_fetches"] == 0
