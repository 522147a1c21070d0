"""The persistence contracts' adapters, one file each. Their factories, `store.adapters`, are `contracts.Adapters`,
derived from the registry in backtest_store/contracts.py."""

from __future__ import annotations

from .base import Backend
from .breakeven import BreakevenAdapter
from .candle import CandleAdapter
from .dictionary import DictionaryAdapter
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

__all__ = [
    "Backend", "BreakevenAdapter", "CandleAdapter", "DictionaryAdapter", "IntervalAdapter", "LogAdapter",
    "MeasureAdapter", "MemoryAdapter", "NotificationAdapter", "PartialAdapter", "RecentAdapter", "RiskAdapter",
    "ScheduleAdapter", "SessionAdapter", "SignalAdapter", "StateAdapter", "StorageAdapter", "StrategyAdapter",
]
