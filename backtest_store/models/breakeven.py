"""Breakeven: whether breakeven was reached, per signal."""

from .base import StrategyScopedItem, context_index, field_index


class BreakevenItem(StrategyScopedItem):
    signalId: str
    when: int | None = None

    class Settings:
        name = "breakeven-items"
        indexes = [
            context_index("breakeven", "symbol", "strategyName", "exchangeName", "signalId"),
            field_index("breakeven", "when"),
        ]
