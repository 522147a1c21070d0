"""Strategy: the deferred-operations snapshot, written ahead of Signal/Schedule (spec §3.4)."""

from .base import StrategyScopedItem, context_index


class StrategyItem(StrategyScopedItem):
    class Settings:
        name = "strategy-items"
        indexes = [context_index("strategy", "symbol", "strategyName", "exchangeName")]
