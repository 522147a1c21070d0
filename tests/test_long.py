"""Ints beyond JavaScript's safe integers are refused on every write path, before any I/O.

BSON would store such an int as an Int64, which the Node MongoDB driver (under mongoose, under `@backtest-kit/mongo`)
reads back as a `Long` object, not a number. `tests/test_authors_adapter.py` shows the Node side reading what is
accepted here as numbers; docs/differences.md says why refusing was chosen over rounding.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bson import Int64

from backtest_store import Store
from backtest_store.dump.jsonfile import dumps, loads
from tests.test_input import writes_nothing
from tests.zoo import T0 as NOW
from tests.zoo import T0_MS

SAFE = 2**53 - 1
CANDLE = {"timestamp": T0_MS, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.0, "volume": 3.0}

WRITES: dict[str, Callable[[Store, Any], Awaitable[Any]]] = {
    "signal": lambda s, v: s.adapters.signal("B", "s", "e").write_signal_data({"id": "x", "n": v}),
    "schedule": lambda s, v: s.adapters.schedule("B", "s", "e").write_schedule_data({"id": "x", "deep": [[{"n": v}]]}),
    "strategy": lambda s, v: s.adapters.strategy("B", "s", "e").write_strategy_data({"retryOpenCount": v}),
    "risk": lambda s, v: s.adapters.risk("r", "e").write_position_data([["k", {"openTimestamp": v}]], NOW),
    "partial": lambda s, v: s.adapters.partial("B", "s", "e").write_partial_data({"x": {"n": v}}, "x", NOW),
    "breakeven": lambda s, v: s.adapters.breakeven("B", "s", "e").write_breakeven_data({"x": {"n": v}}, "x", NOW),
    "storage": lambda s, v: s.adapters.storage(True).write_storage_data([{"id": "a"}, {"id": "b", "n": v}]),
    "notification": lambda s, v: s.adapters.notification(False).write_notification_data([{"id": "a", "n": [v]}]),
    "log": lambda s, v: s.adapters.log().write_log_data([{"id": "a", "n": v}, {"id": "b"}]),
    "measure": lambda s, v: s.adapters.measure("b").write_measure_data({"id": "k", "n": v}, "k", NOW),
    "interval": lambda s, v: s.adapters.interval("b").write_interval_data({"id": "k", "data": {"n": v}}, "k", NOW),
    "memory": lambda s, v: s.adapters.memory("sig", "b").write_memory_data({"data": {"n": v}, "removed": False},
                                                                          "m", NOW),
    "recent": lambda s, v: s.adapters.recent("B", "s", "e", "f", True).write_recent_data({"id": "x", "n": v}, NOW),
    "state": lambda s, v: s.adapters.state("sig", "b").write_state_data({"id": "x", "data": {"n": v}}, NOW),
    "session": lambda s, v: s.adapters.session("s", "e", "f", "B", True).write_session_data({"data": v}, NOW),
    "candle extra": lambda s, v: s.adapters.candle("B", "1m", "e").write_candles_data([{**CANDLE, "trades": v}]),
    "candle timestamp": lambda s, v: s.adapters.candle("B", "1m", "e").write_candles_data(
        [{**CANDLE, "timestamp": abs(v)}]),
}


@pytest.mark.parametrize("path", sorted(WRITES))
async def test_an_int_beyond_the_safe_integers_is_refused_before_any_io(store: Store, path: str) -> None:
    for value in (SAFE + 1, -(SAFE + 1), Int64(2**60), 2**63 - 1):
        error = await writes_nothing(store, lambda: WRITES[path](store, value))
        assert "9007199254740991" in str(error) and "safe-integer" in str(error), error
    # The edges themselves are stored (the candle timestamp at the edge is a closed candle of the year 287396).
    for value in (SAFE, -SAFE, Int64(SAFE)):
        if not (path == "candle timestamp" and value < 0):
            await WRITES[path](store, value)


def test_a_dump_number_beyond_the_safe_integers_is_the_double_javascript_reads_and_prints_the_same() -> None:
    # JSON.parse gives these as doubles; kept as doubles they are stored as BSON doubles, numbers on the Node side.
    text = b'[9007199254740991,9007199254740992,-9007199254740992,9007199254740993,12345678901234567890]'
    values = loads(text)
    assert [type(v) for v in values] == [int, float, float, float, float]
    assert dumps(values) == b'[9007199254740991,9007199254740992,-9007199254740992,9007199254740992,' \
                            b'12345678901234567000]'
