"""Latency of the hot adapter calls, and the MongoDB/Redis commands each costs.

    python benchmarks/adapters.py [--rounds N]

Uses CC_MONGO_CONNECTION_STRING / CC_REDIS_* when set (run `backtest-store migrate apply` first), otherwise
starts the embedded servers in a temporary directory. SecantusDB timings are not MongoDB's: compare the
command counts across backends, and the latencies only against the same backend.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from backtest_store import Settings, Store

T0_MS = 1767225600000


@asynccontextmanager
async def open_store():
    if Settings.configured_in_env():
        store = await Store.open()
        await store.wait_ready()
        try:
            yield store
        finally:
            await store.close()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            async with Store.embedded(tmp) as store:
                yield store


async def measure(store: Store, name: str, rounds: int, call) -> dict:
    mongo_before = sum(store.mongo_commands.counts.values())
    redis_before = store.cache_stats.commands
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "operation": name,
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
        "mongo_per_call": round((sum(store.mongo_commands.counts.values()) - mongo_before) / rounds, 2),
        "redis_per_call": round((store.cache_stats.commands - redis_before) / rounds, 2),
    }


async def main(rounds: int) -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    async with open_store() as store:
        candle = store.adapters.candle("BENCHUSDT", "1m", "bench")
        await candle.write_candles_data([{"timestamp": T0_MS + i * 60_000, "open": 1, "high": 1, "low": 1,
                                          "close": 1, "volume": 1} for i in range(rounds + 5)])
        sig = store.adapters.signal("BENCHUSDT", "bench", "bench")
        await sig.write_signal_data({"id": "x"})
        interval = store.adapters.interval("bench_1m_0")
        rows = [
            await measure(store, "candle read, limit 5", rounds,
                          lambda i: candle.read_candles_data(5, T0_MS + i * 60_000, 0)),
            await measure(store, "signal write", rounds, lambda i: sig.write_signal_data({"id": "x", "n": i})),
            await measure(store, "signal read (cache hit)", rounds, lambda i: sig.read_signal_data()),
            await measure(store, "interval write", rounds,
                          lambda i: interval.write_interval_data({"id": str(i), "data": i, "removed": False}, str(i), when)),
            await measure(store, "interval read (cache hit)", rounds, lambda i: interval.read_interval_data(str(i))),
        ]
    print(f"{'operation':28} {'p50 ms':>8} {'p99 ms':>8} {'mongo/call':>11} {'redis/call':>11}")
    for r in rows:
        print(f"{r['operation']:28} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['mongo_per_call']:>11} {r['redis_per_call']:>11}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    asyncio.run(main(parser.parse_args().rounds))
