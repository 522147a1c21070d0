"""Partial: profit/loss levels reached, per signal."""

from .base import StrategyScopedItem, context_index, field_index


class PartialItem(StrategyScopedItem):
    signalId: str
    when: int | None = None

    class Settings:
        name = "partial-items"
        indexes = [
            context_index("partial", "symbol", "strategyName", "exchangeName", "signalId"),
            field_index("partial", "when"),
        ]
