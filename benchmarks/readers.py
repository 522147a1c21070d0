"""Reading stored candles into pandas: our reader (`read_candles`), PyMongoArrow, and plain PyMongo, compared.

    python benchmarks/readers.py [--candles 100000] [--runs 2]

Writes CANDLES 1m candles of one symbol, then reads them all back with each reader in a fresh child process
(so that each starts from the same memory), RUNS times each. Per read it reports the child's CPU time (user +
system: the client's cost, the server runs elsewhere), the wall time (mostly the server's), and the peak
resident memory above the child's base (after imports and connecting), with the DataFrame's own size.

PyMongoArrow is optional (`pip install pymongoarrow`); without it, its line says so. Uses
CC_MONGO_CONNECTION_STRING when set, otherwise embedded servers in a temporary directory (SecantusDB, a Python
server: its wall times are not MongoDB's, the client's CPU and memory are the client's whatever the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T0 = 1740787200000
EXCHANGE, SYMBOL, INTERVAL = "bench-ex", "BTCUSDT", "1m"
READERS = ("ours", "pymongoarrow", "pymongo")
FIELDS = ("open", "high", "low", "close", "volume")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(reader: str, url: str, database: str) -> dict[str, float | int | str]:
    """One read, in this process: what it cost above the process' base."""
    import pandas as pd
    import pymongo

    match = {"exchangeName": EXCHANGE, "symbol": SYMBOL, "interval": INTERVAL}
    projection = {"_id": 0, "timestamp": 1, **{f: 1 for f in FIELDS}}
    if reader == "ours":
        from pymongo import AsyncMongoClient

        from backtest_store.analysis.frames import read_candles

        async def read() -> pd.DataFrame:
            client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True)
            try:
                await client.admin.command("ping")
                base, cpu, wall = _rss_mib(), _cpu(), time.perf_counter()
                frame = await read_candles(client[database], SYMBOL, INTERVAL, EXCHANGE)
                read.cost = (base, cpu, wall)  # type: ignore[attr-defined]
                return frame
            finally:
                await client.close()

        frame = asyncio.run(read())
        base, cpu, wall = read.cost  # type: ignore[attr-defined]
    else:
        client: pymongo.MongoClient = pymongo.MongoClient(url, tz_aware=True)
        collection = client[database]["candle-items"]
        client.admin.command("ping")
        if reader == "pymongoarrow":
            import pyarrow as pa
            from pymongoarrow.api import Schema, find_pandas_all

            schema = Schema({"timestamp": pa.int64(), **{f: pa.float64() for f in FIELDS}})
            base, cpu, wall = _rss_mib(), _cpu(), time.perf_counter()
            frame = find_pandas_all(collection, match, schema=schema, projection=projection, sort=[("timestamp", 1)])
            frame.index = pd.DatetimeIndex(frame.pop("timestamp").to_numpy("int64").view("datetime64[ms]"),
                                           name="time").tz_localize("UTC")
        else:
            base, cpu, wall = _rss_mib(), _cpu(), time.perf_counter()
            docs = list(collection.find(match, projection, sort=[("timestamp", 1)]))
            frame = pd.DataFrame(docs)
            frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True), name="time")
            del docs
        client.close()
    return {"reader": reader, "rows": len(frame), "cpu_s": _cpu() - cpu, "wall_s": time.perf_counter() - wall,
            "rss_above_base_mib": _rss_mib() - base,
            "frame_mib": float(frame.memory_usage(deep=True).sum()) / 2**20}


async def main(candles: int, runs: int) -> None:
    from servers import benchmark_store

    async with benchmark_store() as store:
        collection = store.database["candle-items"]
        started = time.perf_counter()
        for start in range(0, candles, 10_000):
            await collection.insert_many([
                {"exchangeName": EXCHANGE, "symbol": SYMBOL, "interval": INTERVAL, "timestamp": T0 + i * 60_000,
                 "open": 100.0 + i % 97, "high": 101.0 + i % 89, "low": 99.0 - i % 83, "close": 100.5 + i % 79,
                 "volume": float(i % 1000)} for i in range(start, min(start + 10_000, candles))])
        print(f"wrote {candles:,} candles in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        url, name = store.settings.mongo_url, store.database.name
        print(f"{'reader':<13} {'rows':>9} {'client CPU':>11} {'wall':>8} {'RSS above base':>15} {'DataFrame':>10}")
        for reader in READERS:
            for _ in range(runs):
                done = subprocess.run([sys.executable, __file__, "--child", reader, "--url", url, "--db", name],
                                      capture_output=True, text=True, timeout=1800)
                if done.returncode != 0:
                    last = (done.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"{reader:<13} failed: {last[:120]}")
                    break
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{reader:<13} {r['rows']:>9,} {r['cpu_s']:>9.2f} s {r['wall_s']:>6.2f} s "
                      f"{r['rss_above_base_mib']:>11.1f} MiB {r['frame_mib']:>6.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import warnings

        warnings.simplefilter("ignore")
        print(json.dumps(child(args.child, args.url, args.db)))
    else:
        asyncio.run(main(args.candles, args.runs))
