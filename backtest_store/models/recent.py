"""Recent: the latest active signal snapshot per context."""

from .base import StrategyScopedItem, context_index, field_index


class RecentItem(StrategyScopedItem):
    frameName: str
    backtest: bool
    when: int | None = None

    class Settings:
        name = "recent-items"
        indexes = [
            context_index("recent", "symbol", "strategyName", "exchangeName", "frameName", "backtest"),
            field_index("recent", "when"),
        ]
