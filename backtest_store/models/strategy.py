"""Strategy: the deferred-operations snapshot, written ahead of Signal/Schedule."""

from .base import StrategyScopedItem, context_index


class StrategyItem(StrategyScopedItem):
    class Settings:
        name = "strategy-items"
        indexes = [context_index("strategy", "symbol", "strategyName", "exchangeName")]
