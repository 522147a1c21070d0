"""Candle: OHLCV keyed by exchange, symbol, interval and open time. Insert-only."""

from typing import Any, Literal

from .base import Item, context_index

Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "1d"]
OHLCV = ("timestamp", "open", "high", "low", "close", "volume")


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
    # Whatever else the exchange returned (e.g. `quoteVolume`, `trades`), kept as the file backend keeps it.
    extra: dict[str, Any] | None = None
    # The candle's own key order, only where it was not `OHLCV` followed by `extra`.
    keyOrder: list[str] | None = None

    class Settings:
        name = "candle-items"
        # The original omits exchangeName and collides across exchanges.
        indexes = [context_index("candle", "exchangeName", "symbol", "interval", "timestamp")]


def candle_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The candle object a stored document holds, as it was written (the inverse of `validation.candle`).

    The Node driver stores epoch ms past int32 as doubles: the timestamp comes back an int whoever wrote it.
    """
    candle: dict[str, Any] = {f: doc.get(f) for f in OHLCV}
    candle["timestamp"] = int(doc["timestamp"])
    extra = doc.get("extra")
    if extra:
        candle.update(extra)
    order = doc.get("keyOrder")
    if order and set(order) == set(candle):
        candle = {k: candle[k] for k in order}
    return candle
