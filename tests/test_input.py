"""Bad input: a clear error before any I/O, and nothing written."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest

from backtest_store import InvalidInput, Store
from backtest_store.contracts import DOCUMENTS
from tests.zoo import T0 as NOW
from tests.zoo import T0_MS

OK = {"timestamp": T0_MS, "open": 1, "high": 2, "low": 0.5, "close": 1, "volume": 3}


@pytest.mark.parametrize("factory,args", [
    ("signal", ({"$ne": None}, "s", "e")),
    ("signal", ("BTC", "", "e")),
    ("signal", ("BTC", 1, "e")),
    ("schedule", ("BTC", "s", None)),
    ("candle", ("BTC", "2m", "e")),
    ("candle", ("BTC", {"$gt": ""}, "e")),
    ("risk", (["x"], "e")),
    ("storage", ("true",)),
    ("notification", (1,)),
    ("measure", ({"$where": "1"},)),
    ("memory", ("sig", b"bucket")),
    ("recent", ("BTC", "s", "e", None, True)),
    ("session", ("s", "e", "", "BTC", "live")),
])
def test_bad_context_fails_in_the_constructor(store: Store, factory: str, args: tuple) -> None:
    with pytest.raises(InvalidInput):
        getattr(store.adapters, factory)(*args)


async def writes_nothing(store: Store, call) -> InvalidInput:
    before = sum(store.mongo_commands.counts.values())
    with pytest.raises(InvalidInput) as info:
        await call()
    assert sum(store.mongo_commands.counts.values()) == before, "validation must happen before any I/O"
    for model in DOCUMENTS:
        assert await store.database[model.collection_name()].count_documents({}) == 0
    return info.value


@pytest.mark.parametrize("price", [math.nan, math.inf, -math.inf, "1.0", None, True])
async def test_non_finite_candle(store: Store, price: object) -> None:
    adapter = store.adapters.candle("BTC", "1m", "e")
    error = await writes_nothing(store, lambda: adapter.write_candles_data([OK, {**OK, "timestamp": OK["timestamp"] + 60_000, "close": price}]))
    assert "candles[1].close" in str(error)


async def test_infinities_of_both_signs_in_one_list(store: Store) -> None:
    # inf + -inf has no sum: the list is still checked candle by candle, and the first bad price named.
    adapter = store.adapters.candle("BTC", "1m", "e")
    error = await writes_nothing(store, lambda: adapter.write_candles_data([{**OK, "open": math.inf, "low": -math.inf}]))
    assert "candles[0].open" in str(error)


async def test_candle_shape(store: Store) -> None:
    adapter = store.adapters.candle("BTC", "1m", "e")
    await writes_nothing(store, lambda: adapter.write_candles_data([{k: v for k, v in OK.items() if k != "volume"}]))
    await writes_nothing(store, lambda: adapter.write_candles_data({"not": "a list"}))
    await writes_nothing(store, lambda: adapter.read_candles_data(5, "0", 0))


@pytest.mark.parametrize("value,path", [
    ({"a": [1, {"b": datetime.now()}]}, "payload.a[1].b"),
    ({"a": {1, 2}}, "payload.a"),
    ({"a": b"bytes"}, "payload.a"),
    ({"a": {3: "int key"}}, "payload.a"),
    ({"a": {"k\x00": 1}}, "payload.a"),
    ({"a": ["\ud800"]}, "payload.a[0]"),
    ({"at": datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)}, "payload.at"),
    ({"big": 2**70}, "payload.big"),
    ({"obj": object()}, "payload.obj"),
])
async def test_non_json_payload_names_the_path(store: Store, value: object, path: str) -> None:
    adapter = store.adapters.signal("BTC", "s", "e")
    error = await writes_nothing(store, lambda: adapter.write_signal_data(value))
    assert path in str(error)


async def test_oversized_document(store: Store) -> None:
    adapter = store.adapters.state("sig", "bucket")
    big = {"id": "x", "data": {"blob": "x" * (16 * 1024 * 1024)}, "when": 0}
    error = await writes_nothing(store, lambda: adapter.write_state_data(big, NOW))
    assert "16 MiB" in str(error)


async def test_when_must_be_aware(store: Store) -> None:
    await writes_nothing(store, lambda: store.adapters.state("s", "b").write_state_data({}, datetime(2026, 1, 1)))
    await writes_nothing(store, lambda: store.adapters.risk("r", "e").write_position_data([], T0_MS))
    await writes_nothing(store, lambda: store.adapters.partial("B", "s", "e").read_partial_data("sig", "2026"))


async def test_method_keys_and_rows(store: Store) -> None:
    await writes_nothing(store, lambda: store.adapters.measure("b").write_measure_data({"id": "k"}, {"$gt": ""}, NOW))
    await writes_nothing(store, lambda: store.adapters.measure("b").write_measure_data("not a dict", "k", NOW))
    await writes_nothing(store, lambda: store.adapters.memory("s", "b").remove_memory_data(None))
    await writes_nothing(store, lambda: store.adapters.partial("B", "s", "e").write_partial_data({}, "", NOW))
    # A window whose last row is bad writes none of the rows before it.
    rows = [{"id": "1"}, {"id": "2"}, {"noid": True}]
    await writes_nothing(store, lambda: store.adapters.storage(False).write_storage_data(rows))
    await writes_nothing(store, lambda: store.adapters.log().write_log_data([{"id": "1"}, {"id": "2", "x": {1, 2}}]))
    await writes_nothing(store, lambda: store.adapters.recent("B", "s", "e", "", False).write_recent_data(None, NOW))


DEEP: object = "leaf"
for _ in range(1000):
    DEEP = {"a": DEEP}

# Hostile inputs that once escaped as UnicodeEncodeError, RecursionError, OverflowError or DocumentTooLarge.
# Each must be InvalidInput, raised before any I/O, naming what is wrong.
HOSTILE = [
    ("surrogate in a context field", lambda a: a.signal("BTC\ud800", "s", "e").read_signal_data(), "symbol"),
    ("surrogate in an entry id", lambda a: a.memory("s", "b").write_memory_data({}, "m\udfff", NOW), "memoryId"),
    ("surrogate in a row id", lambda a: a.log().write_log_data([{"id": "\ud800"}]), "entries[0].id"),
    ("surrogate in a payload key", lambda a: a.state("s", "b").write_state_data({"k\ud800": 1}, NOW), "payload key"),
    ("surrogate in a payload string", lambda a: a.signal("B", "s", "e").write_signal_data({"n": ["\udc00"]}),
     "payload.n[0]"),
    ("1000 levels of nesting", lambda a: a.session("s", "e", "", "B", False).write_session_data(DEEP, NOW),
     "nested deeper than the 100 levels"),
    ("a price beyond a double", lambda a: a.candle("B", "1m", "e").write_candles_data([{**OK, "high": 10**400}]),
     "candles[0].high"),
    ("since_timestamp of 2**63", lambda a: a.candle("B", "1m", "e").read_candles_data(5, 2**63, 0),
     "since_timestamp"),
    ("limit of 2**63", lambda a: a.candle("B", "1m", "e").read_candles_data(2**63, 0, 0), "limit"),
    ("a window that ends past 2**63", lambda a: a.candle("B", "1d", "e").read_candles_data(2**40, 2**62, 0),
     "64-bit"),
    ("context and payload over 16 MiB together",
     lambda a: a.signal("B" * (9 * 1024 * 1024), "s", "e").write_signal_data({"blob": "x" * (8 * 1024 * 1024)}),
     "16 MiB"),
    ("an operator as an id", lambda a: a.interval("b").read_interval_data({"$ne": None}), "entryKey"),
]


@pytest.mark.parametrize("label,call,fragment", HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_input_is_invalid_input(store: Store, label: str, call, fragment: str) -> None:
    error = await writes_nothing(store, lambda: call(store.adapters))
    assert fragment in str(error), str(error)[:300]


async def test_implausible_candles_are_stored_as_given(store: Store) -> None:
    """A negative volume or a high below the low is the exchange's data: stored as the file backend stores it
    (backtest-kit validates candles before it caches them); only values JSON and BSON cannot carry are refused."""
    adapter = store.adapters.candle("BTC", "1m", "e")
    odd = [{**OK, "volume": -1.0}, {**OK, "timestamp": OK["timestamp"] + 60_000, "high": 1.0, "low": 2.0}]
    assert await adapter.write_candles_data(odd) == 2
    assert await adapter.read_candles_data(2, OK["timestamp"], 0) == odd


class RaisingMapping(Mapping[str, Any]):
    """A mapping that fails while BSON iterates it."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("no items here")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no iteration here")

    def __len__(self) -> int:
        return 1


def _cyclic_dict() -> dict[str, Any]:
    loop: dict[str, Any] = {"id": "c"}
    loop["self"] = loop
    return loop


def _cyclic_list() -> dict[str, Any]:
    loop: list[Any] = []
    loop.append(loop)
    return {"id": "c", "items": loop}


class Offset(tzinfo):
    """A time zone whose utcoffset() raises, or answers with an offset no datetime can have."""

    def __init__(self, offset: timedelta | None) -> None:
        self.offset = offset

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if self.offset is None:
            raise RuntimeError("no offset here")
        return self.offset

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


HOSTILE_ROWS = [
    ("1000 levels", lambda: {"id": "d", "deep": DEEP}, "nested deeper"),
    ("a cyclic dict", _cyclic_dict, "nested deeper"),
    ("a cyclic list", _cyclic_list, "nested deeper"),
    ("a mapping that raises while iterated", lambda: {"id": "m", "x": RaisingMapping()}, "RaisingMapping"),
]
ROW_WRITES = [
    ("storage", lambda a, rows: a.storage(False).write_storage_data(rows)),
    ("notification", lambda a, rows: a.notification(True).write_notification_data(rows)),
    ("log", lambda a, rows: a.log().write_log_data(rows)),
    ("keyed", lambda a, rows: a.state("s", "b").write_state_data(rows[-1], NOW)),
]


@pytest.mark.parametrize("label,row,fragment", HOSTILE_ROWS, ids=[h[0] for h in HOSTILE_ROWS])
@pytest.mark.parametrize("where,write", ROW_WRITES, ids=[w[0] for w in ROW_WRITES])
async def test_hostile_rows_are_invalid_input(store: Store, label: str, row, fragment: str, where: str,
                                              write) -> None:
    error = await writes_nothing(store, lambda: write(store.adapters, [{"id": "ok"}, row()]))
    assert fragment in str(error), str(error)[:300]


BAD_ZONES = [("utcoffset raises", Offset(None)), ("utcoffset of +25 h", Offset(timedelta(hours=25)))]


@pytest.mark.parametrize("label,zone", BAD_ZONES, ids=[z[0] for z in BAD_ZONES])
async def test_a_when_with_a_broken_time_zone_is_invalid_input(store: Store, label: str, zone: tzinfo) -> None:
    when = datetime(2026, 1, 1, tzinfo=zone)
    error = await writes_nothing(store, lambda: store.adapters.state("s", "b").write_state_data({}, when))
    assert "when" in str(error)
    await writes_nothing(store, lambda: store.adapters.signal("B", "s", "e").write_signal_data({"at": when}))
    await writes_nothing(store, lambda: store.adapters.log().write_log_data([{"id": "1", "at": when}]))
