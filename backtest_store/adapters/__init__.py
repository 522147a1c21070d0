"""The 16 persistence contracts, one file each, and the factory the Store exposes as `store.adapters`."""

from __future__ import annotations

from .base import Backend
from .breakeven import BreakevenAdapter
from .candle import CandleAdapter
from .interval import IntervalAdapter
from .log import LogAdapter
from .measure import MeasureAdapter
from .memory import MemoryAdapter
from .notification import NotificationAdapter
from .partial import PartialAdapter
from .recent import RecentAdapter
from .risk import RiskAdapter
from .schedule import ScheduleAdapter
from .session import SessionAdapter
from .signal import SignalAdapter
from .state import StateAdapter
from .storage import StorageAdapter
from .strategy import StrategyAdapter


class Adapters:
    """Factories taking the contract's constructor fields in the contract's order. No I/O happens here."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def candle(self, symbol: str, interval: str, exchange_name: str) -> CandleAdapter:
        return CandleAdapter(self._backend, symbol, interval, exchange_name)

    def signal(self, symbol: str, strategy_name: str, exchange_name: str) -> SignalAdapter:
        return SignalAdapter(self._backend, symbol, strategy_name, exchange_name)

    def schedule(self, symbol: str, strategy_name: str, exchange_name: str) -> ScheduleAdapter:
        return ScheduleAdapter(self._backend, symbol, strategy_name, exchange_name)

    def strategy(self, symbol: str, strategy_name: str, exchange_name: str) -> StrategyAdapter:
        return StrategyAdapter(self._backend, symbol, strategy_name, exchange_name)

    def risk(self, risk_name: str, exchange_name: str) -> RiskAdapter:
        return RiskAdapter(self._backend, risk_name, exchange_name)

    def partial(self, symbol: str, strategy_name: str, exchange_name: str) -> PartialAdapter:
        return PartialAdapter(self._backend, symbol, strategy_name, exchange_name)

    def breakeven(self, symbol: str, strategy_name: str, exchange_name: str) -> BreakevenAdapter:
        return BreakevenAdapter(self._backend, symbol, strategy_name, exchange_name)

    def storage(self, backtest: bool) -> StorageAdapter:
        return StorageAdapter(self._backend, backtest)

    def notification(self, backtest: bool) -> NotificationAdapter:
        return NotificationAdapter(self._backend, backtest)

    def log(self) -> LogAdapter:
        return LogAdapter(self._backend)

    def measure(self, bucket: str) -> MeasureAdapter:
        return MeasureAdapter(self._backend, bucket)

    def interval(self, bucket: str) -> IntervalAdapter:
        return IntervalAdapter(self._backend, bucket)

    def memory(self, signal_id: str, bucket_name: str) -> MemoryAdapter:
        return MemoryAdapter(self._backend, signal_id, bucket_name)

    def state(self, signal_id: str, bucket_name: str) -> StateAdapter:
        return StateAdapter(self._backend, signal_id, bucket_name)

    def recent(self, symbol: str, strategy_name: str, exchange_name: str, frame_name: str,
               backtest: bool) -> RecentAdapter:
        return RecentAdapter(self._backend, symbol, strategy_name, exchange_name, frame_name, backtest)

    def session(self, strategy_name: str, exchange_name: str, frame_name: str, symbol: str,
                backtest: bool) -> SessionAdapter:
        return SessionAdapter(self._backend, strategy_name, exchange_name, frame_name, symbol, backtest)


__all__ = [
    "Adapters", "BreakevenAdapter", "CandleAdapter", "IntervalAdapter", "LogAdapter", "MeasureAdapter",
    "MemoryAdapter", "NotificationAdapter", "PartialAdapter", "RecentAdapter", "RiskAdapter", "ScheduleAdapter",
    "SessionAdapter", "SignalAdapter", "StateAdapter", "StorageAdapter", "StrategyAdapter",
]
