"""The tearsheet's tables, computed from a trades DataFrame (`Analysis.trades()`): pure pandas, no I/O.

Framework-parity statistics (win rate, Sharpe, drawdown as backtest-kit defines them...) are `metrics`'s and
appear in the tearsheet as `summary_of` gives them; what is here goes beyond them: drawdown periods, monthly
pnl, distributions, MAE/MFE, long vs short, best and worst trades, streaks, exposure, and open positions' pnl.
Pnl is summed in the unit's column, as everywhere in `analysis` (percentages add as backtest-kit's reports add).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .metrics import equity_of, figures, pnl_column

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DRAWDOWN_COLUMNS = ("start", "trough", "recovery", "depth", "duration", "trades")
# backtest-kit's defaults (CC_PERCENT_FEE, CC_PERCENT_SLIPPAGE), in %: its pnl applies slippage to both prices,
# then a fee on each side; with these, `unrealized_pnl` reproduces a stored row's `pnl` from its `priceClose`.
FEE, SLIPPAGE = 0.1, 0.1


def drawdown_periods(equity: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Each fall of the equity curve below its running peak, deepest first: `start` (the close that made the
    peak; NaT for the initial 0), `trough` (the lowest close), `recovery` (the first close back at the peak, NaT
    while under water), `depth` (positive, in the pnl unit), `duration` (start to recovery, or to the last close
    while under water) and `trades` (closes from the peak to the recovery)."""
    rows: list[dict[str, Any]] = []
    drawdown = equity["drawdown"].to_numpy(dtype="float64")
    times = pd.Series(equity["time"]).reset_index(drop=True)
    i, n = 0, len(drawdown)
    while i < n:
        if drawdown[i] >= 0:
            i += 1
            continue
        begin = i
        while i < n and drawdown[i] < 0:
            i += 1
        low = begin + int(np.argmin(drawdown[begin:i]))
        start: Any = times[begin - 1] if begin > 0 else pd.NaT
        recovery: Any = times[i] if i < n else pd.NaT
        end: Any = recovery if i < n else times[n - 1]
        rows.append({"start": start, "trough": times[low], "recovery": recovery, "depth": -float(drawdown[low]),
                     "duration": pd.NaT if start is pd.NaT else pd.Timestamp(end) - pd.Timestamp(start),
                     "trades": (i if i < n else n - 1) - begin + 1})
    frame = pd.DataFrame(rows, columns=list(DRAWDOWN_COLUMNS))
    frame = frame.sort_values("depth", ascending=False, kind="stable").reset_index(drop=True)
    return frame.head(top) if top is not None else frame


def monthly_returns(trades: pd.DataFrame, unit: str = "percentage") -> pd.DataFrame:
    """Pnl summed per calendar month of the close time (UTC): one row per year, Jan..Dec and the year's total;
    a month without a close is NA."""
    column = pnl_column(unit)
    closed = trades[trades["close_time"].notna()]
    if closed.empty:
        return pd.DataFrame(columns=[*MONTHS, "year"], dtype="float64")
    when = closed["close_time"].dt.tz_convert("UTC")
    pnl = closed[column].astype("Float64").fillna(0.0).astype("float64")
    table = pnl.groupby([when.dt.year.rename("year"), when.dt.month.rename("month")]).sum().unstack("month")
    table = table.reindex(columns=range(1, 13))
    table.columns = list(MONTHS)
    table["year"] = table.sum(axis=1, min_count=1)
    table.index = table.index.astype("int64")
    return table


def histogram(values: Any, bins: int = 20) -> pd.DataFrame:
    """Counts of `values` (NA left out) in `bins` equal bins: `low`, `high`, `count`."""
    data = pd.Series(values).astype("Float64").dropna().to_numpy(dtype="float64")
    if not len(data):
        return pd.DataFrame({"low": [], "high": [], "count": []}).astype({"count": "int64"})
    counts, edges = np.histogram(data, bins=bins if data.min() < data.max() else 1)
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": counts.astype("int64")})


def durations_minutes(trades: pd.DataFrame) -> pd.Series:
    minutes: pd.Series = (trades["duration"].dt.total_seconds() / 60).astype("Float64")
    return minutes


def by_side(trades: pd.DataFrame, unit: str = "percentage") -> pd.DataFrame:
    """`figures()` for the long trades, the short trades and all, one row each (index `side`)."""
    rows = {side: figures(trades[(trades["side"] == side).fillna(False)], unit) for side in ("long", "short")}
    rows["all"] = figures(trades, unit)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "side"
    return frame


def extremes(trades: pd.DataFrame, unit: str = "percentage", count: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `count` best and the `count` worst trades by pnl (trades without a pnl left out)."""
    column = pnl_column(unit)
    ranked = trades[trades[column].notna()]
    best = ranked.sort_values([column, "signal_id"], ascending=[False, True], kind="stable").head(count)
    worst = ranked.sort_values([column, "signal_id"], ascending=[True, True], kind="stable").head(count)
    return best.reset_index(drop=True), worst.reset_index(drop=True)


def streaks(trades: pd.DataFrame, unit: str = "percentage") -> dict[str, Any]:
    """Longest runs of consecutive wins and of consecutive losses in close order (a zero or missing pnl ends a
    run), with the pnl each run summed, and the current run (`current` > 0 wins, < 0 losses)."""
    ordered = equity_of(trades, unit)
    out: dict[str, Any] = {"max_wins": 0, "max_wins_pnl": 0.0, "max_losses": 0, "max_losses_pnl": 0.0, "current": 0}
    run, total = 0, 0.0
    for pnl in ordered["pnl"].to_numpy(dtype="float64"):
        sign = 1 if pnl > 0 else -1 if pnl < 0 else 0
        if sign == 0 or (run > 0) != (sign > 0):
            run, total = 0, 0.0
        run, total = run + sign, total + pnl
        if run > out["max_wins"]:
            out["max_wins"], out["max_wins_pnl"] = run, total
        if -run > out["max_losses"]:
            out["max_losses"], out["max_losses_pnl"] = -run, total
    out["current"] = run
    return out


def exposure(trades: pd.DataFrame) -> pd.DataFrame:
    """Per strategy and in all (`(all)`): `in_market` (time with at least one position open, overlapping trades
    counted once), `span` (first entry to last exit) and `exposure` (in_market / span, %)."""
    from .metrics import ALL

    rows = []
    groups: list[tuple[Any, pd.DataFrame]] = list(trades.groupby("strategy", dropna=False, sort=True))
    if len(groups) != 1:
        groups.append((ALL, trades))
    for name, group in groups:
        timed = group[group["open_time"].notna() & group["close_time"].notna()].sort_values("open_time")
        if timed.empty:
            rows.append({"strategy": name, "in_market": pd.NaT, "span": pd.NaT, "exposure": math.nan})
            continue
        covered, end = pd.Timedelta(0), None
        for opened, closed in zip(timed["open_time"], timed["close_time"]):
            start = opened if end is None or opened > end else end
            if closed > start:
                covered += closed - start
            end = closed if end is None or closed > end else end
        span = timed["close_time"].max() - timed["open_time"].min()
        rows.append({"strategy": name, "in_market": covered, "span": span,
                     "exposure": 100.0 * (covered / span) if span > pd.Timedelta(0) else math.nan})
    return pd.DataFrame(rows, columns=["strategy", "in_market", "span", "exposure"])


def strategy_curves(trades: pd.DataFrame, unit: str = "percentage") -> dict[str, pd.DataFrame]:
    """The equity curve (`equity_of`) of each strategy, by name (a missing name is `?`)."""
    return {("?" if _na(name) else str(name)): equity_of(group, unit)
            for name, group in trades.groupby("strategy", dropna=False, sort=True)}


def _na(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def pnl_at(side: Any, price_open: float, price: float, fee: float = FEE, slippage: float = SLIPPAGE) -> float:
    """backtest-kit's pnl in % of a position opened at `price_open` if closed at `price` (fee and slippage in %)."""
    s, f = slippage / 100, fee / 100
    if side == "short":
        entry, close = price_open * (1 - s), price * (1 + s)
        gross = (entry - close) / entry * 100
    else:
        entry, close = price_open * (1 + s), price * (1 - s)
        gross = (close - entry) / entry * 100
    return gross - (entry * f + close * f) / entry * 100


def unrealized(positions: pd.DataFrame, last: dict[tuple[str, str], tuple[pd.Timestamp, float]],
               fee: float = FEE, slippage: float = SLIPPAGE) -> pd.DataFrame:
    """Open positions with `last_candle` (open time of the latest stored candle of their symbol and exchange),
    `last_price` (its close), `unrealized_pnl` (% as backtest-kit computes it, at that price, from the average
    entry when the row has one) and `unrealized_pnl_cost` (that % of the cost); NA without a stored candle."""
    out = positions.copy()
    times: list[int] = []
    prices: list[float] = []
    pnl: list[float] = []
    for row in positions.to_dict("records"):
        found = last.get((str(row["symbol"]), str(row["exchange"])))
        average, first = row["pnl_price_open"], row["price_open"]
        entry: Any = average if not _na(average) and average > 0 else first
        if found is None or _na(entry):
            times.append(-(2**63))
            prices.append(math.nan)
            pnl.append(math.nan)
            continue
        times.append(found[0].value // 1_000_000)
        prices.append(found[1])
        pnl.append(pnl_at(row["side"], float(entry), found[1], fee, slippage))
    stamps = np.array(times, dtype="int64").view("datetime64[ms]")
    out["last_candle"] = pd.Series(stamps, index=out.index).dt.tz_localize("UTC")
    out["last_price"] = pd.array(np.array(prices, dtype="float64"), dtype="Float64")
    out["unrealized_pnl"] = pd.array(np.array(pnl, dtype="float64"), dtype="Float64")
    out["unrealized_pnl_cost"] = out["unrealized_pnl"] * out["cost"] / 100
    return out


__all__ = ["DRAWDOWN_COLUMNS", "FEE", "MONTHS", "SLIPPAGE", "by_side", "drawdown_periods", "durations_minutes",
           "exposure", "extremes", "histogram", "monthly_returns", "pnl_at", "streaks", "strategy_curves",
           "unrealized"]
