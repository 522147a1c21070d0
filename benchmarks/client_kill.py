"""The client killed -9 during one `write_candles_data` of 100,000 candles, then the same write rerun to the end.

    python benchmarks/client_kill.py [--candles 100000] [--kill-at 0.25]

The full-size form of `tests/test_reliability.py::test_client_killed_during_a_candle_write`, which runs 3,000
candles to stay within the test suite's time budget. It starts the embedded servers in a temporary directory
(SecantusDB with `--sync-on-commit`, valkey-server), writes the candles from a child process with one
`write_candles_data` call, SIGKILLs that child once `--kill-at` of them are stored, runs the same call again in
a new process to completion, and then counts: documents, distinct keys (duplicates), documents missing any of
the six OHLCV fields (partial) and documents differing from the candle written.

Measured on the development machine (2 cores, shared with other jobs), 100,000 candles, default `--kill-at`:
the child was killed 65.9 s into the call with 25,170 candles stored (25,303 right after the kill); the rerun
took 207.1 s and inserted 46,489, so the server went on applying about 28,200 more from the killed client's bulk
write, alongside the rerun; in the end 100,000 documents, 100,000 distinct keys, 0 duplicates, 0 partial,
0 differing from the candle written (4 min 47 s in all). The times are SecantusDB's (a Python server), never
MongoDB's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backtest_store import Store  # noqa: E402
from backtest_store.embedded import EmbeddedServers  # noqa: E402

T0 = 1704067200000  # 2024-01-01T00:00:00Z: every candle is long closed
MINUTE = 60_000
OHLCV = ("timestamp", "open", "high", "low", "close", "volume")


def candle_rows(count: int) -> list[dict[str, Any]]:
    return [{"timestamp": T0 + i * MINUTE, "open": 100.0 + i, "high": 101.5 + i, "low": 99.25 + i,
             "close": 100.5 + i, "volume": 10.0 + i % 7} for i in range(count)]


async def child(cfg: dict[str, Any]) -> None:
    store = await Store.open(mongo_url=cfg["mongo_url"], redis_url=cfg["redis_url"], flush_cache_on_open=False)
    await store.wait_ready()
    rows = candle_rows(cfg["count"])
    print("writing", flush=True)
    inserted = await store.adapters.candle("BTCUSDT", "1m", "binance").write_candles_data(rows)
    print(f"done {inserted}", flush=True)
    await store.close()


async def spawn(cfg: dict[str, Any]) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return await asyncio.create_subprocess_exec(sys.executable, __file__, "--child", json.dumps(cfg), env=env,
                                                stdout=asyncio.subprocess.PIPE)


async def main(count: int, kill_at: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="client-kill-") as tmp:
        async with EmbeddedServers(tmp) as servers:
            store = await Store.open(mongo_url=servers.mongo_url, redis_url=servers.redis_url)
            await store.wait_ready()
            await store.create_indexes()
            candles = store.database["candle-items"]
            cfg = {"mongo_url": servers.mongo_url, "redis_url": servers.redis_url, "count": count}

            proc = await spawn(cfg)
            assert proc.stdout is not None
            assert (await proc.stdout.readline()).startswith(b"writing")
            started = time.perf_counter()
            threshold = int(count * kill_at)
            while (at_kill := await candles.estimated_document_count()) < threshold:
                if proc.returncode is not None:
                    raise SystemExit(f"the client exited ({proc.returncode}) before {threshold} candles")
                await asyncio.sleep(0.2)
            proc.kill()  # SIGKILL: our own child
            await proc.wait()
            to_kill = time.perf_counter() - started
            after_kill = await candles.estimated_document_count()

            started = time.perf_counter()
            proc = await spawn(cfg)
            out, _ = await proc.communicate()
            assert proc.returncode == 0, out
            rerun = time.perf_counter() - started
            inserted = int(out.split()[-1])

            expected = {c["timestamp"]: c for c in candle_rows(count)}
            docs = [d async for d in candles.find({}, {"_id": 0})]
            keys = Counter((d["exchangeName"], d["symbol"], d["interval"], d["timestamp"]) for d in docs)
            result = {
                "candles": count, "seconds_to_kill": round(to_kill, 1), "stored_at_kill": at_kill,
                "stored_right_after_kill": after_kill, "rerun_seconds": round(rerun, 1),
                "rerun_inserted": inserted, "documents": len(docs), "distinct_keys": len(keys),
                "duplicates": sum(n - 1 for n in keys.values()),
                "partial": sum(1 for d in docs if not all(
                    isinstance(d.get(f), (int, float)) and not isinstance(d.get(f), bool) for f in OHLCV)),
                "differing": sum(1 for d in docs if {f: d.get(f) for f in OHLCV} != expected.get(d["timestamp"])),
            }
            await store.close()
            return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        asyncio.run(child(json.loads(sys.argv[2])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candles", type=int, default=100_000)
    parser.add_argument("--kill-at", type=float, default=0.25, help="fraction stored when the client is killed")
    args = parser.parse_args()
    result = asyncio.run(main(args.candles, args.kill_at))
    print(json.dumps(result, indent=2))
    ok = result["documents"] == result["distinct_keys"] == args.candles and not (
        result["duplicates"] or result["partial"] or result["differing"])
    sys.exit(0 if ok else 1)
