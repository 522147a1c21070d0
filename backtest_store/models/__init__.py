"""One Beanie Document per collection; collection and field names are the TypeScript original's. The tuple of
them all is `contracts.DOCUMENTS`, derived from the registry."""

from .base import Item, PayloadItem, SoftDeleteItem, StrategyScopedItem
from .breakeven import BreakevenItem
from .candle import CandleItem
from .dictionary import DictionaryItem
from .interval import IntervalItem
from .log import LogItem
from .measure import MeasureItem
from .memory import MemoryItem
from .notification import NotificationItem
from .partial import PartialItem
from .recent import RecentItem
from .risk import RiskItem
from .schedule import ScheduleItem
from .session import SessionItem
from .signal import SignalItem
from .state import StateItem
from .storage import StorageItem
from .strategy import StrategyItem

__all__ = [
    "BreakevenItem", "CandleItem", "DictionaryItem", "IntervalItem", "Item", "LogItem", "MeasureItem", "MemoryItem",
    "NotificationItem", "PartialItem", "PayloadItem", "RecentItem", "RiskItem", "ScheduleItem", "SessionItem",
    "SignalItem", "SoftDeleteItem", "StateItem", "StorageItem", "StrategyItem", "StrategyScopedItem",
]
