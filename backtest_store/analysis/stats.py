"""backtest-kit 19.5's own statistics, computed from a trades DataFrame (`Analysis.trades()`): pure numpy, no I/O.

Three sets, as the framework computes them (`build/index.mjs` of backtest-kit 19.5.0), with its gates and nulls
(None; in DataFrames NA):

- `closed_figures(..., live=False)`: `Backtest.getData(symbol, {strategyName, exchangeName, frameName})`, and with
  `live=True` `Live.getData(...)`: the closed signals of one symbol × strategy × exchange × frame.
- `heat_figures`: one row of `Heat.getData(...).symbols`. Heat pools per exchange × frame × mode, so a symbol's row
  holds the trades of every strategy on it.
- `portfolio_figures`: the `portfolio*` figures of `Heat.getData`, pooled over every trade of an exchange × frame.

Every figure is in percent of pnl (`pnl.pnlPercentage`), durations in minutes. docs/statistics.md defines each one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# The framework's thresholds (MIN_SIGNALS_FOR_RATIOS ... STDDEV_EPSILON, and the price profile's).
MIN_SIGNALS_FOR_RATIOS = 10
MIN_SIGNALS_FOR_ANNUALIZATION = 10
MIN_CALENDAR_SPAN_DAYS = 14
MAX_TRADES_PER_YEAR = 365
MAX_EXPECTED_YEARLY_RETURNS = 100
MAX_CALMAR_RATIO = 1000
STDDEV_EPSILON = 1e-9
PROFILE_MIN_SIGNALS = 10
R2_TREND_GATE = 0.30
SLOPE_VS_STEP_GATE = 0.25
DAY_MS = 86_400_000

PROFILE = ("median_step_size", "buyer_pressure", "seller_pressure", "buyer_strength", "seller_strength",
           "pressure_imbalance", "trend", "trend_strength", "trend_confidence")
CLOSED = ("trades", "wins", "losses", "win_rate", "avg_pnl", "total_pnl", "std_dev", "sharpe_ratio",
          "annualized_sharpe_ratio", "certainty_ratio", "expected_yearly_returns", "avg_peak_pnl", "avg_fall_pnl",
          "sortino_ratio", "calmar_ratio", "recovery_factor", "expectancy", "avg_duration", "median_pnl",
          "avg_consecutive_win_pnl", "avg_consecutive_loss_pnl", "avg_win_duration", "avg_loss_duration", *PROFILE)
HEAT = ("trades", "total_pnl", "sharpe_ratio", "max_drawdown", "wins", "losses", "win_rate", "avg_pnl", "std_dev",
        "profit_factor", "avg_win", "avg_loss", "max_win_streak", "max_loss_streak", "expectancy", "avg_peak_pnl",
        "avg_fall_pnl", "peak_profit_pnl", "max_drawdown_pnl", "avg_duration", "median_pnl", "avg_consecutive_win_pnl",
        "avg_consecutive_loss_pnl", "avg_win_duration", "avg_loss_duration", "sortino_ratio", "calmar_ratio",
        "recovery_factor", "annualized_sharpe_ratio", "certainty_ratio", "expected_yearly_returns", "trades_per_year",
        *PROFILE)
PORTFOLIO = ("symbols", "total_pnl", "sharpe_ratio", "trades", "avg_peak_pnl", "avg_fall_pnl", "peak_profit_pnl",
             "max_drawdown_pnl", "std_dev", "sortino_ratio", "calmar_ratio", "recovery_factor", "expectancy",
             "avg_duration", "median_pnl", "avg_consecutive_win_pnl", "avg_consecutive_loss_pnl", "avg_win_duration",
             "avg_loss_duration", "annualized_sharpe_ratio", "certainty_ratio", "expected_yearly_returns",
             "trades_per_year", "max_drawdown")
COUNTS = ("trades", "wins", "losses", "symbols", "max_win_streak", "max_loss_streak")


@dataclass(frozen=True)
class Trades:
    """Closed trades as float arrays in close-time order; NaN where a row has no value."""

    pnl: np.ndarray  # pnl.pnlPercentage
    fall: np.ndarray  # maxDrawdown.pnlPercentage: the worst mark-to-market pnl while open (<= 0)
    peak: np.ndarray  # peakProfit.pnlPercentage
    opened: np.ndarray  # pendingAt, epoch ms
    closed: np.ndarray  # closeTimestamp, epoch ms
    price: np.ndarray  # currentPrice at close

    def __len__(self) -> int:
        return len(self.pnl)

    def take(self, keep: np.ndarray) -> Trades:
        return Trades(*(a[keep] for a in (self.pnl, self.fall, self.peak, self.opened, self.closed, self.price)))

    @staticmethod
    def concat(parts: Sequence[Trades]) -> Trades:
        joined = Trades(*(np.concatenate([getattr(p, f) for p in parts]) if parts else np.empty(0)
                          for f in ("pnl", "fall", "peak", "opened", "closed", "price")))
        return joined.take(_close_order(joined.closed))


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), math.nan)
    return np.asarray(frame[column].astype("Float64").to_numpy(dtype="float64", na_value=math.nan))


def _ms(frame: pd.DataFrame, column: str) -> np.ndarray:
    times = frame[column]
    ms = (times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)
    return np.asarray(ms.to_numpy(dtype="float64", na_value=math.nan))


def _close_order(closed: np.ndarray) -> np.ndarray:
    # Stable: rows closing at the same millisecond keep the frame's order (by signal id); no close time last.
    return np.argsort(np.where(np.isnan(closed), math.inf, closed), kind="stable")


def trades_of(frame: pd.DataFrame) -> Trades:
    """The arrays of a trades DataFrame; rows without a pnl are left out (the framework cannot count them)."""
    frame = frame.sort_values(["close_time", "signal_id"], na_position="last", kind="stable")
    trades = Trades(_floats(frame, "pnl_percentage"), _floats(frame, "mae_percentage"), _floats(frame, "mfe_percentage"),
                    _ms(frame, "open_time"), _ms(frame, "close_time"), _floats(frame, "price_close"))
    return trades.take(~np.isnan(trades.pnl))


# -- pieces --------------------------------------------------------------------------------------------------------


def _safe(value: float | None) -> float | None:
    """The framework's isUnsafe: NaN and ±Infinity are null."""
    return None if value is None or not math.isfinite(value) else float(value)


def _cleaned(figures: dict[str, Any]) -> dict[str, Any]:
    """Counts as int, the trend as text, every other figure a finite float or None."""
    return {k: v if k in COUNTS or isinstance(v, str) else _safe(v) for k, v in figures.items()}


def _mean(values: np.ndarray) -> float | None:
    return float(values.sum() / len(values)) if len(values) else None


def _median(values: np.ndarray) -> float | None:
    if not len(values):
        return None
    ordered, mid = np.sort(values), len(values) >> 1
    return float((ordered[mid - 1] + ordered[mid]) / 2 if len(values) % 2 == 0 else ordered[mid])


def _std(pnl: np.ndarray) -> float:
    """Sample standard deviation (N - 1)."""
    return math.sqrt(float(((pnl - pnl.sum() / len(pnl)) ** 2).sum()) / (len(pnl) - 1))


def _clamp(value: float) -> float:
    return max(-MAX_CALMAR_RATIO, min(MAX_CALMAR_RATIO, value))


def equity_drawdown(pnl: np.ndarray, fall: np.ndarray) -> tuple[float, float, bool]:
    """Max drawdown in % of the running peak of compounded equity ∏(1 + r/100), each trade first marked down to
    its worst intra-trade pnl (`fall`), then booked at its close; (max drawdown, final equity, blown). Equity at
    or below 0 is a blown account: the drawdown is 100 and the walk stops."""
    equity = peak = 1.0
    worst = 0.0
    for r, f in zip(pnl.tolist(), fall.tolist()):
        if f == f and f < 0:
            trough = equity * (1 + f / 100)
            if trough <= 0:
                return 100.0, 0.0, True
            worst = max(worst, (peak - trough) / peak * 100)
        equity *= 1 + r / 100
        if equity <= 0:
            return 100.0, 0.0, True
        peak = max(peak, equity)
        worst = max(worst, (peak - equity) / peak * 100)
    return worst, equity, False


def trades_per_year(count: int, opened: np.ndarray, closed: np.ndarray) -> float | None:
    """Trades a year from the first entry to the last exit; None below 10 trades, under 14 days of span, or
    above 365 a year (too clustered to annualize)."""
    if count < MIN_SIGNALS_FOR_ANNUALIZATION or np.isnan(opened).all() or np.isnan(closed).all():
        return None
    span = (float(np.nanmax(closed)) - float(np.nanmin(opened))) / DAY_MS
    if span < MIN_CALENDAR_SPAN_DAYS:
        return None
    raw = count / span * 365
    return raw if 0 < raw <= MAX_TRADES_PER_YEAR else None


def _yearly(equity_final: float, blown: bool, per_year: float | None, count: int) -> float | None:
    if per_year is None or blown:
        return None
    raw = (equity_final ** (per_year / count) - 1) * 100
    return None if abs(raw) > MAX_EXPECTED_YEARLY_RETURNS else raw


def _sortino(pnl: np.ndarray, avg: float) -> float | None:
    negative = pnl[pnl < 0]
    if not len(negative):
        return None
    downside = math.sqrt(float((negative * negative).sum()) / len(pnl))
    return avg / downside if downside > STDDEV_EPSILON else None


def streaks(pnl: np.ndarray) -> tuple[list[float], list[float], int, int]:
    """The pnl sum of each run of wins and of losses (a zero ends both), and the longest runs."""
    wins: list[float] = []
    losses: list[float] = []
    run, total, longest = 0, 0.0, [0, 0]
    for r in pnl.tolist():
        sign = (r > 0) - (r < 0)
        if run and (sign == 0 or (sign > 0) != (run > 0)):
            (wins if run > 0 else losses).append(total)
            run, total = 0, 0.0
        if sign:
            run, total = run + sign, total + r
            longest[run < 0] = max(longest[run < 0], abs(run))
    if run:
        (wins if run > 0 else losses).append(total)
    return wins, losses, longest[0], longest[1]


def _durations(trades: Trades, live: bool = False) -> dict[str, float | None]:
    opened = np.where(np.isnan(trades.opened), trades.closed, trades.opened) if live else trades.opened
    valid = (opened > 0) & (trades.closed > 0)
    minutes, pnl = (trades.closed[valid] - opened[valid]) / 60_000, trades.pnl[valid]
    return {"avg_duration": _mean(minutes), "avg_win_duration": _mean(minutes[pnl > 0]),
            "avg_loss_duration": _mean(minutes[pnl < 0])}


def _excursions(trades: Trades) -> dict[str, float | None]:
    peak, fall = trades.peak[~np.isnan(trades.peak)], trades.fall[~np.isnan(trades.fall)]
    return {"avg_peak_pnl": _mean(peak), "avg_fall_pnl": _mean(fall),
            "peak_profit_pnl": float(peak.max()) if len(peak) else None,
            "max_drawdown_pnl": float(fall.min()) if len(fall) else None}


def price_profile(closed: np.ndarray, price: np.ndarray) -> dict[str, Any]:
    """Buyer/seller pressure and trend of the close prices in close order (the framework's getPriceProfile)."""
    empty: dict[str, Any] = dict.fromkeys(PROFILE)
    valid = np.isfinite(closed) & (closed > 0) & np.isfinite(price) & (price > 0)
    closes, times = price[valid], closed[valid]
    if len(closes) < PROFILE_MIN_SIGNALS:
        return empty
    steps = (closes[1:] - closes[:-1]) / closes[:-1]
    up, down = steps[steps > 0], steps[steps < 0]
    decisive, magnitude = len(up) + len(down), float(up.sum() - down.sum())
    step = _median(np.abs(steps))
    out = {**empty, "median_step_size": None if step is None else step * 100}
    if decisive:
        out.update(buyer_pressure=len(up) / decisive, seller_pressure=len(down) / decisive)
    if magnitude > 0:
        buyer, seller = float(up.sum()) / magnitude, float(-down.sum()) / magnitude
        out.update(buyer_strength=buyer, seller_strength=seller, pressure_imbalance=buyer - seller)
    xs, ys = (times - times[0]) / DAY_MS, np.log(closes)
    if xs[-1] - xs[0] > 0:
        dx, dy = xs - xs.sum() / len(xs), ys - ys.sum() / len(ys)
        ss_xx, ss_xy, ss_yy = float((dx * dx).sum()), float((dx * dy).sum()), float((dy * dy).sum())
        if ss_xx > 0:
            slope = ss_xy / ss_xx * 100
            confidence = max(0.0, min(1.0, ss_xy * ss_xy / (ss_xx * ss_yy) if ss_yy > 0 else 0.0))
            trend = ("sideways" if confidence < R2_TREND_GATE
                     else "neutral" if abs(slope) < out["median_step_size"] * SLOPE_VS_STEP_GATE
                     else "bullish" if slope > 0 else "bearish")
            out.update(trend=trend, trend_strength=slope, trend_confidence=confidence)
    return _cleaned(out)


# -- the three sets ------------------------------------------------------------------------------------------------


def closed_figures(trades: Trades, live: bool = False) -> dict[str, Any]:
    """`Backtest.getData` (or `Live.getData`) of one symbol × strategy × exchange × frame."""
    # The framework's valid set: an entry time (live: optional) and a close time, both > 0.
    keep = (trades.closed > 0) & ((trades.opened > 0) | (np.isnan(trades.opened) if live else False))
    trades = trades.take(keep)
    n, pnl = len(trades), trades.pnl
    if n == 0:
        return {**dict.fromkeys(CLOSED), "trades": 0, "wins": 0, "losses": 0}
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    avg = float(pnl.sum() / n)
    ratios = n >= MIN_SIGNALS_FOR_RATIOS
    std = _std(pnl) if ratios else None
    sharpe = avg / std if std is not None and std > STDDEV_EPSILON else None
    opened = np.where(np.isnan(trades.opened), trades.closed, trades.opened)
    per_year = trades_per_year(n, opened, trades.closed)
    drawdown, equity, blown = equity_drawdown(pnl, trades.fall)
    yearly = _yearly(equity, blown, per_year, n)
    avg_win, avg_loss = float(wins.mean()) if len(wins) else 0.0, float(losses.mean()) if len(losses) else 0.0
    win_sums, loss_sums, _, _ = streaks(pnl)
    return _cleaned({
        "trades": n, "wins": len(wins), "losses": len(losses),
        "win_rate": len(wins) / (len(wins) + len(losses)) * 100 if len(wins) + len(losses) else 0.0,
        "avg_pnl": avg, "total_pnl": float(pnl.sum()), "std_dev": std, "sharpe_ratio": sharpe,
        "annualized_sharpe_ratio": sharpe * math.sqrt(per_year) if per_year and sharpe is not None else None,
        "certainty_ratio": avg_win / abs(avg_loss) if ratios and avg_loss < -STDDEV_EPSILON else None,
        "expected_yearly_returns": yearly,
        "sortino_ratio": _sortino(pnl, avg) if ratios else None,
        "calmar_ratio": _clamp(yearly / drawdown) if drawdown > 0 and yearly is not None else None,
        "recovery_factor": _clamp((equity - 1) * 100 / drawdown) if ratios and not blown and drawdown > 0 else None,
        "expectancy": len(wins) / n * avg_win + len(losses) / n * avg_loss if ratios else None,
        "median_pnl": _median(pnl),
        "avg_consecutive_win_pnl": _mean(np.array(win_sums)), "avg_consecutive_loss_pnl": _mean(np.array(loss_sums)),
        **{k: v for k, v in _excursions(trades).items() if k in CLOSED}, **_durations(trades, live),
        **price_profile(trades.closed, trades.price),
    })


def heat_figures(trades: Trades) -> dict[str, Any]:
    """One symbol's row of `Heat.getData` (every trade counts; durations skip rows without both times)."""
    n, pnl = len(trades), trades.pnl
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    out: dict[str, Any] = {**dict.fromkeys(HEAT), "trades": n, "wins": len(wins), "losses": len(losses),
                           "max_win_streak": 0, "max_loss_streak": 0}
    if n == 0:
        return out
    avg = float(pnl.sum() / n)
    ratios = n >= MIN_SIGNALS_FOR_RATIOS
    std = _std(pnl) if ratios else None
    sharpe = avg / std if std is not None and std > STDDEV_EPSILON else None
    drawdown, equity, blown = equity_drawdown(pnl, trades.fall)
    per_year = trades_per_year(n, trades.opened, trades.closed)
    yearly = _yearly(equity, blown, per_year, n)
    avg_win, avg_loss = _mean(wins), _mean(losses)
    win_sums, loss_sums, longest_win, longest_loss = streaks(pnl)
    gross_loss = abs(float(losses.sum()))
    expectancy = None
    if ratios and (avg_win is not None or avg_loss is not None):
        expectancy = len(wins) / n * (avg_win or 0.0) + len(losses) / n * (avg_loss or 0.0)
    out.update({
        "win_rate": len(wins) / (len(wins) + len(losses)) * 100 if len(wins) + len(losses) else None,
        "total_pnl": float(pnl.sum()), "avg_pnl": avg, "std_dev": std, "sharpe_ratio": sharpe,
        "max_drawdown": drawdown,
        "profit_factor": float(wins.sum()) / gross_loss if len(wins) and len(losses) and gross_loss > STDDEV_EPSILON
        else None,
        "avg_win": avg_win, "avg_loss": avg_loss, "max_win_streak": longest_win, "max_loss_streak": longest_loss,
        "expectancy": expectancy, **_excursions(trades), **_durations(trades), "median_pnl": _median(pnl),
        "avg_consecutive_win_pnl": _mean(np.array(win_sums)), "avg_consecutive_loss_pnl": _mean(np.array(loss_sums)),
        "sortino_ratio": _sortino(pnl, avg) if ratios else None,
        "calmar_ratio": _clamp(yearly / drawdown) if drawdown > 0 and yearly is not None else None,
        "recovery_factor": _clamp((equity - 1) * 100 / drawdown) if drawdown > 0 and not blown and ratios else None,
        "annualized_sharpe_ratio": sharpe * math.sqrt(per_year) if sharpe is not None and per_year else None,
        "certainty_ratio": avg_win / abs(avg_loss) if ratios and avg_win is not None and avg_loss is not None
        and avg_loss < -STDDEV_EPSILON else None,
        "expected_yearly_returns": yearly, "trades_per_year": per_year,
        **price_profile(trades.closed, trades.price),
    })
    return _cleaned(out)


def _weighted(rows: Iterable[dict[str, Any]], figure: str) -> float | None:
    """Mean of the symbols' figure weighted by their trade counts, over the symbols that have it."""
    having = [(r[figure], r["trades"]) for r in rows if r[figure] is not None]
    weight = sum(n for _, n in having)
    return sum(v * n for v, n in having) / weight if having and weight > 0 else None


def portfolio_figures(symbols: Sequence[Trades]) -> dict[str, Any]:
    """The `portfolio*` figures of `Heat.getData` over the trades of each symbol (one `Trades` per symbol).
    `max_drawdown` is the pooled curve's drawdown, which Heat computes for Calmar and Recovery but does not return
    (None without trades)."""
    rows = [heat_figures(t) for t in symbols]
    pooled = Trades.concat(symbols)
    pnl, n = pooled.pnl, len(pooled)
    totals = [r["total_pnl"] for r in rows if r["total_pnl"] is not None]
    out: dict[str, Any] = {**dict.fromkeys(PORTFOLIO), "symbols": len(rows), "trades": sum(r["trades"] for r in rows),
                           "total_pnl": sum(totals) if totals else None}
    if n:
        # Heat walks the pooled curve only for its gated ratios; the drawdown is given for any pool, as a symbol's.
        out["max_drawdown"] = equity_drawdown(pnl, pooled.fall)[0]
    if n >= MIN_SIGNALS_FOR_RATIOS:
        avg = float(pnl.sum() / n)
        std = _std(pnl)
        sharpe = avg / std if std > STDDEV_EPSILON else None
        wins, losses = pnl[pnl > 0], pnl[pnl < 0]
        avg_win, avg_loss = float(wins.mean()) if len(wins) else 0.0, float(losses.mean()) if len(losses) else 0.0
        drawdown, equity, blown = equity_drawdown(pnl, pooled.fall)
        per_year = trades_per_year(n, pooled.opened, pooled.closed)
        yearly = _yearly(equity, blown, per_year, n)
        out.update({
            "std_dev": std, "sharpe_ratio": sharpe, "sortino_ratio": _sortino(pnl, avg),
            "expectancy": len(wins) / n * avg_win + len(losses) / n * avg_loss if len(wins) or len(losses) else None,
            "certainty_ratio": avg_win / abs(avg_loss) if avg_loss < -STDDEV_EPSILON else None,
            "trades_per_year": per_year, "expected_yearly_returns": yearly,
            "annualized_sharpe_ratio": sharpe * math.sqrt(per_year) if sharpe is not None and per_year else None,
            "calmar_ratio": _clamp(yearly / drawdown) if drawdown > 0 and yearly is not None else None,
            "recovery_factor": _clamp((equity - 1) * 100 / drawdown) if drawdown > 0 and not blown else None,
        })
    peaks = [r["peak_profit_pnl"] for r in rows if r["peak_profit_pnl"] is not None]
    falls = [r["max_drawdown_pnl"] for r in rows if r["max_drawdown_pnl"] is not None]
    out.update({
        "avg_peak_pnl": _weighted(rows, "avg_peak_pnl"), "avg_fall_pnl": _weighted(rows, "avg_fall_pnl"),
        "peak_profit_pnl": max(peaks) if peaks else None, "max_drawdown_pnl": min(falls) if falls else None,
        **_durations(pooled), "median_pnl": _median(pnl),
        "avg_consecutive_win_pnl": _weighted(rows, "avg_consecutive_win_pnl"),
        "avg_consecutive_loss_pnl": _weighted(rows, "avg_consecutive_loss_pnl"),
    })
    return _cleaned(out)


# -- DataFrames ----------------------------------------------------------------------------------------------------

CONTEXT = ("strategy", "symbol", "exchange", "frame")


def _frame(rows: list[dict[str, Any]], keys: Sequence[str], figures: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[*keys, *figures])
    types = {k: "string" for k in keys}
    types.update({f: "Int64" if f in COUNTS else "string" if f == "trend" else "Float64" for f in figures})
    return frame.astype(types)


def _groups(trades: pd.DataFrame, keys: Sequence[str]) -> Any:
    return trades.groupby(list(keys), dropna=False, sort=True) if len(trades) else []


def statistics_of(trades: pd.DataFrame, live: bool = False) -> pd.DataFrame:
    """One row per strategy × symbol × exchange × frame: `closed_figures` (Backtest.getData, or Live.getData)."""
    rows = [{**dict(zip(CONTEXT, key)), **closed_figures(trades_of(group), live)}
            for key, group in _groups(trades, CONTEXT)]
    return _frame(rows, CONTEXT, CLOSED)


def heat_of(trades: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Heat.getData per exchange × frame: its symbol rows (every strategy pooled per symbol) and its portfolio row."""
    symbols: list[dict[str, Any]] = []
    portfolios: list[dict[str, Any]] = []
    for (exchange, frame), group in _groups(trades, ("exchange", "frame")):
        per_symbol = [(symbol, trades_of(rows)) for (symbol,), rows in _groups(group, ("symbol",))]
        symbols += [{"exchange": exchange, "frame": frame, "symbol": s, **heat_figures(t)} for s, t in per_symbol]
        portfolios.append({"exchange": exchange, "frame": frame, **portfolio_figures([t for _, t in per_symbol])})
    return _frame(symbols, ("exchange", "frame", "symbol"), HEAT), _frame(portfolios, ("exchange", "frame"), PORTFOLIO)


__all__ = ["CLOSED", "HEAT", "PORTFOLIO", "Trades", "closed_figures", "equity_drawdown", "heat_figures", "heat_of",
           "portfolio_figures", "price_profile", "statistics_of", "streaks", "trades_of", "trades_per_year"]
