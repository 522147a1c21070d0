"""The measured calls: what each one does, the data it needs (seeded the same for every design), and the check
that it did it (every measured read must return the data it was asked for)."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pymongo import AsyncMongoClient

from ..migrations import create_indexes
from ..repositories.repository import DIGEST, digest, encoded_row
from . import files
from .variants import Handle, Target

# A fixed instant long closed: every candle of the benchmark is final (never "still forming"), whenever it runs.
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
T0_MS = 1_704_067_200_000
MINUTE = 60_000
SYMBOL, EXCHANGE, INTERVAL = "BENCHUSDT", "bench-exchange", "1m"
STRATEGY = "bench-strategy"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str  # what a size counts
    sizes: tuple[int, ...]
    reads: bool  # its result is checked against the data it asked for


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("candle_read", "candle read", "candles", (1, 1000, 10_000), True),
    Scenario("candle_write", "candle write, all stored (new adapter)", "candles", (1, 1000, 10_000), False),
    Scenario("keyed_write", "keyed write (Risk)", "positions", (1, 10_000), False),
    Scenario("keyed_read", "keyed read (Risk, cache hit)", "positions", (1, 10_000), True),
    Scenario("storage_window", "Storage window, 0 changed", "rows", (1, 50, 10_000), False),
    Scenario("notification_window", "Notification window, 0 changed", "rows", (1, 500, 10_000), False),
    Scenario("log_window", "Log window, 1 new", "entries", (1, 1000, 10_000), False),
    Scenario("measure_list", "list Measure keys", "keys", (1, 10_000), True),
)
BY_KEY = {s.key: s for s in SCENARIOS}
# The TypeScript original caps every list at 1,000 documents: its lists are checked against that.
ORIGINAL_LIST_CAP = 1000


# -- the data ------------------------------------------------------------------------------------------------------


def candle(i: int) -> dict[str, Any]:
    price = 100.0 + (i % 977) * 0.25
    return {"timestamp": T0_MS + i * MINUTE, "open": price, "high": price + 0.5, "low": price - 0.5,
            "close": price + 0.125, "volume": 10.0 + i % 13}


def position(i: int) -> list[Any]:
    symbol = f"SYM{i}USDT"
    return [f"{STRATEGY}_{EXCHANGE}_{symbol}", {
        "strategyName": STRATEGY, "exchangeName": EXCHANGE, "frameName": "", "symbol": symbol, "position": "long",
        "priceOpen": 100.0 + i, "priceStopLoss": 99.0 + i, "priceTakeProfit": 101.5 + i, "minuteEstimatedTime": 120,
        "openTimestamp": T0_MS + i * MINUTE}]


def storage_row(size: int, i: int) -> dict[str, Any]:
    price = 100.0 + i
    pnl = {"pnlPercentage": 0.25, "priceOpen": price, "priceClose": price * 1.0025, "pnlCost": 0.25,
           "pnlEntries": 100.0}
    return {"id": f"s{size}-{i:06d}", "position": "long", "note": "momentum +0.312% over 10m", "priceOpen": price,
            "priceTakeProfit": price * 1.005, "priceStopLoss": price * 0.9965, "minuteEstimatedTime": 120,
            "cost": 100.0, "exchangeName": EXCHANGE, "strategyName": STRATEGY, "frameName": "bench-frame",
            "symbol": SYMBOL, "scheduledAt": T0_MS + i, "pendingAt": T0_MS + i, "timestamp": T0_MS + i,
            "_entry": [{"price": price, "cost": 100.0, "timestamp": T0_MS + i}], "_partial": [],
            "pnl": pnl, "status": "opened", "priority": i, "createdAt": T0_MS + i, "updatedAt": T0_MS + i}


def notification_row(size: int, i: int) -> dict[str, Any]:
    return {"id": f"n{size}-{i:06d}", "type": "signal.opened", "backtest": True, "timestamp": T0_MS + i * MINUTE,
            "createdAt": T0_MS + i, "symbol": SYMBOL, "strategyName": STRATEGY, "exchangeName": EXCHANGE,
            "frameName": "bench-frame", "signalId": f"sig-{i}", "position": "long", "priceOpen": 100.0 + i,
            "priceTakeProfit": 100.5 + i, "priceStopLoss": 99.6 + i, "minuteEstimatedTime": 120,
            "currentPrice": 100.0 + i, "note": "momentum +0.312% over 10m"}


def log_entry(size: int, i: int) -> dict[str, Any]:
    return {"id": f"l{size}-{i:07d}", "type": "info", "priority": T0_MS + i, "createdAt": "2024-01-01T00:00:00.000Z",
            "timestamp": T0_MS + i, "methodContext": {"exchangeName": EXCHANGE, "strategyName": STRATEGY,
                                                      "frameName": "bench-frame"},
            "executionContext": {"symbol": SYMBOL, "when": "2024-01-01T00:00:00.000Z", "backtest": True},
            "topic": "strategy signal opened", "args": [{"signalId": f"sig-{i}", "priceOpen": 100.0 + i}]}


def measure_entry(i: int) -> tuple[str, dict[str, Any]]:
    key = f"{SYMBOL}_{T0_MS + i * 15 * MINUTE}"
    return key, {"id": key, "data": {"atr": 0.5 + (i % 7) * 0.01, "close": 100.0 + i % 97}, "removed": False}


class Data:
    """Every row the calls use, built once per size, the same for every design."""

    def __init__(self, sizes: dict[str, tuple[int, ...]]) -> None:
        self.sizes = sizes
        self.candle_count = max([*sizes.get("candle_read", ()), *sizes.get("candle_write", ()), 1])
        self.candles = [candle(i) for i in range(self.candle_count)]
        keyed = {*sizes.get("keyed_read", ()), *sizes.get("keyed_write", ())}
        self.positions = {n: [position(i) for i in range(n)] for n in keyed}
        self.storage = {n: [storage_row(n, i) for i in range(n)] for n in sizes.get("storage_window", ())}
        self.notifications = {n: [notification_row(n, i) for i in range(n)]
                              for n in sizes.get("notification_window", ())}
        self.logs = {n: [log_entry(n, i) for i in range(n)] for n in sizes.get("log_window", ())}
        self.measures = {n: [measure_entry(i) for i in range(n)] for n in sizes.get("measure_list", ())}


def risk_name(size: int) -> str:
    return f"bench-risk-{size}"


def measure_bucket(size: int) -> str:
    return f"bench-measure-{size}_15m_0"


# -- seeding -------------------------------------------------------------------------------------------------------


async def seed(variant_key: str, target: Target, data: Data) -> None:
    """The stored state every call starts from, written directly (not through the design being measured): the
    same documents in every database (with the digests backtest-store keeps beside window rows), the same files
    in the file store."""
    if variant_key == "files":
        await _seed_files(target, data)
        return
    client: Any = AsyncMongoClient(target.mongo_url, tz_aware=True)
    try:
        db = client[target.database]
        await create_indexes(db)
        now = datetime.now(timezone.utc)
        stamp = {"createDate": now, "updatedDate": now}
        ctx = {"exchangeName": EXCHANGE, "symbol": SYMBOL, "interval": INTERVAL}
        batches: dict[str, list[dict[str, Any]]] = {
            "candle-items": [{**ctx, **c, **stamp} for c in data.candles],
            "risk-items": [{"riskName": risk_name(n), "exchangeName": EXCHANGE, "positions": rows, "when": T0_MS,
                            **stamp} for n, rows in data.positions.items()],
            "storage-items": [{"backtest": True, "signalId": r["id"], "payload": r,
                               DIGEST: digest(encoded_row(r)), **stamp} for rows in data.storage.values() for r in rows],
            "notification-items": [{"backtest": True, "notificationId": r["id"], "payload": r,
                                    DIGEST: digest(encoded_row(r)), **stamp}
                                   for rows in data.notifications.values() for r in rows],
            "log-items": [{"entryId": r["id"], "payload": r, **stamp} for rows in data.logs.values() for r in rows],
            "measure-items": [{"bucket": measure_bucket(n), "entryKey": k, "payload": v, "removed": False,
                               "when": T0_MS, **stamp} for n, entries in data.measures.items() for k, v in entries],
        }
        for name, docs in batches.items():
            for i in range(0, len(docs), 5000):
                await db[name].insert_many(docs[i:i + 5000], ordered=False)
    finally:
        await client.close()


async def _seed_files(target: Target, data: Data) -> None:
    env = files.FileEnv(target.folder, fsync=False)
    adapters = files.factories(env)
    await adapters.candle(SYMBOL, INTERVAL, EXCHANGE).write_candles_data(data.candles)
    for n, rows in data.positions.items():
        await adapters.risk(risk_name(n), EXCHANGE).write_position_data(rows, T0)
    await adapters.storage(True).write_storage_data([r for rows in data.storage.values() for r in rows])
    await adapters.notification(True).write_notification_data(
        [r for rows in data.notifications.values() for r in rows])
    await adapters.log().write_log_data([r for rows in data.logs.values() for r in rows])
    for n, entries in data.measures.items():
        measure = adapters.measure(measure_bucket(n))
        for key, value in entries:
            await measure.write_measure_data(value, key, T0)


# -- the calls -------------------------------------------------------------------------------------------------------

Call = Callable[[int], Awaitable[Any]]


class Calls:
    """For one design: each scenario's call at each size, on adapters kept as the framework keeps them (one per
    context), except `candle_write`, which asks a new adapter each time (a process that has not seen the candles)."""

    def __init__(self, data: Data) -> None:
        self.data = data
        # The Log window slides by one entry per call, whichever handle makes it: shared state.
        self._log_windows = {n: deque(rows) for n, rows in data.logs.items()}
        self._log_next = {n: len(rows) for n, rows in data.logs.items()}

    def make(self, scenario: str, size: int, handle: Handle) -> Call:
        a, data = handle.adapters, self.data
        if scenario == "candle_read":
            adapter = a.candle(SYMBOL, INTERVAL, EXCHANGE)
            return lambda _: adapter.read_candles_data(size, T0_MS, T0_MS + size * MINUTE)
        if scenario == "candle_write":
            rows = data.candles[:size]
            return lambda _: a.candle(SYMBOL, INTERVAL, EXCHANGE).write_candles_data(rows)
        if scenario in ("keyed_write", "keyed_read"):
            risk = a.risk(risk_name(size), EXCHANGE)
            positions = data.positions[size]
            if scenario == "keyed_write":
                return lambda _: risk.write_position_data(positions, T0)
            return lambda _: risk.read_position_data(T0)
        if scenario == "storage_window":
            storage, rows = a.storage(True), data.storage[size]
            return lambda _: storage.write_storage_data(rows)
        if scenario == "notification_window":
            notification, rows = a.notification(True), data.notifications[size]
            return lambda _: notification.write_notification_data(rows)
        if scenario == "log_window":
            log = a.log()
            window = self._log_windows[size]

            async def slide(_: int) -> Any:
                window.append(log_entry(size, self._log_next[size]))
                self._log_next[size] += 1
                if len(window) > size:
                    window.popleft()
                return await log.write_log_data(list(window))
            return slide
        if scenario == "measure_list":
            measure = a.measure(measure_bucket(size))

            async def listed(_: int) -> int:
                return len([key async for key in measure.list_measure_data()])
            return listed
        raise KeyError(scenario)

    def check(self, scenario: str, size: int, variant: str, result: Any) -> None:
        """Raises if a read did not return what it was asked for."""
        if scenario == "candle_read":
            ok = (result is not None and len(result) == size and int(result[0]["timestamp"]) == T0_MS
                  and int(result[-1]["timestamp"]) == T0_MS + (size - 1) * MINUTE
                  and result[-1]["close"] == self.data.candles[size - 1]["close"])
        elif scenario == "keyed_read":
            ok = isinstance(result, list) and len(result) == size and result[-1] == self.data.positions[size][-1]
        elif scenario == "measure_list":
            expected = min(size, ORIGINAL_LIST_CAP) if variant == "original" else size
            ok = result == expected
        else:
            ok = True
        if not ok:
            raise AssertionError(f"{variant}: {scenario} of {size} returned {str(result)[:200]}")
