"""Figures computed from a trades DataFrame (`Analysis.trades()`): pure pandas, no I/O.

Units: `"percentage"` sums `pnl_percentage` (backtest-kit's own reports add percentages the same way);
`"cost"` sums `pnl_cost`, the profit in the quote currency. A trade without a pnl in that unit adds nothing.

`win_rate`, `profit_factor` and `max_drawdown` are backtest-kit's (its Heat rows, see `stats.py` and
docs/statistics.md): a zero pnl is neither a win nor a loss, the profit factor is None without a win or without a
loss, and the drawdown is of compounded equity marked to each trade's worst intra-trade pnl, in % of the peak.
`max_drawdown_points` is the drawdown of the summed pnl (`equity_of`), in the unit's points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .stats import STDDEV_EPSILON, equity_drawdown, trades_of

UNITS = {"percentage": "pnl_percentage", "cost": "pnl_cost"}
# backtest-kit's StrategyCloseReason, always given a column in summaries; other stored reasons get one too.
CLOSE_REASONS = ("take_profit", "stop_loss", "time_expired", "closed", "liquidation")
NO_REASON = "unknown"  # the column counting closed rows without a close reason
ALL = "(all)"  # strategy and symbol of the summary's total row
EQUITY_COLUMNS = ("time", "signal_id", "strategy", "symbol", "pnl", "equity", "peak", "drawdown")
SUMMARY_FIGURES = ("trades", "wins", "losses", "win_rate", "total_pnl", "avg_pnl", "gross_profit", "gross_loss",
                   "profit_factor", "max_drawdown", "max_drawdown_points", "total_pnl_cost")


def pnl_column(unit: str) -> str:
    try:
        return UNITS[unit]
    except (KeyError, TypeError):
        raise InvalidInput(f"unit must be 'percentage' or 'cost', got {unit!r:.80}") from None


def equity_of(trades: pd.DataFrame, unit: str = "percentage") -> pd.DataFrame:
    """One row per trade in close-time order: its pnl, the cumulative `equity`, the running `peak` (from 0) and
    the `drawdown` below it (`equity - peak`, never positive)."""
    column = pnl_column(unit)
    ordered = trades.sort_values(["close_time", "signal_id"], na_position="last", kind="stable")
    pnl = ordered[column].astype("Float64").fillna(0.0).to_numpy(dtype="float64")
    equity = np.cumsum(pnl)
    peak = np.maximum.accumulate(np.maximum(equity, 0.0)) if len(equity) else equity
    return pd.DataFrame({
        "time": ordered["close_time"].to_numpy(), "signal_id": ordered["signal_id"].array,
        "strategy": ordered["strategy"].array, "symbol": ordered["symbol"].array,
        "pnl": pnl, "equity": equity, "peak": peak, "drawdown": equity - peak,
    }, columns=list(EQUITY_COLUMNS))


def max_drawdown_points(trades: pd.DataFrame, unit: str = "percentage") -> float:
    """The largest fall of the summed-pnl curve (`equity_of`) from a previous peak (or from 0), in the unit's
    points, positive; 0 if none."""
    drawdown = equity_of(trades, unit)["drawdown"]
    return abs(float(drawdown.min())) if len(drawdown) else 0.0


def max_drawdown(trades: pd.DataFrame) -> float | None:
    """backtest-kit's max drawdown, in %: compounded equity ∏(1 + r/100) over `pnl_percentage` in close order, each
    trade first marked down to its worst intra-trade pnl (`mae_percentage`), as a % of the running peak; 100 once equity
    reaches 0; None without trades."""
    pooled = trades_of(trades)
    return equity_drawdown(pooled.pnl, pooled.fall)[0] if len(pooled) else None


def profit_factor(gross_profit: float, gross_loss: float) -> float | None:
    """Gross profit over gross loss; None without a win or without a loss (backtest-kit's rule; a gross loss of at
    most 1e-9 is a float artifact, not a loss)."""
    return gross_profit / gross_loss if gross_profit > 0 and gross_loss > STDDEV_EPSILON else None


def figures(trades: pd.DataFrame, unit: str = "percentage") -> dict[str, Any]:
    """The summary figures of a set of trades (see `summary_of`)."""
    pnl = trades[pnl_column(unit)].astype("Float64").dropna().to_numpy(dtype="float64")
    wins, losses = int((pnl > 0).sum()), int((pnl < 0).sum())
    gross_profit, gross_loss = float(pnl[pnl > 0].sum()), abs(float(pnl[pnl < 0].sum()))
    cost = trades["pnl_cost"].astype("Float64")
    return {
        "trades": len(trades), "wins": wins, "losses": losses,
        "win_rate": 100.0 * wins / (wins + losses) if wins + losses else None,
        "total_pnl": float(pnl.sum()), "avg_pnl": float(pnl.mean()) if len(pnl) else None,
        "gross_profit": gross_profit, "gross_loss": gross_loss,
        "profit_factor": profit_factor(gross_profit, gross_loss),
        "max_drawdown": max_drawdown(trades), "max_drawdown_points": max_drawdown_points(trades, unit),
        "total_pnl_cost": float(cost.sum()) if cost.notna().any() else None,
    }


def _reasons(trades: pd.DataFrame) -> list[str]:
    stored = sorted(set(trades["close_reason"].dropna()) - set(CLOSE_REASONS))
    missing = [NO_REASON] if trades["close_reason"].isna().any() else []
    return [*CLOSE_REASONS, *stored, *missing]


def summary_of(trades: pd.DataFrame, unit: str = "percentage", total: bool = False) -> pd.DataFrame:
    """One row per strategy × symbol (sorted; a missing name is NA): trades, wins, losses, `win_rate` (% of the
    trades with a profit among those with a profit or a loss), `total_pnl`, `avg_pnl`, `gross_profit`,
    `gross_loss`, `profit_factor`, `max_drawdown` (backtest-kit's, %), `max_drawdown_points` (of the summed pnl),
    `total_pnl_cost`, then one count per close reason. A figure that does not exist is NA. `total=True` adds a
    last row, strategy and symbol `(all)`, over every trade."""
    pnl_column(unit)
    reasons = _reasons(trades)
    rows: list[dict[str, Any]] = []
    groups: Any = trades.groupby(["strategy", "symbol"], dropna=False, sort=True) if len(trades) else []
    for (strategy, symbol), group in groups:
        rows.append({"strategy": strategy, "symbol": symbol, **figures(group, unit), **_counts(group, reasons)})
    if total:
        rows.append({"strategy": ALL, "symbol": ALL, **figures(trades, unit), **_counts(trades, reasons)})
    frame = pd.DataFrame(rows, columns=["strategy", "symbol", *SUMMARY_FIGURES, *reasons])
    frame = frame.astype({"strategy": "string", "symbol": "string", "trades": "int64", "wins": "int64",
                          "losses": "int64", **{r: "int64" for r in reasons}})
    # float64: a missing figure is NaN, which the table, JSON and HTML writers already show as null.
    return frame.astype({c: "float64" for c in SUMMARY_FIGURES if c not in ("trades", "wins", "losses")})


def _counts(trades: pd.DataFrame, reasons: list[str]) -> dict[str, int]:
    counts = trades["close_reason"].fillna(NO_REASON).value_counts()
    return {reason: int(counts.get(reason, 0)) for reason in reasons}


__all__ = ["ALL", "CLOSE_REASONS", "EQUITY_COLUMNS", "NO_REASON", "SUMMARY_FIGURES", "UNITS", "equity_of",
           "figures", "max_drawdown", "max_drawdown_points", "profit_factor", "summary_of"]
