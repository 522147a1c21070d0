"""The figures of docs/scale-out.md: document and index-entry sizes, measured, then a year of data for N symbols.

    python benchmarks/scale.py

1. Writes one real record of each kind through the adapters (values from the fixture dump backtest-kit 19.5
   wrote: a BTCUSDT 1m candle, a closed Storage row, a Notification, a Log entry, a Measure entry, the live
   Signal), reads the stored documents back as MongoDB holds them, and measures `len(bson.encode(doc))`.
2. Measures each declared index's entry the way MongoDB's BSON index format stored keys (the key's values as a
   BSON document with empty field names), plus 8 bytes of record id: an upper bound for WiredTiger, whose
   KeyString keys are a little shorter and whose index pages are prefix-compressed.
3. Prints the arithmetic for N = 10, 100, 1000 symbols over one year of 1-minute candles, with the rates of the
   fixture dump (2 symbol/strategy pairs over 2,881 minutes).

Uses CC_MONGO_CONNECTION_STRING / CC_REDIS_* when set, otherwise embedded servers in a temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtest_store.models import (  # noqa: E402
    CandleItem, Item, LogItem, MeasureItem, NotificationItem, SignalItem, StorageItem,
)
from servers import benchmark_store  # noqa: E402

DUMP = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "backtest-kit-19.5-dump.tar.gz"
MINUTES_PER_YEAR = 365 * 24 * 60  # 525,600
# The fixture dump's backtest: 2 symbol/strategy pairs (BTCUSDT walk-long, ETHUSDT limit-short) over 2,881 minutes.
DUMP_PAIR_MINUTES = 2 * 2881
RECORD_ID = 8  # bytes of the record id each index entry points with


def dump_files() -> dict[str, Any]:
    """The first file (by name) of each kind the figures need, parsed."""
    wanted = {"candle": "dump/data/candle/synth-walk/BTCUSDT/1m/", "storage": "dump/data/storage/backtest/",
              "notification": "dump/data/notification/backtest/", "log": "dump/data/log/log/",
              "measure": "dump/data/measure/indicator_15m_0/", "signal": "dump/data/signal/"}
    found: dict[str, Any] = {}
    counts = {kind: 0 for kind in ("storage", "notification", "log")}
    with tarfile.open(DUMP) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members:
            for kind, prefix in wanted.items():
                if member.name.startswith(prefix):
                    if kind in counts:
                        counts[kind] += 1
                    if kind not in found:
                        data = archive.extractfile(member)
                        assert data is not None
                        found[kind] = json.loads(data.read())
    found["counts"] = counts
    return found


def index_entry(doc: dict[str, Any], fields: list[str]) -> int:
    """The key's values as a BSON document with empty field names, plus the record id."""
    elements = b"".join(bson.encode({"": doc.get(f)})[4:-1] for f in fields)
    return 4 + len(elements) + 1 + RECORD_ID


async def measure_documents() -> tuple[dict[type[Item], dict[str, int]], dict[str, int]]:
    files = dump_files()
    when = datetime(2025, 3, 2, tzinfo=timezone.utc)
    sizes: dict[type[Item], dict[str, int]] = {}
    async with benchmark_store() as store:
        a = store.adapters
        await a.candle("BTCUSDT", "1m", "binance").write_candles_data([files["candle"]])
        await a.storage(True).write_storage_data([files["storage"]])
        await a.notification(True).write_notification_data([files["notification"]])
        await a.log().write_log_data([files["log"]])
        measure = files["measure"]
        await a.measure("indicator_15m_0").write_measure_data(measure["data"], measure["id"], when)
        signal = files["signal"]
        await a.signal(signal["symbol"], signal["strategyName"], signal["exchangeName"]).write_signal_data(signal)
        for model in (CandleItem, StorageItem, NotificationItem, LogItem, MeasureItem, SignalItem):
            doc = await store.database[model.collection_name()].find_one({})
            assert doc is not None
            entry = {"document": len(bson.encode(doc)), "_id_": index_entry(doc, ["_id"])}
            for index in model.declared_indexes():
                spec = index.document
                entry[spec["name"]] = index_entry(doc, list(spec["key"].keys()))
            sizes[model] = entry
    return sizes, files["counts"]


def gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def report(sizes: dict[type[Item], dict[str, int]], counts: dict[str, int]) -> None:
    print("## Measured sizes (bytes)\n")
    print("| collection | document | index entries |")
    print("|---|---|---|")
    for model, entry in sizes.items():
        indexes = ", ".join(f"`{name}` {size}" for name, size in entry.items() if name != "document")
        print(f"| `{model.collection_name()}` | {entry['document']} | {indexes} |")

    per_minute = {kind: count / DUMP_PAIR_MINUTES for kind, count in counts.items()}
    print("\n## Rates of the fixture dump, per symbol/strategy pair\n")
    for kind, rate in per_minute.items():
        print(f"- {kind}: {counts[kind]} / {DUMP_PAIR_MINUTES} minutes = {rate:.5f} a minute, "
              f"{rate * MINUTES_PER_YEAR:,.0f} a year")

    def row_bytes(model: type[Item]) -> tuple[int, int]:
        entry = sizes[model]
        return entry["document"], sum(size for name, size in entry.items() if name != "document")

    print("\n## One year, N symbols (one strategy each)\n")
    print("| N | candles (1m) | candle data | candle indexes | signals (Storage rows) | notifications | "
          "log rows (dump rate / one a minute) | row sets: data + indexes |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (10, 100, 1000):
        candles = n * MINUTES_PER_YEAR
        doc, idx = row_bytes(CandleItem)
        signals = n * per_minute["storage"] * MINUTES_PER_YEAR
        notes = n * per_minute["notification"] * MINUTES_PER_YEAR
        logs_dump, logs_tick = n * per_minute["log"] * MINUTES_PER_YEAR, n * MINUTES_PER_YEAR
        rows = sum(count * sum(row_bytes(model)) for count, model in (
            (signals, StorageItem), (notes, NotificationItem), (logs_dump, LogItem)))
        print(f"| {n:,} | {candles:,} | {gb(candles * doc)} | {gb(candles * idx)} | {signals:,.0f} | "
              f"{notes:,.0f} | {logs_dump:,.0f} / {logs_tick:,} | {gb(rows)} |")


def main() -> None:
    sizes, counts = asyncio.run(measure_documents())
    report(sizes, counts)


if __name__ == "__main__":
    main()
