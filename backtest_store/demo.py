"""A deterministic simulated backtest that drives the 16 adapters the way backtest-kit calls them.

`await run_demo(store, symbols=3, minutes=2000, seed=42)` replays `minutes` one-minute ticks for each symbol,
starting at a fixed historical instant (`START`), and returns a summary dict (see `run_demo`).

What is simulated:
- a synthetic exchange: a seeded random walk per symbol, so two runs with the same seed fetch the same candles;
- per tick and symbol, the VWAP read of 5 one-minute candles; on a miss the exchange client fetches a chunk of
  up to 1000 candles, writes the whole array and reads again;
- `Cache.file` (Measure) and `Interval.file` (Interval): read on every call, write on a miss;
- a strategy whose signals go through schedule → activation → pending → close (or cancel on timeout), with
  Strategy written ahead of every Signal/Schedule write, Risk rewritten on each open/close, Partial and Breakeven
  levels, Memory and State per signal, Session per symbol, Recent on every active ping;
- Storage (window of ≤50 rows), Notification (≤500) and Log (≤1000, append-only ids) written whole on every
  signal event (partial-level notifications are left out: each notification rewrites the whole window).

Every identifier and every timestamp inside a payload comes from the seed and the logical clock, never from the
wall clock, so a second run over the same database rewrites the same keys with the same payloads. Each run
replays the backtest from scratch: the init reads (storage, notifications, log, recent, session, risk, memory)
are issued and timed as the framework does, but their results do not seed the simulation.

Latency is measured here, around each adapter call, not inside the library.
"""

from __future__ import annotations

import inspect
import math
import random
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import validation
from .models import DOCUMENTS

if TYPE_CHECKING:
    from .store import Store

START = datetime(2024, 3, 1, tzinfo=timezone.utc)  # fixed, long closed: the runs are reproducible
START_MS = validation.when_ms(START)
MINUTE = 60_000
ORIGIN_MS = START_MS - 60 * MINUTE  # the demo exchange's history starts an hour before the frame
INTERVAL = "1m"

STRATEGY = "demo-momentum"
FRAME = "demo-frame"  # live runs have no frame: the framework passes frameName ""
RISK = "demo-risk"

# What backtest-kit persists in each mode. In a backtest it keeps the open position, the deferred-action
# snapshot, risk and partial/breakeven levels in memory; only a live session writes them, so that a restart
# can restore them. The rest is written in both modes (Storage, Notification, Log, Recent, Memory, State and
# Session once their persistence is enabled, as the demo has it).
BOTH = ("candle", "measure", "interval", "storage", "notification", "log", "recent", "memory", "state", "session")
LIVE_ONLY = ("signal", "schedule", "strategy", "risk", "partial", "breakeven")
PERSISTED = {"backtest": BOTH, "live": BOTH + LIVE_ONLY}
DEFAULT_MODE = "backtest"

DEFAULT_SYMBOLS = 3
DEFAULT_MINUTES = 1440
DEFAULT_SEED = 42

# The framework's defaults (CC_AVG_PRICE_CANDLES_COUNT, CC_MAX_CANDLES_PER_REQUEST, CC_MAX_SIGNALS, ...).
VWAP_CANDLES = 5
FETCH_CHUNK = 1000
MAX_SIGNALS = 50
MAX_NOTIFICATIONS = 500
MAX_LOG_LINES = 1000
SCHEDULE_AWAIT_MINUTES = 30

# The demo strategy.
MOMENTUM_LOOKBACK = 10
MOMENTUM_THRESHOLD = 0.003
ENTRY_OFFSET = 0.0005
TAKE_PROFIT = 0.005
STOP_LOSS = 0.0035
BREAKEVEN_AT = 40  # percent of the way to the take profit
COOLDOWN_MINUTES = 120
MAX_RISK_POSITIONS = 2  # across symbols, one shared risk profile
ATR_MINUTES = 15
COST = 100.0
LIFETIMES = (60, 90, 120, 180)  # minuteEstimatedTime choices
MAX_LIFETIME = max(LIFETIMES)

MEASURE_BUCKET = "demo-atr_15m_0"  # Cache.file bucket: <name>_<interval>_<instanceIndex>
INTERVAL_BUCKET = "demo-hourly_1h_1"  # Interval.file bucket
MEMORY_BUCKET = "demo-journal"
STATE_BUCKET = "demo-trade"

SYMBOL_NAMES = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT",
                "LINKUSDT", "DOTUSDT")
START_PRICES = {"BTCUSDT": 61_500.0, "ETHUSDT": 3_400.0, "SOLUSDT": 128.0, "BNBUSDT": 410.0, "XRPUSDT": 0.62,
                "ADAUSDT": 0.71, "DOGEUSDT": 0.12, "AVAXUSDT": 39.0, "LINKUSDT": 19.5, "DOTUSDT": 9.4}

Progress = Callable[[int, int], None]


def exchange_name(seed: int) -> str:
    """Each seed is its own synthetic market, so candles (keyed by exchange) never mix across seeds."""
    return f"demo-exchange-{seed}"


def symbol_names(count: int) -> list[str]:
    if count < 1:
        raise ValueError("symbols must be at least 1")
    return [SYMBOL_NAMES[i] if i < len(SYMBOL_NAMES) else f"DEMO{i}USDT" for i in range(count)]


def _iso(ms: int) -> str:
    return validation.js_iso(validation.ms_to_datetime(ms))


_when = validation.ms_to_datetime


def _round(price: float) -> float:
    # Exchange-like precision: about 7 significant digits.
    digits = max(2, 6 - int(math.floor(math.log10(abs(price)))) if price else 2)
    return round(price, digits)


# -- latency ------------------------------------------------------------------------------------------------------


class LatencyRecorder:
    """Wall time of each adapter call, by `<adapter>.<method>`."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)

    def wrap(self, name: str, adapter: Any) -> Any:
        return _Timed(name, adapter, self)

    def summary(self) -> dict[str, dict[str, float | int]]:
        out = {}
        for name in sorted(self.samples):
            values = sorted(self.samples[name])
            out[name] = {
                "calls": len(values),
                "p50_ms": round(_percentile(values, 0.50) * 1000, 3),
                "p99_ms": round(_percentile(values, 0.99) * 1000, 3),
                "max_ms": round(values[-1] * 1000, 3),
                "total_ms": round(sum(values) * 1000, 1),
            }
        return out


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest rank."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class _InMemory:
    """An adapter the framework does not persist in this mode: every call is accepted and nothing is stored."""

    def __getattr__(self, attr: str) -> Any:
        async def ignored(*args: Any, **kwargs: Any) -> None:
            return None
        return ignored


class _Timed:
    """A proxy timing every coroutine method, and every `list_*` iteration from first to last item."""

    def __init__(self, name: str, adapter: Any, recorder: LatencyRecorder) -> None:
        self._name, self._adapter, self._recorder = name, adapter, recorder

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._adapter, attr)
        key = f"{self._name}.{attr}"
        samples = self._recorder.samples[key]
        if inspect.iscoroutinefunction(target):
            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await target(*args, **kwargs)
                finally:
                    samples.append(time.perf_counter() - started)
            return timed
        if attr.startswith("list_"):
            async def listed(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                started = time.perf_counter()
                try:
                    async for item in target(*args, **kwargs):
                        yield item
                finally:
                    samples.append(time.perf_counter() - started)
            return listed
        return target


# -- the synthetic exchange ---------------------------------------------------------------------------------------


class SyntheticExchange:
    """One-minute candles from a seeded random walk per symbol; candle N is the same whatever was fetched first."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._series: dict[str, list[dict[str, Any]]] = {}
        self._rng: dict[str, random.Random] = {}
        self.fetches = 0
        self.candles = 0

    def _extend(self, symbol: str, index: int) -> None:
        series = self._series.setdefault(symbol, [])
        rng = self._rng.setdefault(symbol, random.Random(f"{self.seed}/{symbol}/candles"))
        close = series[-1]["close"] if series else START_PRICES.get(symbol, 10.0 + len(symbol))
        while len(series) <= index:
            # Regimes of drift, so that the momentum strategy has something to find.
            drift = 0.00025 * math.sin(len(series) / 97.0 + rng.random() * 0.3)
            ret = rng.gauss(drift, 0.0012)
            open_ = close
            close = _round(open_ * math.exp(ret))
            high = _round(max(open_, close) * (1 + abs(rng.gauss(0, 0.0004))))
            low = _round(min(open_, close) * (1 - abs(rng.gauss(0, 0.0004))))
            volume = round(rng.lognormvariate(3.0, 0.6) * 1000 / max(open_, 1e-9) ** 0.5, 4)
            series.append({"timestamp": ORIGIN_MS + len(series) * MINUTE, "open": open_, "high": high,
                           "low": low, "close": close, "volume": volume})

    def fetch(self, symbol: str, since: int, limit: int) -> list[dict[str, Any]]:
        """`limit` candles from `since` (aligned, ≥ ORIGIN), as an exchange's OHLCV endpoint would answer."""
        first = (since - ORIGIN_MS) // MINUTE
        if first < 0 or (since - ORIGIN_MS) % MINUTE:
            raise ValueError(f"the demo exchange has no candle at {since}")
        self._extend(symbol, first + limit - 1)
        self.fetches += 1
        self.candles += limit
        return [dict(c) for c in self._series[symbol][first:first + limit]]



# -- payloads -------------------------------------------------------------------------------------------


def _pnl(row: dict[str, Any], price: float) -> dict[str, float]:
    sign = 1 if row["position"] == "long" else -1
    pct = sign * (price - row["priceOpen"]) / row["priceOpen"] * 100
    return {"pnlPercentage": round(pct, 6), "priceOpen": row["priceOpen"], "priceClose": price,
            "pnlCost": round(row["cost"] * pct / 100, 6), "pnlEntries": row["cost"]}


def _public(row: dict[str, Any], price: float, origin: dict[str, float], partials: int) -> dict[str, Any]:
    """IPublicSignalRow."""
    return {
        **row,
        "originalPriceOpen": origin["priceOpen"],
        "originalPriceTakeProfit": origin["priceTakeProfit"],
        "originalPriceStopLoss": origin["priceStopLoss"],
        "partialExecuted": 0,
        "totalEntries": len(row.get("_entry", [])) or 1,
        "totalPartials": partials,
        "pnl": _pnl(row, price),
        "peakProfit": {k: v for k, v in row["_peak"].items() if k not in ("price", "timestamp")},
        "maxDrawdown": {k: v for k, v in row["_fall"].items() if k not in ("price", "timestamp")},
    }


def _strategy_data(**slots: Any) -> dict[str, Any]:
    """StrategyData, every slot empty unless given."""
    data: dict[str, Any] = {
        "pendingSignalId": None, "lastPendingId": None, "createdSignal": None, "commitQueue": [],
        "closedSignal": None, "cancelledSignal": None, "activatedSignal": None, "takeProfitSignal": None,
        "stopLossSignal": None, "retryOpenSignal": None, "retryOpenCount": 0, "retryCloseCount": 0,
        "isPaused": False,
    }
    data.update(slots)
    return data


# -- the run ------------------------------------------------------------------------------------------------------


@dataclass
class _Signal:
    row: dict[str, Any]  # ISignalRow / IScheduledSignalRow
    origin: dict[str, float]
    profit_levels: list[int] = field(default_factory=list)
    loss_levels: list[int] = field(default_factory=list)
    breakeven: bool = False
    partials: int = 0


@dataclass
class _Symbol:
    name: str
    rng: random.Random
    candle: Any
    signal: Any
    schedule: Any
    strategy: Any
    partial: Any
    breakeven: Any
    recent: Any
    session: Any
    vwaps: deque[float] = field(default_factory=lambda: deque(maxlen=MOMENTUM_LOOKBACK + 1))
    scheduled: _Signal | None = None
    pending: _Signal | None = None
    cooldown_until: int = 0
    trades: int = 0
    wins: int = 0
    pnl: float = 0.0


class DemoRun:
    def __init__(self, store: "Store", symbols: Sequence[str], minutes: int, seed: int,
                 progress: Progress | None, mode: str = DEFAULT_MODE) -> None:
        self.store = store
        self.mode = mode
        self.backtest = mode == "backtest"
        self.frame = FRAME if self.backtest else ""
        self.minutes = minutes
        self.seed = seed
        self.progress = progress
        self.timer = LatencyRecorder()
        self.exchange = SyntheticExchange(seed)
        self.exchange_name = exchange_name(seed)
        # The last candle the frame can ask for: a signal opened on the last tick reads its whole lifetime.
        self.horizon = START_MS + (minutes + MAX_LIFETIME) * MINUTE
        self.ids = random.Random(f"{seed}/ids")
        self.clock = 0  # logical Date.now(): priorities and createdAt never come from the wall clock
        self.counts: dict[str, int] = defaultdict(int)
        a, w = store.adapters, self._wrap
        self.storage = w("storage", a.storage(self.backtest))
        self.notification = w("notification", a.notification(self.backtest))
        self.log = w("log", a.log())
        self.risk = w("risk", a.risk(RISK, self.exchange_name))
        self.measure = w("measure", a.measure(MEASURE_BUCKET))
        self.interval = w("interval", a.interval(INTERVAL_BUCKET))
        self.symbols = [
            _Symbol(name=s, rng=random.Random(f"{seed}/{s}/strategy"),
                    candle=w("candle", a.candle(s, INTERVAL, self.exchange_name)),
                    signal=w("signal", a.signal(s, STRATEGY, self.exchange_name)),
                    schedule=w("schedule", a.schedule(s, STRATEGY, self.exchange_name)),
                    strategy=w("strategy", a.strategy(s, STRATEGY, self.exchange_name)),
                    partial=w("partial", a.partial(s, STRATEGY, self.exchange_name)),
                    breakeven=w("breakeven", a.breakeven(s, STRATEGY, self.exchange_name)),
                    recent=w("recent", a.recent(s, STRATEGY, self.exchange_name, self.frame, self.backtest)),
                    session=w("session", a.session(STRATEGY, self.exchange_name, self.frame, s, self.backtest)))
            for s in symbols
        ]
        self.storage_rows: dict[str, dict[str, Any]] = {}
        self.notifications: deque[dict[str, Any]] = deque(maxlen=MAX_NOTIFICATIONS)
        self.log_lines: deque[dict[str, Any]] = deque(maxlen=MAX_LOG_LINES)
        self.positions: dict[str, dict[str, Any]] = {}

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _wrap(self, name: str, adapter: Any) -> Any:
        return self.timer.wrap(name, adapter) if name in PERSISTED[self.mode] else _InMemory()

    def _now(self, t: int) -> int:
        self.clock = max(t, self.clock + 1)
        return self.clock

    def _id(self) -> str:
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    async def _init(self) -> None:
        """What the framework does once per context: waitForInit(initial=True), then the init reads."""
        when = _when(START_MS)
        for adapter in (self.storage, self.notification, self.log, self.risk, self.measure, self.interval):
            await adapter.wait_for_init(True)
        self.counts["restored_storage_rows"] = len(await self.storage.read_storage_data())
        self.counts["restored_notifications"] = len(await self.notification.read_notification_data())
        self.counts["restored_log_entries"] = len(await self.log.read_log_data())
        await self.risk.read_position_data(when)
        for sym in self.symbols:
            for adapter in (sym.candle, sym.strategy, sym.signal, sym.schedule, sym.partial, sym.breakeven,
                            sym.recent, sym.session):
                await adapter.wait_for_init(True)
            # ClientStrategy.waitForInit: Strategy first, then Signal and Schedule; Recent for the whipsaw guard.
            await sym.strategy.read_strategy_data()
            await sym.signal.read_signal_data()
            await sym.schedule.read_schedule_data()
            await sym.recent.read_recent_data()
            await sym.session.read_session_data()

    async def _candles(self, sym: _Symbol, limit: int, since: int) -> list[dict[str, Any]]:
        """ClientExchange: cache first; on a miss fetch in chunks of ≤1000, write the whole array, read again."""
        until = since + limit * MINUTE
        rows = await sym.candle.read_candles_data(limit, since, until)
        if rows is not None:
            self.counts["candle_hits"] += 1
            return rows
        self.counts["candle_misses"] += 1
        # Prefetch up to a chunk ahead, but not past what the frame can still ask for.
        fetch_from, fetch_to = since, max(until, min(since + FETCH_CHUNK * MINUTE, self.horizon))
        while fetch_from < fetch_to:
            chunk = min(FETCH_CHUNK, (fetch_to - fetch_from) // MINUTE)
            await sym.candle.write_candles_data(self.exchange.fetch(sym.name, fetch_from, chunk))
            fetch_from += chunk * MINUTE
        rows = await sym.candle.read_candles_data(limit, since, until)
        if rows is None:
            raise RuntimeError(f"{sym.name}: candles written at {since} did not read back")
        return rows

    async def _notify(self, t: int, kind: str, sym: _Symbol, signal_id: str | None, **fields: Any) -> None:
        now = self._now(t)
        row = {"id": self._id(), "type": kind, "backtest": self.backtest, "timestamp": t, "createdAt": now,
               "symbol": sym.name, "strategyName": STRATEGY, "exchangeName": self.exchange_name,
               "frameName": self.frame, **fields}
        if signal_id is not None:
            row["signalId"] = signal_id
        self.notifications.append(row)
        # NotificationPersist: the whole window on every new notification.
        await self.notification.write_notification_data(list(self.notifications))

    async def _log(self, t: int, sym: _Symbol, topic: str, *args: Any) -> None:
        now = self._now(t)
        self.log_lines.append({
            "id": self._id(), "type": "info", "priority": now, "createdAt": _iso(t), "timestamp": t,
            "methodContext": {"exchangeName": self.exchange_name, "strategyName": STRATEGY, "frameName": self.frame},
            "executionContext": {"symbol": sym.name, "when": _iso(t), "backtest": self.backtest},
            "topic": topic, "args": list(args),
        })
        # LogAdapter.usePersist(): the whole window on every line; only new ids are stored.
        await self.log.write_log_data(list(self.log_lines))

    async def _store_row(self, t: int, sig: _Signal, status: str, price: float | None, **extra: Any) -> None:
        row = {**_public(sig.row, price if price is not None else sig.row["priceOpen"], sig.origin, sig.partials),
               "createdAt": self.storage_rows.get(sig.row["id"], {}).get("createdAt", t), "updatedAt": t,
               "priority": self._now(t), "status": status, **extra}
        if price is not None:
            row["currentPrice"] = price
        self.storage_rows[sig.row["id"]] = row
        if len(self.storage_rows) > MAX_SIGNALS:
            oldest = min(self.storage_rows.values(), key=lambda r: r["priority"])
            del self.storage_rows[oldest["id"]]
        # StoragePersist: the whole window (≤ CC_MAX_SIGNALS rows) on every event.
        await self.storage.write_storage_data(list(self.storage_rows.values()))

    async def _write_risk(self, t: int) -> None:
        await self.risk.write_position_data([[k, v] for k, v in self.positions.items()], _when(t))

    # -- one tick --------------------------------------------------------------------------------------------------

    async def _tick(self, sym: _Symbol, t: int) -> None:
        atr = await self._measured_atr(sym, t)
        candles = await self._candles(sym, VWAP_CANDLES, t - VWAP_CANDLES * MINUTE)
        volume = sum(c["volume"] for c in candles) or 1.0
        vwap = _round(sum((c["high"] + c["low"] + c["close"]) / 3 * c["volume"] for c in candles) / volume)
        last = candles[-1]
        sym.vwaps.append(vwap)
        await self._hourly(sym, t, vwap)

        if sym.pending is not None:
            await self._follow_pending(sym, t, vwap, last)
        elif sym.scheduled is not None:
            await self._follow_scheduled(sym, t, vwap, last)
        elif t >= sym.cooldown_until and len(sym.vwaps) > MOMENTUM_LOOKBACK:
            momentum = vwap / sym.vwaps[0] - 1
            if abs(momentum) >= MOMENTUM_THRESHOLD:
                await self._open_schedule(sym, t, vwap, momentum, atr)

    async def _measured_atr(self, sym: _Symbol, t: int) -> float:
        """`Cache.file` around an ATR(15) on 15-minute steps: read, and on a miss compute and write."""
        aligned = t - t % (ATR_MINUTES * MINUTE)
        key = f"{sym.name}_{aligned}"
        cached = await self.measure.read_measure_data(key)
        if cached is not None:
            return cached["data"]["atr"]
        candles = await self._candles(sym, ATR_MINUTES, aligned - ATR_MINUTES * MINUTE)
        atr = _round(sum(c["high"] - c["low"] for c in candles) / len(candles))
        await self.measure.write_measure_data({"id": key, "data": {"atr": atr, "close": candles[-1]["close"]},
                                               "removed": False}, key, _when(t))
        return atr

    async def _hourly(self, sym: _Symbol, t: int, vwap: float) -> None:
        """`Interval.file` once per hour and symbol: the fired function saves the session (`setData`)."""
        aligned = t - t % (60 * MINUTE)
        key = f"{sym.name}_{aligned}"
        if await self.interval.read_interval_data(key) is not None:
            return
        session = {"id": ":".join([sym.name, STRATEGY, self.exchange_name, *([self.frame] if self.frame else []),
                                     self.mode]),
                   "data": {"hour": _iso(aligned), "vwap": vwap, "trades": sym.trades, "wins": sym.wins,
                            "pnlPercentage": round(sym.pnl, 6)},
                   "when": t}
        await sym.session.write_session_data(session, _when(t))
        await self.interval.write_interval_data(
            {"id": key, "data": {"vwap": vwap, "trades": sym.trades}, "when": _iso(t), "removed": False}, key, _when(t))

    async def _open_schedule(self, sym: _Symbol, t: int, vwap: float, momentum: float, atr: float) -> None:
        position = "long" if momentum > 0 else "short"
        sign = 1 if position == "long" else -1
        if len(self.positions) >= MAX_RISK_POSITIONS:
            self.counts["risk_rejections"] += 1
            await self._notify(t, "risk.rejection", sym, self._id(), position=position, currentPrice=vwap,
                               activePositionCount=len(self.positions), minuteEstimatedTime=60,
                               rejectionNote=f"at most {MAX_RISK_POSITIONS} open positions")
            sym.cooldown_until = t + COOLDOWN_MINUTES * MINUTE
            return
        price_open = _round(vwap * (1 - sign * ENTRY_OFFSET))
        row = {
            "id": str(uuid.UUID(int=sym.rng.getrandbits(128), version=4)),
            "position": position,
            "note": f"momentum {momentum * 100:+.3f}% over {MOMENTUM_LOOKBACK}m, ATR {atr}",
            "priceOpen": price_open,
            "priceTakeProfit": _round(price_open * (1 + sign * TAKE_PROFIT)),
            "priceStopLoss": _round(price_open * (1 - sign * STOP_LOSS)),
            "minuteEstimatedTime": sym.rng.choice(LIFETIMES),
            "cost": COST,
            "exchangeName": self.exchange_name, "strategyName": STRATEGY, "frameName": self.frame, "symbol": sym.name,
            "scheduledAt": t, "pendingAt": t, "timestamp": t, "_isScheduled": True,
            "_entry": [{"price": price_open, "cost": COST, "timestamp": t}],
            "_partial": [],
        }
        flat = {**_pnl(row, price_open), "price": price_open, "timestamp": t}
        row["_peak"], row["_fall"] = dict(flat), dict(flat)
        sig = _Signal(row, {k: row[k] for k in ("priceOpen", "priceTakeProfit", "priceStopLoss")})
        sym.scheduled = sig
        self.counts["signals_scheduled"] += 1
        dto = {k: row[k] for k in ("id", "symbol", "position", "note", "priceOpen", "priceTakeProfit",
                                   "priceStopLoss", "minuteEstimatedTime", "cost")}
        # Write-ahead: the intent goes to Strategy before the Schedule record.
        await sym.strategy.write_strategy_data(_strategy_data(createdSignal=dto))
        await sym.schedule.write_schedule_data(row)
        await self._store_row(t, sig, "scheduled", vwap)
        await self._notify(t, "signal.scheduled", sym, row["id"], position=position, priceOpen=price_open,
                           priceTakeProfit=row["priceTakeProfit"], priceStopLoss=row["priceStopLoss"],
                           minuteEstimatedTime=row["minuteEstimatedTime"], currentPrice=vwap, note=row["note"])
        await self._log(t, sym, "strategy signal scheduled", {"signalId": row["id"], "position": position,
                                                             "priceOpen": price_open})

    async def _follow_scheduled(self, sym: _Symbol, t: int, vwap: float, last: dict[str, Any]) -> None:
        sig = sym.scheduled
        assert sig is not None
        row = sig.row
        touched = last["low"] <= row["priceOpen"] if row["position"] == "long" else last["high"] >= row["priceOpen"]
        if touched:
            await self._activate(sym, t, sig)
        elif t - row["scheduledAt"] >= SCHEDULE_AWAIT_MINUTES * MINUTE:
            await self._cancel(sym, t, sig, vwap)

    async def _cancel(self, sym: _Symbol, t: int, sig: _Signal, vwap: float) -> None:
        sym.scheduled = None
        sym.cooldown_until = t + COOLDOWN_MINUTES * MINUTE
        self.counts["signals_cancelled"] += 1
        cancel_id = self._id()
        await sym.strategy.write_strategy_data(_strategy_data(
            cancelledSignal={**sig.row, "cancelId": cancel_id, "cancelNote": "schedule timeout"}))
        await sym.schedule.write_schedule_data(None)
        await self._store_row(t, sig, "cancelled", None)
        await self._notify(t, "signal.cancelled", sym, sig.row["id"], reason="timeout", cancelId=cancel_id,
                           currentPrice=vwap, duration=(t - sig.row["scheduledAt"]) // MINUTE)
        await self._log(t, sym, "strategy signal cancelled", {"signalId": sig.row["id"], "reason": "timeout"})

    async def _activate(self, sym: _Symbol, t: int, sig: _Signal) -> None:
        sym.scheduled, sym.pending = None, sig
        self.counts["signals_opened"] += 1
        row = sig.row
        row["pendingAt"] = t
        signal_id = row["id"]
        when = _when(t)
        await sym.strategy.write_strategy_data(_strategy_data(
            pendingSignalId=signal_id, lastPendingId=signal_id,
            activatedSignal={**row, "activateId": self._id(), "activateNote": "price reached priceOpen"}))
        await sym.schedule.write_schedule_data(None)
        await sym.signal.write_signal_data(row)
        self.positions[f"{STRATEGY}_{self.exchange_name}_{sym.name}"] = {
            "strategyName": STRATEGY, "exchangeName": self.exchange_name, "frameName": self.frame, "symbol": sym.name,
            "position": row["position"], "priceOpen": row["priceOpen"], "priceStopLoss": row["priceStopLoss"],
            "priceTakeProfit": row["priceTakeProfit"], "minuteEstimatedTime": row["minuteEstimatedTime"],
            "openTimestamp": t}
        await self._write_risk(t)
        # One ClientPartial / ClientBreakeven / State / Memory instance per signal: each reads once.
        partial, breakeven = sym.partial, sym.breakeven
        await partial.read_partial_data(signal_id, when)
        await breakeven.read_breakeven_data(signal_id, when)
        state = self._wrap("state", self.store.adapters.state(signal_id, STATE_BUCKET))
        await state.wait_for_init(True)
        await state.read_state_data()
        await state.write_state_data(self._state(sig, t, "opened"), when)
        memory = self._wrap("memory", self.store.adapters.memory(signal_id, MEMORY_BUCKET))
        await memory.wait_for_init(True)
        async for _ in memory.list_memory_data():  # the BM25 index is rebuilt from a full list, once
            pass
        await memory.write_memory_data({
            "priority": self._now(t), "removed": False, "when": t,
            "data": {"position": row["position"], "priceOpen": row["priceOpen"], "note": row["note"]},
            "index": f"{sym.name} {row['position']} entry momentum {row['note']}"}, "entry", when)
        # Backtest: one getNextCandles over the signal's whole expected lifetime.
        await self._candles(sym, min(row["minuteEstimatedTime"], FETCH_CHUNK), t)
        price = row["priceOpen"]
        await self._store_row(t, sig, "opened", price)
        await self._notify(t, "signal.opened", sym, signal_id, position=row["position"], priceOpen=price,
                           priceTakeProfit=row["priceTakeProfit"], priceStopLoss=row["priceStopLoss"],
                           minuteEstimatedTime=row["minuteEstimatedTime"], currentPrice=price, note=row["note"])
        await self._log(t, sym, "strategy signal opened", {"signalId": signal_id, "priceOpen": price})

    def _state(self, sig: _Signal, t: int, phase: str) -> dict[str, Any]:
        return {"id": f"{sig.row['id']}_{STATE_BUCKET}", "when": t,
                "data": {"phase": phase, "profitLevels": list(sig.profit_levels),
                         "lossLevels": list(sig.loss_levels), "breakeven": sig.breakeven,
                         "peak": sig.row["_peak"]["pnlPercentage"], "fall": sig.row["_fall"]["pnlPercentage"]}}

    async def _follow_pending(self, sym: _Symbol, t: int, vwap: float, last: dict[str, Any]) -> None:
        sig = sym.pending
        assert sig is not None
        row = sig.row
        long = row["position"] == "long"
        if (last["low"] <= row["priceStopLoss"]) if long else (last["high"] >= row["priceStopLoss"]):
            return await self._close(sym, t, sig, row["priceStopLoss"], "stop_loss")
        if (last["high"] >= row["priceTakeProfit"]) if long else (last["low"] <= row["priceTakeProfit"]):
            return await self._close(sym, t, sig, row["priceTakeProfit"], "take_profit")
        if t - row["pendingAt"] >= row["minuteEstimatedTime"] * MINUTE:
            return await self._close(sym, t, sig, vwap, "time_expired")

        when = _when(t)
        pnl = _pnl(row, vwap)
        if pnl["pnlPercentage"] > row["_peak"]["pnlPercentage"] or pnl["pnlPercentage"] < row["_fall"]["pnlPercentage"]:
            slot = "_peak" if pnl["pnlPercentage"] > row["_peak"]["pnlPercentage"] else "_fall"
            row[slot] = {**pnl, "price": vwap, "timestamp": t}
            await sym.signal.write_signal_data(row)  # a new extreme: one Signal write (≤ 1 per tick)

        await self._levels(sym, t, sig, vwap, when)
        progress = self._progress(row, vwap, "priceTakeProfit")
        if not sig.breakeven and progress >= BREAKEVEN_AT:
            await self._breakeven(sym, t, sig, vwap, when)

        # The active ping: Recent on every one.
        public = _public(row, vwap, sig.origin, sig.partials)
        await sym.recent.write_recent_data({**public, "timestamp": t}, when)

    @staticmethod
    def _progress(row: dict[str, Any], price: float, target: str) -> float:
        distance = row[target] - row["priceOpen"]
        return (price - row["priceOpen"]) / distance * 100 if distance else 0.0

    async def _levels(self, sym: _Symbol, t: int, sig: _Signal, vwap: float, when: datetime) -> None:
        """ClientPartial: each new 10% level towards TP (profit) or SL (loss) is persisted."""
        row = sig.row
        new = False
        for target, levels in (("priceTakeProfit", sig.profit_levels), ("priceStopLoss", sig.loss_levels)):
            reached = min(100, int(self._progress(row, vwap, target) // 10) * 10)
            for level in range(10, reached + 1, 10):
                if level not in levels:
                    levels.append(level)
                    new = True
        if not new:
            return
        await sym.partial.write_partial_data(
            {row["id"]: {"profitLevels": list(sig.profit_levels), "lossLevels": list(sig.loss_levels)}},
            row["id"], when)
        state = self._wrap("state", self.store.adapters.state(row["id"], STATE_BUCKET))
        await state.write_state_data(self._state(sig, t, "levels"), when)
        # The framework would also emit partial_profit/partial_loss.available here. Each notification rewrites
        # the whole window, so they are left out to keep the default run short on the embedded server.

    async def _breakeven(self, sym: _Symbol, t: int, sig: _Signal, vwap: float, when: datetime) -> None:
        row = sig.row
        sig.breakeven = True
        self.counts["breakevens"] += 1
        await sym.breakeven.write_breakeven_data({row["id"]: {"reached": True}}, row["id"], when)
        await self._notify(t, "breakeven.available", sym, row["id"], currentPrice=vwap, priceOpen=row["priceOpen"],
                           position=row["position"])
        # The user commits the breakeven: queued in Strategy first, then the Signal with its stop moved.
        await sym.strategy.write_strategy_data(_strategy_data(
            pendingSignalId=row["id"], lastPendingId=row["id"],
            commitQueue=[{"action": "breakeven", "symbol": sym.name, "backtest": self.backtest,
                          "currentPrice": vwap}]))
        row["_trailingPriceStopLoss"] = row["priceOpen"]
        row["priceStopLoss"] = row["priceOpen"]
        await sym.signal.write_signal_data(row)
        self.positions[f"{STRATEGY}_{self.exchange_name}_{sym.name}"]["priceStopLoss"] = row["priceOpen"]
        await self._write_risk(t)
        await self._notify(t, "breakeven.commit", sym, row["id"], currentPrice=vwap, priceStopLoss=row["priceOpen"])

    async def _close(self, sym: _Symbol, t: int, sig: _Signal, price: float, reason: str) -> None:
        sym.pending = None
        sym.cooldown_until = t + COOLDOWN_MINUTES * MINUTE
        row = sig.row
        signal_id = row["id"]
        when = _when(t)
        pnl = _pnl(row, price)
        sym.trades += 1
        sym.wins += pnl["pnlPercentage"] > 0
        sym.pnl += pnl["pnlPercentage"]
        self.counts["signals_closed"] += 1
        self.counts[f"closed_{reason}"] += 1
        close_row = {**row, "closeId": self._id(), "closeNote": reason}
        slot = {"take_profit": "takeProfitSignal", "stop_loss": "stopLossSignal"}.get(reason, "closedSignal")
        # Write-ahead: the close intent goes to Strategy, and only then is the Signal wiped with null.
        await sym.strategy.write_strategy_data(_strategy_data(lastPendingId=signal_id, **{slot: close_row}))
        await sym.signal.write_signal_data(None)
        del self.positions[f"{STRATEGY}_{self.exchange_name}_{sym.name}"]
        await self._write_risk(t)
        await sym.partial.write_partial_data({}, signal_id, when)  # cleared on close
        await sym.breakeven.write_breakeven_data({}, signal_id, when)
        state = self._wrap("state", self.store.adapters.state(signal_id, STATE_BUCKET))
        await state.write_state_data(self._state(sig, t, "closed"), when)
        memory = self._wrap("memory", self.store.adapters.memory(signal_id, MEMORY_BUCKET))
        entry = await memory.read_memory_data("entry")
        await memory.write_memory_data({
            "priority": self._now(t), "removed": False, "when": t,
            "data": {"reason": reason, "pnlPercentage": pnl["pnlPercentage"],
                     "entryNote": entry["data"]["note"] if entry else None},
            "index": f"{sym.name} {row['position']} exit {reason}"}, "exit", when)
        await memory.remove_memory_data("entry")  # soft delete: the entry note is retired
        await self._store_row(t, sig, "closed", price, pnl=pnl, closeReason=reason, closeTimestamp=t)
        await self._notify(t, "signal.closed", sym, signal_id, position=row["position"], priceOpen=row["priceOpen"],
                           priceClose=price, pnlPercentage=pnl["pnlPercentage"], closeReason=reason,
                           duration=(t - row["pendingAt"]) // MINUTE, currentPrice=price)
        await self._log(t, sym, "strategy signal closed", {"signalId": signal_id, "reason": reason,
                                                          "pnlPercentage": pnl["pnlPercentage"]})

    # -- driver ----------------------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        cache_before = self.store.cache_stats.as_dict()
        mongo_before = dict(self.store.mongo_commands.counts)
        started = time.perf_counter()
        await self._init()
        # Symbols advance in lock-step on one clock (they share the risk profile and the windows); the order
        # within a tick is fixed, so the run is deterministic.
        for i in range(self.minutes):
            t = START_MS + i * MINUTE
            for sym in self.symbols:
                await self._tick(sym, t)
            if self.progress is not None:
                self.progress(i + 1, self.minutes)
        elapsed = time.perf_counter() - started
        mongo = {k: v - mongo_before.get(k, 0) for k, v in self.store.mongo_commands.counts.items()}
        mongo = {k: v for k, v in sorted(mongo.items()) if v}
        cache_after = self.store.cache_stats.as_dict()
        cache = {k: cache_after[k] - cache_before.get(k, 0) for k in cache_after}
        looked = cache["hits"] + cache["misses"] + cache["stale"]
        cache["hit_ratio"] = round(cache["hits"] / looked, 4) if looked else 0.0
        candle_reads = self.counts["candle_hits"] + self.counts["candle_misses"]
        documents = {}
        for model in DOCUMENTS:  # after the command snapshot, so the counts do not count themselves
            name = model.collection_name()
            documents[name] = await self.store.database[name].estimated_document_count()
        counts = dict(self.counts)
        return {
            "run": {"symbols": [s.name for s in self.symbols], "minutes": self.minutes, "seed": self.seed,
                    "interval": INTERVAL, "exchange": self.exchange_name, "strategy": STRATEGY, "frame": self.frame,
                    "mode": self.mode, "persisted": sorted(PERSISTED[self.mode]),
                    "start": _iso(START_MS), "end": _iso(START_MS + self.minutes * MINUTE),
                    "ticks": self.minutes * len(self.symbols), "elapsed_s": round(elapsed, 3)},
            "simulation": {
                "signals_scheduled": counts.get("signals_scheduled", 0),
                "signals_opened": counts.get("signals_opened", 0),
                "signals_closed": counts.get("signals_closed", 0),
                "signals_cancelled": counts.get("signals_cancelled", 0),
                "close_reasons": {k.removeprefix("closed_"): v for k, v in sorted(counts.items())
                                  if k.startswith("closed_")},
                "breakevens": counts.get("breakevens", 0),
                "risk_rejections": counts.get("risk_rejections", 0),
                "exchange_fetches": self.exchange.fetches,
                "candles_fetched": self.exchange.candles,
                "restored": {"storage_rows": counts.get("restored_storage_rows", 0),
                             "notifications": counts.get("restored_notifications", 0),
                             "log_entries": counts.get("restored_log_entries", 0)},
                "pnl_percentage": {s.name: round(s.pnl, 4) for s in self.symbols},
            },
            "documents": documents,
            "calls": self.timer.summary(),
            "candles": {"reads": candle_reads, "hits": counts.get("candle_hits", 0),
                        "misses": counts.get("candle_misses", 0),
                        "hit_ratio": round(counts.get("candle_hits", 0) / candle_reads, 4) if candle_reads else 0.0},
            "cache": cache,
            "mongo_commands": mongo,
            "mongo_commands_total": sum(mongo.values()),
            "redis_commands": cache["commands"],
        }


async def run_demo(store: "Store", *, symbols: int | Sequence[str] = DEFAULT_SYMBOLS, minutes: int = DEFAULT_MINUTES,
                   seed: int = DEFAULT_SEED, progress: Progress | None = None,
                   mode: str = DEFAULT_MODE) -> dict[str, Any]:
    """Run the simulated backtest on `store` and return the summary.

    `mode` is `backtest` or `live`: the adapters backtest-kit persists in that mode are the ones written
    (`PERSISTED`); the summary's `run.persisted` lists them. `symbols` is a count (names from a fixed list) or the
    names themselves. `progress(done, total)` is called
    after every minute of the frame. The summary has the sections `run`, `simulation`, `documents` (estimated
    document count per collection), `calls` (per `<adapter>.<method>`: calls, p50_ms, p99_ms, max_ms,
    total_ms), `candles` (candle cache hits and misses as the framework sees them), `cache` (the Redis id
    cache, including `hit_ratio`), `mongo_commands` (by name), `mongo_commands_total` and `redis_commands`;
    the counters cover this run only.
    """
    names = symbol_names(symbols) if isinstance(symbols, int) else list(symbols)
    if not names or len(set(names)) != len(names):
        raise ValueError("symbols must be distinct and non-empty")
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    if mode not in PERSISTED:
        raise ValueError(f"mode must be one of {', '.join(PERSISTED)}, got {mode!r}")
    return await DemoRun(store, names, minutes, seed, progress, mode).run()
