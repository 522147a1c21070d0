"""`Analysis.trades()` over many closed signals: time, and memory against the DataFrame it builds.

    python benchmarks/analysis.py [--rows 100000] [--batch-size 5000]

Writes ROWS closed Storage rows shaped like backtest-kit 19.5's (a real closed row of the test fixture dump, with
its id, times and pnl varied) through the Storage adapter, then reads them back three times:
1. `trades()`, timed;
2. `trades()` under tracemalloc: the peak of Python allocations while streaming, next to the DataFrame's own size;
3. for comparison, a list of the full documents (what `trades()` avoids), under tracemalloc.

Readers compared (ours, PyMongoArrow, plain PyMongo) on candles: `python benchmarks/readers.py`.

Uses CC_MONGO_CONNECTION_STRING / CC_REDIS_* when set, otherwise embedded servers in a temporary directory.
Writing 100k rows takes minutes on the embedded SecantusDB (a Python server): its timings are not MongoDB's.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import sys
import tarfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtest_store.analysis import Analysis  # noqa: E402
from backtest_store.analysis.frames import BATCH_SIZE  # noqa: E402
from servers import benchmark_store  # noqa: E402

DUMP = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "backtest-kit-19.5-dump.tar.gz"
WRITE_BATCH = 2000
T0 = 1740787200000


def template() -> dict:
    """A closed row backtest-kit 19.5 wrote (the first one of the fixture dump's backtest storage)."""
    with tarfile.open(DUMP) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            if member.name.startswith("dump/data/storage/backtest/") and member.isfile():
                row = json.load(archive.extractfile(member))
                if row.get("status") == "closed":
                    return row
    raise SystemExit("no closed row in the fixture dump")


def rows(base: dict, start: int, count: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(start, start + count):
        row = copy.deepcopy(base)
        opened = T0 + i * 60_000
        pnl = rng.uniform(-2, 2)
        row.update(id=f"bench-{i:07d}", pendingAt=opened, scheduledAt=opened, timestamp=opened,
                   closeTimestamp=opened + 30 * 60_000, symbol=("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3],
                   strategyName=("alpha", "beta")[i % 2], closeReason=rng.choice(["take_profit", "stop_loss",
                                                                                   "time_expired"]))
        row["pnl"] = {**row["pnl"], "pnlPercentage": pnl, "pnlCost": pnl * row["cost"] / 100}
        out.append(row)
    return out


async def main(count: int, batch_size: int) -> None:
    base, rng = template(), random.Random(7)
    async with benchmark_store() as store:
        storage = store.adapters.storage(True)
        started = time.perf_counter()
        for start in range(0, count, WRITE_BATCH):
            await storage.write_storage_data(rows(base, start, min(WRITE_BATCH, count - start), rng))
            print(f"\rwritten {min(start + WRITE_BATCH, count):,} / {count:,}", end="", file=sys.stderr)
        print(f"\nwrote {count:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        analysis = Analysis(store.database, "backtest", batch_size=batch_size)

        started = time.perf_counter()
        trades = await analysis.trades()
        seconds = time.perf_counter() - started
        frame_bytes = int(trades.memory_usage(deep=True).sum())
        del trades

        tracemalloc.start()
        trades = await analysis.trades()
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del trades

        tracemalloc.start()
        documents = [doc async for doc in store.database["storage-items"].find(analysis.match)]
        _, documents_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del documents

    mib = 1024 * 1024
    print(f"trades(): {count:,} closed signals in {seconds:.2f} s ({count / seconds:,.0f} rows/s), "
          f"batch size {batch_size}")
    print(f"the DataFrame:                       {frame_bytes / mib:8.1f} MiB (memory_usage(deep=True))")
    print(f"peak while streaming trades():       {streamed_peak / mib:8.1f} MiB (tracemalloc)")
    print(f"peak of a list of the full documents: {documents_peak / mib:7.1f} MiB (what trades() avoids)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.batch_size))
