"""Schedule: the scheduled, not yet active signal, or null."""

from .base import StrategyScopedItem, context_index


class ScheduleItem(StrategyScopedItem):
    class Settings:
        name = "schedule-items"
        indexes = [context_index("schedule", "symbol", "strategyName", "exchangeName")]
