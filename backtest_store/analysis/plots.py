"""plotly figures: the equity curve with its drawdown, and candles with the trades' entries and exits.

Figures render in Jupyter as they are (the last expression of a cell) and `fig.write_html(path)` saves them; times
are shown in UTC. plotly is imported here only, so trades and summaries work with pandas alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigurationError

TRACES = {"equity": ("equity", "drawdown"), "trades": ("candles", "entries", "exits")}
UP, DOWN = "#26a69a", "#ef5350"
MARKERS_UP_TO = 2000  # trades on an equity curve drawn with a marker each


def plotly() -> tuple[Any, Any]:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as exc:
        raise ConfigurationError("plots need plotly: pip install 'backtest-store[notebook]'") from exc
    return go, make_subplots


def _utc(times: Any) -> np.ndarray:
    """Aware UTC times as naive datetime64 (plotly.js has no time zones: the axes say UTC)."""
    series = pd.Series(times)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy()


def _floats(values: Any) -> np.ndarray:
    return pd.Series(values).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def equity_figure(equity: pd.DataFrame, title: str = "Equity", unit: str = "percentage") -> Any:
    """Two panes sharing the x axis: `equity` (cumulative pnl, from 0) above, `drawdown` (≤ 0) below.

    The x axis is the close time; when some trade has none (e.g. rows written by the TypeScript original) it is
    the trade number instead.
    """
    go, make_subplots = plotly()
    label = "pnl, %" if unit == "percentage" else "pnl, quote currency"
    timed = len(equity) > 0 and bool(equity["time"].notna().all())
    # The curve starts from 0: at the first close time, else at trade 0.
    x = np.concatenate([_utc(equity["time"])[:1], _utc(equity["time"])]) if timed else np.arange(len(equity) + 1)
    text = ["start"] + [f"{s} {y} {i}" for s, y, i in zip(
        equity["strategy"].fillna("?"), equity["symbol"].fillna("?"), equity["signal_id"].fillna("?"))]
    curve, drawdown = (np.concatenate([[0.0], equity[c].to_numpy(dtype="float64")]) for c in ("equity", "drawdown"))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05)
    fig.add_trace(go.Scatter(name="equity", x=x, y=curve,
                             mode="lines+markers" if len(equity) <= MARKERS_UP_TO else "lines",
                             line={"shape": "hv", "color": "#1f77b4"}, marker={"size": 4}, hovertext=text), 1, 1)
    fig.add_trace(go.Scatter(name="drawdown", x=x, y=drawdown, mode="lines",
                             line={"shape": "hv", "color": DOWN}, fill="tozeroy"), 2, 1)
    fig.update_layout(title=title, height=520, hovermode="x unified", margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"})
    fig.update_yaxes(title_text=f"equity ({label})", row=1, col=1)
    fig.update_yaxes(title_text=f"drawdown ({label})", row=2, col=1)
    fig.update_xaxes(title_text="close time (UTC)" if timed else "trade", row=2, col=1)
    return fig


def trades_figure(candles: pd.DataFrame, trades: pd.DataFrame, title: str) -> Any:
    """Candlesticks (`candles`) with `entries` (▲ long, ▼ short, at the open price and time) and `exits` (✕ at
    the close price and time, green for a profit, red for a loss). Trades lacking a time or price are left out."""
    go, _ = plotly()
    fig = go.Figure()
    fig.add_trace(go.Candlestick(name="candles", x=_utc(candles.index), open=candles["open"].to_numpy(),
                                 high=candles["high"].to_numpy(), low=candles["low"].to_numpy(),
                                 close=candles["close"].to_numpy(), increasing_line_color=UP,
                                 decreasing_line_color=DOWN))
    entries = trades[trades["open_time"].notna() & trades["price_open"].notna()]
    exits = trades[trades["close_time"].notna() & trades["price_close"].notna()]
    side = entries["side"].fillna("?")
    fig.add_trace(go.Scatter(
        name="entries", x=_utc(entries["open_time"]), y=_floats(entries["price_open"]), mode="markers",
        marker={"symbol": np.where(side == "short", "triangle-down", "triangle-up"), "size": 11, "color": "#1f77b4",
                "line": {"width": 1, "color": "white"}},
        hovertext=[f"{s} entry {i}" for s, i in zip(side, entries["signal_id"].fillna("?"))]))
    pnl = _floats(exits["pnl_percentage"])
    fig.add_trace(go.Scatter(
        name="exits", x=_utc(exits["close_time"]), y=_floats(exits["price_close"]), mode="markers",
        marker={"symbol": "x", "size": 10, "color": np.where(pnl > 0, UP, DOWN).tolist()},
        hovertext=[f"{r} {p:+.3f}% {i}" for r, p, i in zip(exits["close_reason"].fillna("?"), np.nan_to_num(pnl),
                                                          exits["signal_id"].fillna("?"))]))
    fig.update_layout(title=title, height=520, xaxis_rangeslider_visible=False,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40}, xaxis_title="time (UTC)",
                      yaxis_title="price (quote currency)",
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"})
    return fig


def _layout(fig: Any, title: str, x: str, y: str, height: int = 420) -> Any:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      xaxis_title=x, yaxis_title=y,
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"})
    return fig


def curves_figure(curves: dict[str, pd.DataFrame], title: str, unit: str = "percentage",
                  elapsed: bool = False) -> Any:
    """One equity line per curve (`equity_of` frames, by name), from 0. `elapsed=True` puts days since each
    curve's first close on the x axis, so that runs of different dates (a backtest and a live session) overlay."""
    go, _ = plotly()
    fig = go.Figure()
    for name, equity in curves.items():
        timed = len(equity) > 0 and bool(equity["time"].notna().all())
        if timed and elapsed:
            times = pd.Series(equity["time"])
            days = ((times - times.iloc[0]).dt.total_seconds() / 86_400).to_numpy()
            x: Any = np.concatenate([[0.0], days])
        elif timed:
            x = np.concatenate([_utc(equity["time"])[:1], _utc(equity["time"])])
        else:
            x = np.arange(len(equity) + 1)
        fig.add_trace(go.Scatter(name=name, x=x, y=np.concatenate([[0.0], equity["equity"].to_numpy("float64")]),
                                 mode="lines", line={"shape": "hv"}))
    label = "days since the first close" if elapsed else "close time (UTC)"
    return _layout(fig, title, label, f"equity (pnl, {'%' if unit == 'percentage' else 'quote currency'})")


def histogram_figure(values: Any, title: str, x: str, colour: str = "#1f77b4") -> Any:
    """A histogram of `values` (NA left out); the y axis counts trades."""
    go, _ = plotly()
    data = _floats(values)
    fig = go.Figure(go.Histogram(name="trades", x=data[~np.isnan(data)], marker={"color": colour}, nbinsx=30))
    return _layout(fig, title, x, "trades", height=360)


def mae_mfe_figure(trades: pd.DataFrame, title: str) -> Any:
    """Each trade at (MAE, MFE) in % (the worst and best pnl it reached while open), green for a profit."""
    go, _ = plotly()
    pnl = _floats(trades["pnl_percentage"])
    fig = go.Figure(go.Scatter(
        name="trades", x=_floats(trades["mae_percentage"]), y=_floats(trades["mfe_percentage"]), mode="markers",
        marker={"color": np.where(pnl > 0, UP, DOWN).tolist(), "size": 8},
        hovertext=[f"{i} {p:+.2f}%" for i, p in zip(trades["signal_id"].fillna("?"), np.nan_to_num(pnl))]))
    return _layout(fig, title, "MAE: worst pnl while open (%)", "MFE: best pnl while open (%)", height=400)


__all__ = ["TRACES", "curves_figure", "equity_figure", "histogram_figure", "mae_mfe_figure", "trades_figure"]
