"""Child processes for tests/test_reliability.py, run as `python -m tests.reliability_child COMMAND JSON`.

- `workload`: one OS process of the processes × tasks test. It opens its own `Store`, says `ready` on stdout,
  waits for `go` on stdin (so that every process starts its load together), runs its asyncio tasks against the
  shared keys and prints one JSON line: operations, errors, wrong reads, and the last value each task wrote to
  each key (what the parent checks the final documents against).
- `candles`: writes a list of candles with one `write_candles_data` call, saying `writing` just before the call
  (the parent kills it while the call runs) and `done N` after it.

Every value a workload writes carries `sum`, a string made of its writer, its sequence number and its key: a
read whose `sum` does not match is a torn, mixed or misplaced value.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import datetime, timezone
from typing import Any

from backtest_store import Store

TASKS = 50
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
MEASURE_KEYS = ("k0", "k1", "k2")
ROW_IDS = ("r0", "r1", "r2", "r3", "r4")
SHARED_BUCKET = "shared_1m_0"
UNIQUE_BUCKET = "unique_1m_0"
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)
# (operation, weight): reads and writes of the shared keys, plus writes of keys only one writer ever uses.
OPERATIONS = (("write_signal", 20), ("read_signal", 20), ("write_measure", 15), ("read_measure", 15),
              ("write_rows", 5), ("read_rows", 5), ("write_unique", 20))


def value(writer: str, n: int, key: str) -> dict[str, Any]:
    return {"w": writer, "n": n, "key": key, "sum": f"{writer}:{n}:{key}"}


def whole(v: Any, key: str) -> bool:
    """A value one writer wrote, in one piece, for this key."""
    return (type(v) is dict and set(v) - {"id"} == {"w", "n", "key", "sum"} and v["key"] == key
            and v["sum"] == f"{v['w']}:{v['n']}:{key}")


async def workload(cfg: dict[str, Any]) -> dict[str, Any]:
    store = await Store.open(mongo_url=cfg["mongo_url"], redis_url=cfg["redis_url"], cache_prefix=cfg["prefix"],
                             flush_cache_on_open=False)
    await store.wait_ready()
    print("ready", flush=True)
    if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        raise SystemExit("no go")
    proc = cfg["process"]
    result: dict[str, Any] = {"ops": 0, "errors": 0, "error_samples": [], "wrong_reads": 0, "wrong_samples": [],
                              "last": {}, "unique": []}

    async def task(t: int) -> None:
        rng = random.Random(f"{cfg['seed']}:{proc}:{t}")
        writer = f"p{proc}t{t}"
        written: set[str] = set()  # keys this task has written (and had acknowledged)
        names = [name for name, _ in OPERATIONS]
        weights = [w for _, w in OPERATIONS]
        for n in range(cfg["ops_per_task"]):
            op = rng.choices(names, weights)[0]
            symbol, mkey = rng.choice(SYMBOLS), rng.choice(MEASURE_KEYS)
            key = {"write_signal": f"signal/{symbol}", "read_signal": f"signal/{symbol}",
                   "write_measure": f"measure/{mkey}", "read_measure": f"measure/{mkey}"}.get(op, "storage")
            sig = store.adapters.signal(symbol, "rel", "x")
            measure = store.adapters.measure(SHARED_BUCKET)
            storage = store.adapters.storage(False)
            try:
                if op == "write_signal":
                    await sig.write_signal_data(value(writer, n, key))
                elif op == "write_measure":
                    await measure.write_measure_data(value(writer, n, key), mkey, WHEN)
                elif op == "write_rows":
                    rows = [{"id": rid, **value(writer, n, f"storage/{rid}")} for rid in ROW_IDS]
                    await storage.write_storage_data(rows)
                elif op == "write_unique":
                    ukey = f"{writer}-{n}"
                    await store.adapters.measure(UNIQUE_BUCKET).write_measure_data(value(writer, n, ukey), ukey,
                                                                                   WHEN)
                    result["unique"].append(ukey)
                elif op in ("read_signal", "read_measure"):
                    got = await (sig.read_signal_data() if op == "read_signal" else measure.read_measure_data(mkey))
                    # Nothing ever deletes: once this task's write was acknowledged, the key cannot read empty.
                    if (got is None and key in written) or (got is not None and not whole(got, key)):
                        result["wrong_reads"] += 1
                        result["wrong_samples"] = (result["wrong_samples"] + [f"{key}: {got!r:.200}"])[:5]
                else:  # read_rows
                    rows = await storage.read_storage_data()
                    ids = [r.get("id") for r in rows]
                    if (len(ids) != len(set(ids)) or not set(ids) <= set(ROW_IDS)
                            or ("storage" in written and len(ids) != len(ROW_IDS))
                            or not all(whole(r, f"storage/{r.get('id')}") for r in rows)):
                        result["wrong_reads"] += 1
                        result["wrong_samples"] = (result["wrong_samples"] + [f"rows: {rows!r:.200}"])[:5]
            except Exception as exc:  # every failure is counted and reported, none is fatal to the run
                result["errors"] += 1
                result["error_samples"] = (result["error_samples"] + [f"{op}: {type(exc).__name__}: {exc}"])[:5]
            else:
                if op.startswith("write_") and op != "write_unique":
                    written.add(key)
                    if op == "write_rows":
                        for rid in ROW_IDS:
                            result["last"].setdefault(f"storage/{rid}", {})[writer] = n
                    else:
                        result["last"].setdefault(key, {})[writer] = n
            result["ops"] += 1

    await asyncio.gather(*(task(t) for t in range(TASKS)))
    await store.close()
    return result


async def candles(cfg: dict[str, Any]) -> None:
    store = await Store.open(mongo_url=cfg["mongo_url"], redis_url=cfg["redis_url"], cache_prefix=cfg["prefix"],
                             flush_cache_on_open=False)
    await store.wait_ready()
    rows = candle_rows(cfg["count"])
    print("writing", flush=True)
    inserted = await store.adapters.candle("BTCUSDT", "1m", "binance").write_candles_data(rows)
    print(f"done {inserted}", flush=True)
    await store.close()


T0 = 1704067200000  # 2024-01-01T00:00:00Z: every candle is closed long ago
MINUTE = 60_000


def candle_rows(count: int) -> list[dict[str, Any]]:
    return [{"timestamp": T0 + i * MINUTE, "open": 100.0 + i, "high": 101.5 + i, "low": 99.25 + i,
             "close": 100.5 + i, "volume": 10.0 + i % 7} for i in range(count)]


def main() -> None:
    command, cfg = sys.argv[1], json.loads(sys.argv[2])
    if command == "workload":
        print(json.dumps(asyncio.run(workload(cfg))), flush=True)
    elif command == "candles":
        asyncio.run(candles(cfg))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
