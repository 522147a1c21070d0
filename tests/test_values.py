"""Round-trip identity: any value a read returns, the matching write accepts, and gives back equal.

The values beyond plain JSON come from the real systems: PyMongo returns 64-bit integers as `bson.Int64` and BSON
dates (written by the TypeScript side through mongoose) as `datetime`; the framework's own files allow payload
keys that start with `$` or contain `.`; exchanges return candles with more fields than OHLCV.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bson import Int64
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest_store import Store
from tests.zoo import same

NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)
T0 = 1704067200000  # 2024-01-01: closed candles, whatever the wall clock says
MINUTE = 60_000

# Keys the framework's file backend stores and MongoDB's update operators would read as operators or paths.
ODD_KEYS = {"$gt": 1, "a.b": {"$in": [1, "$x"]}, "$": "$price", ".": None, "x.": {"..": [{"$set": {}}]}}


async def test_int64_and_dates_read_back_are_writable(store: Store) -> None:
    adapter = store.adapters.signal("BTCUSDT", "s", "e")
    row = {"id": "sig", "pendingAt": Int64(1767225600000), "small": Int64(5),
           "openedAt": datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=timezone.utc),
           "local": datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))}
    await adapter.write_signal_data(row)
    first = await adapter.read_signal_data()
    assert first == row and type(first["pendingAt"]) is Int64
    await adapter.write_signal_data(first)
    assert same(await adapter.read_signal_data(), first)


async def test_dollar_and_dotted_keys_are_stored_as_they_are(store: Store) -> None:
    a = store.adapters
    payload = {"id": "sig", **ODD_KEYS}
    await a.signal("B", "s", "e").write_signal_data(payload)
    assert same(await a.signal("B", "s", "e").read_signal_data(), payload)
    # What the TypeScript side (mongoose, `Schema.Types.Mixed`) reads: the same keys, nothing escaped.
    raw = await store.database["signal-items"].find_one({"symbol": "B"})
    assert raw is not None and same(raw["payload"], payload)

    memory = a.memory("sig", "bucket")
    data = {"priority": 1, "data": dict(ODD_KEYS), "removed": False, "index": "", "when": 1}
    await memory.write_memory_data(data, "m1", NOW)
    assert same(await memory.read_memory_data("m1"), data)
    await memory.remove_memory_data("m1")
    raw = await store.database["memory-items"].find_one({"memoryId": "m1"})
    assert raw is not None and raw["removed"] is True
    assert same(raw["payload"], {**data, "removed": True})  # `removed` set in place, the odd keys untouched

    rows = [{"id": "r1", "priority": 1, **ODD_KEYS}, {"id": "r2", "priority": 2, "args": [dict(ODD_KEYS)]}]
    await a.storage(False).write_storage_data(rows)
    assert sorted(await a.storage(False).read_storage_data(), key=lambda r: r["id"]) == rows
    # A re-sent window with nothing changed is recognised as unchanged, odd keys and all.
    counts = await a.storage(False)._write_rows(rows, "rows")
    assert counts.inserted == 0 and counts.modified == 0

    entries = [{"id": "l1", "priority": 1, "args": [dict(ODD_KEYS)]}]
    assert await a.log().write_log_data(entries) == 1
    assert await a.log().write_log_data([{**entries[0], "args": []}]) == 0  # first write wins
    assert same(await a.log().read_log_data(), entries)


async def test_extra_candle_fields_are_kept_in_their_order(store: Store) -> None:
    adapter = store.adapters.candle("BTCUSDT", "1m", "binance")
    candles = [
        {"timestamp": T0, "open": 1.5, "high": 2, "low": 1, "close": 1.75, "volume": 10,
         "quoteVolume": 17.5, "trades": 42},
        # An exchange that builds its objects in another order, and one with nothing extra.
        {"open": 1.75, "close": 1.5, "high": 2.5, "low": 1.25, "volume": 3, "timestamp": T0 + MINUTE, "$x": {"a.b": 1}},
        {"timestamp": T0 + 2 * MINUTE, "open": 1.5, "high": 1.5, "low": 1.5, "close": 1.5, "volume": 0},
    ]
    assert await adapter.write_candles_data(candles) == 3
    read = await adapter.read_candles_data(3, T0, T0 + 3 * MINUTE)
    assert read == candles and [list(c) for c in read] == [list(c) for c in candles]
    # The OHLCV fields stay top-level numbers for queries and for the original, which reads only those.
    raw = await store.database["candle-items"].find_one({"timestamp": T0})
    assert raw is not None and raw["open"] == 1.5 and raw["extra"] == {"quoteVolume": 17.5, "trades": 42}
    assert "keyOrder" not in raw


# -- the property: write -> read -> write -> read is the identity --------------------------------------------------

# Ints beyond JavaScript's safe integers are refused (tests/test_long.py), so none is generated.
SAFE = 2**53 - 1
MS_DATES = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                        timezones=st.just(timezone.utc)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.text(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-SAFE, SAFE), st.integers(-SAFE, SAFE).map(Int64), MS_DATES,
)
# SecantusDB (0.7.0b3) checks the arguments of these operators even inside `$literal`, so a one-key payload such
# as {"$ifNull": null} is refused there ("$ifNull needs at least two arguments"); MongoDB does not parse a
# `$literal`. Left out here, where the embedded server is the one under test; measured in the session note.
SECANTUS_PARSES_IN_LITERAL = frozenset({"$ifNull", "$indexOfArray", "$indexOfBytes", "$range", "$round", "$slice",
                                        "$trunc"})
KEYS = st.text().filter(lambda k: "\x00" not in k and k not in SECANTUS_PARSES_IN_LITERAL)
PAYLOADS = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(KEYS, inner, max_size=5)), max_leaves=25)


# Examples come from the Hypothesis profile (tests/conftest.py): 30 in a local run, 300 in CI.
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(KEYS, PAYLOADS, max_size=6), extra=st.dictionaries(KEYS, PAYLOADS, max_size=3))
async def test_write_read_is_the_identity(store: Store, data: dict[str, Any], extra: dict[str, Any]) -> None:
    a = store.adapters
    signal = a.signal("BTCUSDT", "s", "e")
    await signal.write_signal_data(data)
    first = await signal.read_signal_data()
    assert same(first, data)
    await signal.write_signal_data(first)
    assert same(await signal.read_signal_data(), first)

    interval = a.interval("b")
    record = {"id": "k", "data": data, "when": NOW, "removed": False}
    await interval.write_interval_data(record, "k", NOW)
    assert same(await interval.read_interval_data("k"), record)

    rows = [{**data, "id": "r"}]
    await a.notification(True).write_notification_data(rows)
    (row,) = await a.notification(True).read_notification_data()
    assert same(row, rows[0])
    await a.notification(True).write_notification_data([row])
    assert same(await a.notification(True).read_notification_data(), [row])

    candle = {"timestamp": T0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0,
              **{k: v for k, v in extra.items() if k not in ("timestamp", "open", "high", "low", "close", "volume")}}
    await store.database["candle-items"].delete_many({})
    await a.candle("BTCUSDT", "1m", "x").write_candles_data([candle])
    (read,) = await a.candle("BTCUSDT", "1m", "x").read_candles_data(1, T0, T0) or [None]
    assert same(read, candle)
