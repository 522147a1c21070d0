"""The framework-shaped payloads the demo writes: signal rows, public rows, the strategy snapshot; times as the
framework writes them."""

from __future__ import annotations

from typing import Any

from .. import times


def iso(ms: int) -> str:
    return times.js_iso(times.ms_to_datetime(ms))


when_of = times.ms_to_datetime


def pnl_of(row: dict[str, Any], price: float) -> dict[str, float]:
    sign = 1 if row["position"] == "long" else -1
    pct = sign * (price - row["priceOpen"]) / row["priceOpen"] * 100
    return {"pnlPercentage": round(pct, 6), "priceOpen": row["priceOpen"], "priceClose": price,
            "pnlCost": round(row["cost"] * pct / 100, 6), "pnlEntries": row["cost"]}


def public_row(row: dict[str, Any], price: float, origin: dict[str, float], partials: int) -> dict[str, Any]:
    """IPublicSignalRow."""
    return {
        **row,
        "originalPriceOpen": origin["priceOpen"],
        "originalPriceTakeProfit": origin["priceTakeProfit"],
        "originalPriceStopLoss": origin["priceStopLoss"],
        "partialExecuted": 0,
        "totalEntries": len(row.get("_entry", [])) or 1,
        "totalPartials": partials,
        "pnl": pnl_of(row, price),
        "peakProfit": {k: v for k, v in row["_peak"].items() if k not in ("price", "timestamp")},
        "maxDrawdown": {k: v for k, v in row["_fall"].items() if k not in ("price", "timestamp")},
    }


def strategy_data(**slots: Any) -> dict[str, Any]:
    """StrategyData, every slot empty unless given."""
    data: dict[str, Any] = {
        "pendingSignalId": None, "lastPendingId": None, "createdSignal": None, "commitQueue": [],
        "closedSignal": None, "cancelledSignal": None, "activatedSignal": None, "takeProfitSignal": None,
        "stopLossSignal": None, "retryOpenSignal": None, "retryOpenCount": 0, "retryCloseCount": 0,
        "isPaused": False,
    }
    data.update(slots)
    return data
