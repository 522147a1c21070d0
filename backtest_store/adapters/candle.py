"""Candle: insert-only, read as one range query, `None` unless every candle is there."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import validation
from ..errors import InvalidInput
from ..models import CandleItem
from ..models.candle import candle_of
from .base import Adapter, Backend

MAX_BATCH = 100_000
_CANDLE = {"_id": 0, "timestamp": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1, "extra": 1,
           "keyOrder": 1}


class CandleAdapter(Adapter):
    model = CandleItem
    # Seconds since the epoch, like time.time: when a candle closes after it, the candle is still forming. An
    # instance may be given another clock (tests do).
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, backend: Backend, symbol: str, interval: str, exchange_name: str) -> None:
        super().__init__(backend, symbol=validation.context_str("symbol", symbol),
                         interval=validation.interval(interval),
                         exchangeName=validation.context_str("exchange_name", exchange_name))
        self._step = validation.INTERVAL_MINUTES[interval] * 60_000

    async def read_candles_data(self, limit: int, since_timestamp: int,
                                until_timestamp: int) -> list[dict[str, Any]] | None:
        limit = validation.integer("limit", limit, minimum=0)
        since = validation.integer("since_timestamp", since_timestamp, minimum=0)
        validation.integer("until_timestamp", until_timestamp)  # unused, as in the default (API compatibility)
        if limit == 0:
            return []
        last = validation.integer("the window's last timestamp", since + (limit - 1) * self._step)
        # One round trip for any window the framework asks for (≤ 1000): the limit lets the server close the
        # cursor with the first batch.
        found = {doc["timestamp"]: doc async for doc in self._repo.iterate(
            {**self._context, "timestamp": {"$gte": since, "$lte": last}}, _CANDLE, batch_size=min(limit, MAX_BATCH),
            limit=limit)}
        expected = range(since, last + 1, self._step)
        # Never fill gaps and never return neighbours: the framework refetches on None.
        if any(ts not in found for ts in expected):
            return None
        return [candle_of(found[ts]) for ts in expected]

    async def write_candles_data(self, candles: list[dict[str, Any]]) -> int:
        """Returns how many candles were new. A candle still forming (close time after now) is skipped."""
        if type(candles) not in (list, tuple):
            raise InvalidInput(f"candles must be a list, got {type(candles).__name__}")
        rows = [validation.candle(c, i) for i, c in enumerate(candles)]
        now_ms = int(self.clock() * 1000)
        items = []
        for row in rows:
            ts = row.pop("timestamp")  # the key travels in the filter, the rest is set on insert only
            if not validation.forming(ts, self._context["interval"], now_ms):
                items.append(({**self._context, "timestamp": ts}, row))
        return (await self._repo.insert_missing(items)).inserted
