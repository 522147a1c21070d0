"""Session: per-run session data, keyed by symbol and mode too (spec §3.16; fixes §7.4 D10)."""

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
