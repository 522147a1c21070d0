"""The simulated backtest itself: one `DemoRun` drives the adapters tick by tick and sums up what it did.

Longer than most files here on purpose: one simulation, kept whole so that its calls read in the order the
framework makes them.
"""


from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..contracts import DOCUMENTS
from .constants import (
    ATR_MINUTES,
    BREAKEVEN_AT,
    COOLDOWN_MINUTES,
    COST,
    DEFAULT_MINUTES,
    DEFAULT_MODE,
    DEFAULT_SEED,
    DEFAULT_SYMBOLS,
    DICTIONARY_NAME,
    ENTRY_OFFSET,
    FETCH_CHUNK,
    FRAME,
    INTERVAL,
    INTERVAL_BUCKET,
    LIFETIMES,
    MAX_LIFETIME,
    MAX_LOG_LINES,
    MAX_NOTIFICATIONS,
    MAX_RISK_POSITIONS,
    MAX_SIGNALS,
    MEASURE_BUCKET,
    MEMORY_BUCKET,
    MINUTE,
    MOMENTUM_LOOKBACK,
    MOMENTUM_THRESHOLD,
    PERSISTED,
    RISK,
    SCHEDULE_AWAIT_MINUTES,
    START_MS,
    STATE_BUCKET,
    STOP_LOSS,
    STRATEGY,
    TAKE_PROFIT,
    VWAP_CANDLES,
    Progress,
)
from .market import SyntheticExchange, exchange_name, round_price, symbol_names
from .payloads import iso, pnl_of, public_row, strategy_data, when_of
from .timing import InMemory, LatencyRecorder

if TYPE_CHECKING:
    from ..store import Store


@dataclass
class _Signal:
    row: dict[str, Any]  # ISignalRow / IScheduledSignalRow
    origin: dict[str, float]
    profit_levels: list[int] = field(default_factory=list)
    loss_levels: list[int] = field(default_factory=list)
    breakeven: bool = False
    partials: int = 0
    marks: dict[str, Any] = field(default_factory=dict)  # the signal's Dictionary entries


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
    """One simulated run. `store` is a `Store`, or for `simulate()` alone anything with an `adapters` factory of the
    same shape (the benchmark drives other storage designs through the same calls). `timed=False` calls the
    adapters directly, with no latency recorder in between."""

    def __init__(self, store: "Store | Any", symbols: Sequence[str], minutes: int, seed: int,
                 progress: Progress | None, mode: str = DEFAULT_MODE, *, timed: bool = True) -> None:
        self.store = store
        self.timed = timed
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
        if name not in PERSISTED[self.mode]:
            return InMemory()
        return self.timer.wrap(name, adapter) if self.timed else adapter

    def _now(self, t: int) -> int:
        self.clock = max(t, self.clock + 1)
        return self.clock

    def _id(self) -> str:
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    async def _init(self) -> None:
        """What the framework does once per context: waitForInit(initial=True), then the init reads."""
        when = when_of(START_MS)
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
        rows: list[dict[str, Any]] | None = await sym.candle.read_candles_data(limit, since, until)
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
            "id": self._id(), "type": "info", "priority": now, "createdAt": iso(t), "timestamp": t,
            "methodContext": {"exchangeName": self.exchange_name, "strategyName": STRATEGY, "frameName": self.frame},
            "executionContext": {"symbol": sym.name, "when": iso(t), "backtest": self.backtest},
            "topic": topic, "args": list(args),
        })
        # LogAdapter.usePersist(): the whole window on every line; only new ids are stored.
        await self.log.write_log_data(list(self.log_lines))

    async def _store_row(self, t: int, sig: _Signal, status: str, price: float | None, **extra: Any) -> None:
        row = {**public_row(sig.row, price if price is not None else sig.row["priceOpen"], sig.origin, sig.partials),
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
        await self.risk.write_position_data([[k, v] for k, v in self.positions.items()], when_of(t))

    # -- one tick --------------------------------------------------------------------------------------------------

    async def _tick(self, sym: _Symbol, t: int) -> None:
        atr = await self._measured_atr(sym, t)
        candles = await self._candles(sym, VWAP_CANDLES, t - VWAP_CANDLES * MINUTE)
        volume = sum(c["volume"] for c in candles) or 1.0
        vwap = round_price(sum((c["high"] + c["low"] + c["close"]) / 3 * c["volume"] for c in candles) / volume)
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
            atr: float = cached["data"]["atr"]
            return atr
        candles = await self._candles(sym, ATR_MINUTES, aligned - ATR_MINUTES * MINUTE)
        atr = round_price(sum(c["high"] - c["low"] for c in candles) / len(candles))
        await self.measure.write_measure_data({"id": key, "data": {"atr": atr, "close": candles[-1]["close"]},
                                               "removed": False}, key, when_of(t))
        return atr

    async def _hourly(self, sym: _Symbol, t: int, vwap: float) -> None:
        """`Interval.file` once per hour and symbol: the fired function saves the session (`setData`)."""
        aligned = t - t % (60 * MINUTE)
        key = f"{sym.name}_{aligned}"
        if await self.interval.read_interval_data(key) is not None:
            return
        session = {"id": ":".join([sym.name, STRATEGY, self.exchange_name, *([self.frame] if self.frame else []),
                                     self.mode]),
                   "data": {"hour": iso(aligned), "vwap": vwap, "trades": sym.trades, "wins": sym.wins,
                            "pnlPercentage": round(sym.pnl, 6)},
                   "when": t}
        await sym.session.write_session_data(session, when_of(t))
        await self.interval.write_interval_data(
            {"id": key, "data": {"vwap": vwap, "trades": sym.trades}, "when": iso(t), "removed": False}, key, when_of(t))

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
        price_open = round_price(vwap * (1 - sign * ENTRY_OFFSET))
        row: dict[str, Any] = {
            "id": str(uuid.UUID(int=sym.rng.getrandbits(128), version=4)),
            "position": position,
            "note": f"momentum {momentum * 100:+.3f}% over {MOMENTUM_LOOKBACK}m, ATR {atr}",
            "priceOpen": price_open,
            "priceTakeProfit": round_price(price_open * (1 + sign * TAKE_PROFIT)),
            "priceStopLoss": round_price(price_open * (1 - sign * STOP_LOSS)),
            "minuteEstimatedTime": sym.rng.choice(LIFETIMES),
            "cost": COST,
            "exchangeName": self.exchange_name, "strategyName": STRATEGY, "frameName": self.frame, "symbol": sym.name,
            "scheduledAt": t, "pendingAt": t, "timestamp": t, "_isScheduled": True,
            "_entry": [{"price": price_open, "cost": COST, "timestamp": t}],
            "_partial": [],
        }
        flat = {**pnl_of(row, price_open), "price": price_open, "timestamp": t}
        row["_peak"], row["_fall"] = dict(flat), dict(flat)
        sig = _Signal(row, {k: row[k] for k in ("priceOpen", "priceTakeProfit", "priceStopLoss")})
        sym.scheduled = sig
        self.counts["signals_scheduled"] += 1
        dto = {k: row[k] for k in ("id", "symbol", "position", "note", "priceOpen", "priceTakeProfit",
                                   "priceStopLoss", "minuteEstimatedTime", "cost")}
        # Write-ahead: the intent goes to Strategy before the Schedule record.
        await sym.strategy.write_strategy_data(strategy_data(createdSignal=dto))
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
        await sym.strategy.write_strategy_data(strategy_data(
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
        when = when_of(t)
        await sym.strategy.write_strategy_data(strategy_data(
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
        marks = self._wrap("dictionary", self.store.adapters.dictionary(signal_id, DICTIONARY_NAME))
        await marks.wait_for_init(True)
        await marks.read_dictionary_data()
        sig.marks = {"priceOpen": {"value": row["priceOpen"], "when": t}, "note": {"value": row["note"], "when": t}}
        await marks.write_dictionary_data(self._marks(sig, t), when)
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

    def _marks(self, sig: _Signal, t: int) -> dict[str, Any]:
        """DictionaryData: each key's value with the time it was set."""
        return {"id": f"{sig.row['id']}_{DICTIONARY_NAME}", "data": dict(sig.marks), "when": t}

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

        when = when_of(t)
        pnl = pnl_of(row, vwap)
        if pnl["pnlPercentage"] > row["_peak"]["pnlPercentage"] or pnl["pnlPercentage"] < row["_fall"]["pnlPercentage"]:
            slot = "_peak" if pnl["pnlPercentage"] > row["_peak"]["pnlPercentage"] else "_fall"
            row[slot] = {**pnl, "price": vwap, "timestamp": t}
            await sym.signal.write_signal_data(row)  # a new extreme: one Signal write (≤ 1 per tick)

        await self._levels(sym, t, sig, vwap, when)
        progress = self._progress(row, vwap, "priceTakeProfit")
        if not sig.breakeven and progress >= BREAKEVEN_AT:
            await self._breakeven(sym, t, sig, vwap, when)

        # The active ping: Recent on every one.
        public = public_row(row, vwap, sig.origin, sig.partials)
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
        await sym.strategy.write_strategy_data(strategy_data(
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
        when = when_of(t)
        pnl = pnl_of(row, price)
        sym.trades += 1
        sym.wins += pnl["pnlPercentage"] > 0
        sym.pnl += pnl["pnlPercentage"]
        self.counts["signals_closed"] += 1
        self.counts[f"closed_{reason}"] += 1
        close_row = {**row, "closeId": self._id(), "closeNote": reason}
        slot = {"take_profit": "takeProfitSignal", "stop_loss": "stopLossSignal"}.get(reason, "closedSignal")
        # Write-ahead: the close intent goes to Strategy, and only then is the Signal wiped with null.
        await sym.strategy.write_strategy_data(strategy_data(lastPendingId=signal_id, **{slot: close_row}))
        await sym.signal.write_signal_data(None)
        del self.positions[f"{STRATEGY}_{self.exchange_name}_{sym.name}"]
        await self._write_risk(t)
        await sym.partial.write_partial_data({}, signal_id, when)  # cleared on close
        await sym.breakeven.write_breakeven_data({}, signal_id, when)
        state = self._wrap("state", self.store.adapters.state(signal_id, STATE_BUCKET))
        await state.write_state_data(self._state(sig, t, "closed"), when)
        sig.marks["closeReason"] = {"value": reason, "when": t}
        marks = self._wrap("dictionary", self.store.adapters.dictionary(signal_id, DICTIONARY_NAME))
        await marks.write_dictionary_data(self._marks(sig, t), when)
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

    async def simulate(self) -> float:
        """The init reads, then every tick: the calls alone, no summary. Returns the seconds it took."""
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
        return time.perf_counter() - started

    def simulation(self) -> dict[str, Any]:
        """What the simulated strategy did: the same for a seed whatever stores its data."""
        counts = dict(self.counts)
        return {
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
        }

    async def run(self) -> dict[str, Any]:
        cache_before = self.store.cache_stats.as_dict()
        mongo_before = dict(self.store.mongo_commands.counts)
        redis_before = dict(self.store.redis_commands.counts)
        elapsed = await self.simulate()
        mongo = {k: v - mongo_before.get(k, 0) for k, v in self.store.mongo_commands.counts.items()}
        mongo = {k: v for k, v in sorted(mongo.items()) if v}
        # What the Redis server received from this store (the cache's commands, and redis-py's own on a new
        # connection), not calls to the cache.
        redis = {k: v - redis_before.get(k, 0) for k, v in self.store.redis_commands.counts.items()}
        redis = {k: v for k, v in sorted(redis.items()) if v}
        cache_after = self.store.cache_stats.as_dict()
        cache: dict[str, float] = {k: cache_after[k] - cache_before.get(k, 0) for k in cache_after}
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
                    "start": iso(START_MS), "end": iso(START_MS + self.minutes * MINUTE),
                    "ticks": self.minutes * len(self.symbols), "elapsed_s": round(elapsed, 3)},
            "simulation": self.simulation(),
            "documents": documents,
            "calls": self.timer.summary(),
            "candles": {"reads": candle_reads, "hits": counts.get("candle_hits", 0),
                        "misses": counts.get("candle_misses", 0),
                        "hit_ratio": round(counts.get("candle_hits", 0) / candle_reads, 4) if candle_reads else 0.0},
            "cache": cache,
            "mongo_commands": mongo,
            "mongo_commands_total": sum(mongo.values()),
            "redis_commands": sum(redis.values()),
            "redis_command_names": redis,
            "commands_counted": bool(self.store.settings.count_commands),
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
    cache, including `hit_ratio`), `mongo_commands` (by name), `mongo_commands_total`, `redis_commands` (what the
    Redis server received) and `redis_command_names` (the same by name); the counters cover this run only, and
    count only on a store opened with `count_commands=True` (`commands_counted` says which).
    """
    names = symbol_names(symbols) if isinstance(symbols, int) else list(symbols)
    if not names or len(set(names)) != len(names):
        raise ValueError("symbols must be distinct and non-empty")
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    if mode not in PERSISTED:
        raise ValueError(f"mode must be one of {', '.join(PERSISTED)}, got {mode!r}")
    return await DemoRun(store, names, minutes, seed, progress, mode).run()
