"""Signal: the live open position, or null."""

from .base import StrategyScopedItem, context_index


class SignalItem(StrategyScopedItem):
    class Settings:
        name = "signal-items"
        indexes = [context_index("signal", "symbol", "strategyName", "exchangeName")]
