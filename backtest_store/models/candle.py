"""Candle: OHLCV keyed by exchange, symbol, interval and open time (spec §3.1). Insert-only."""

from typing import Literal

from .base import Item, context_index

Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "1d"]


class CandleItem(Item):
    symbol: str
    interval: Interval
    timestamp: int
    exchangeName: str
    open: float
    high: float
    low: float
    close: float
    volume: float

    class Settings:
        name = "candle-items"
        # The original omits exchangeName and collides across exchanges (spec §7.4 D1).
        indexes = [context_index("candle", "exchangeName", "symbol", "interval", "timestamp")]
