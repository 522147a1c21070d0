"""The synthetic exchange: a seeded random walk per symbol, so two runs with the same seed fetch the same
candles."""

from __future__ import annotations

import math
import random
from typing import Any

from .constants import MINUTE, ORIGIN_MS, START_PRICES, SYMBOL_NAMES


def exchange_name(seed: int) -> str:
    """Each seed is its own synthetic market, so candles (keyed by exchange) never mix across seeds."""
    return f"demo-exchange-{seed}"


def symbol_names(count: int) -> list[str]:
    if count < 1:
        raise ValueError("symbols must be at least 1")
    return [SYMBOL_NAMES[i] if i < len(SYMBOL_NAMES) else f"DEMO{i}USDT" for i in range(count)]


def round_price(price: float) -> float:
    # Exchange-like precision: about 7 significant digits.
    digits = max(2, 6 - int(math.floor(math.log10(abs(price)))) if price else 2)
    return round(price, digits)


class SyntheticExchange:
    """One-minute candles from a seeded random walk per symbol; candle N is the same whatever was fetched first."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._series: dict[str, list[dict[str, Any]]] = {}
        self._rng: dict[str, random.Random] = {}
        self.fetches = 0
        self.candles = 0

    def _extend(self, symbol: str, index: int) -> None:
        series = self._series.setdefault(symbol, [])
        rng = self._rng.setdefault(symbol, random.Random(f"{self.seed}/{symbol}/candles"))
        close = series[-1]["close"] if series else START_PRICES.get(symbol, 10.0 + len(symbol))
        while len(series) <= index:
            # Regimes of drift, so that the momentum strategy has something to find.
            drift = 0.00025 * math.sin(len(series) / 97.0 + rng.random() * 0.3)
            ret = rng.gauss(drift, 0.0012)
            open_ = close
            close = round_price(open_ * math.exp(ret))
            high = round_price(max(open_, close) * (1 + abs(rng.gauss(0, 0.0004))))
            low = round_price(min(open_, close) * (1 - abs(rng.gauss(0, 0.0004))))
            volume = round(rng.lognormvariate(3.0, 0.6) * 1000 / max(open_, 1e-9) ** 0.5, 4)
            series.append({"timestamp": ORIGIN_MS + len(series) * MINUTE, "open": open_, "high": high,
                           "low": low, "close": close, "volume": volume})

    def fetch(self, symbol: str, since: int, limit: int) -> list[dict[str, Any]]:
        """`limit` candles from `since` (aligned, ≥ ORIGIN), as an exchange's OHLCV endpoint would answer."""
        first = (since - ORIGIN_MS) // MINUTE
        if first < 0 or (since - ORIGIN_MS) % MINUTE:
            raise ValueError(f"the demo exchange has no candle at {since}")
        self._extend(symbol, first + limit - 1)
        self.fetches += 1
        self.candles += limit
        return [dict(c) for c in self._series[symbol][first:first + limit]]
