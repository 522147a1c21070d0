"""Session: per-run session data, keyed by symbol and mode too."""

from .base import PayloadItem, context_index, field_index


class SessionItem(PayloadItem):
    strategyName: str
    exchangeName: str
    frameName: str
    symbol: str
    backtest: bool
    when: int | None = None

    class Settings:
        name = "session-items"
        indexes = [
            context_index("session", "strategyName", "exchangeName", "frameName", "symbol", "backtest"),
            field_index("session", "when"),
        ]
