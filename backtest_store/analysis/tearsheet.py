"""`Tearsheet` (one stored run, beyond its summary) and `Comparison` (two runs side by side): tables, figures,
JSON and HTML sections. Built from DataFrames already read (`Analysis.tearsheet()` / `compare()` read them)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import tables as t
from .format import cell, figure_table, header, html_table, json_value, unit_label
from .metrics import ALL, equity_of, figures, pnl_column, summary_of

TRADE_LIST = ("signal_id", "strategy", "symbol", "side", "open_time", "close_time", "duration", "price_open",
              "price_close", "pnl_percentage", "pnl_cost", "mae_percentage", "mfe_percentage", "close_reason")
POSITION_LIST = ("signal_id", "strategy", "symbol", "side", "open_time", "price_open", "last_candle", "last_price",
                 "unrealized_pnl", "unrealized_pnl_cost", "pnl_percentage", "updated_at", "mae_percentage",
                 "mfe_percentage")
PENDING_LIST = ("signal_id", "status", "strategy", "symbol", "side", "scheduled_at", "price_open", "price_current",
                "price_take_profit", "price_stop_loss", "updated_at")
MAX_TRADE_ROWS = 500  # rows of the page's trade list (the JSON and the DataFrame have them all)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: times ISO 8601, durations in seconds, NA/NaN/inf as null."""
    return [{str(k): json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _section(title: str, body: str, note: str = "") -> str:
    note = f"<p class='hint'>{html.escape(note)}</p>" if note else ""
    return f"<section><h3>{html.escape(title)}</h3>{note}<div class='wide'>{body}</div></section>"


@dataclass(frozen=True, repr=False)
class Tearsheet:
    label: str
    unit: str
    trades: pd.DataFrame  # Analysis.trades()
    summary: pd.DataFrame  # summary_of(..., total=True): whatever figures `metrics` gives
    positions: pd.DataFrame  # open positions, with their unrealized pnl at the last stored candle
    pending: pd.DataFrame  # scheduled and cancelled signals (never counted as trades)

    @property
    def curves(self) -> dict[str, pd.DataFrame]:
        """Equity per strategy (and `(all)` pooled when there are several)."""
        curves = t.strategy_curves(self.trades, self.unit)
        if len(curves) != 1:
            curves[ALL] = equity_of(self.trades, self.unit)
        return curves

    @property
    def drawdowns(self) -> pd.DataFrame:
        return t.drawdown_periods(equity_of(self.trades, self.unit))

    @property
    def monthly(self) -> pd.DataFrame:
        return t.monthly_returns(self.trades, self.unit)

    @property
    def sides(self) -> pd.DataFrame:
        return t.by_side(self.trades, self.unit)

    @property
    def streaks(self) -> dict[str, Any]:
        return t.streaks(self.trades, self.unit)

    @property
    def exposure(self) -> pd.DataFrame:
        return t.exposure(self.trades)

    def extremes(self, count: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
        return t.extremes(self.trades, self.unit, count)

    def headline(self) -> dict[str, Any]:
        """The pooled figures, streaks and exposure in one flat dict (what a comparison sets side by side)."""
        exposure = self.exposure.iloc[-1] if len(self.exposure) else None
        return {**figures(self.trades, self.unit), **self.streaks,
                "exposure": exposure["exposure"] if exposure is not None else None,
                "in_market": exposure["in_market"] if exposure is not None else None,
                "open_positions": len(self.positions),
                "scheduled": int((self.pending["status"] == "scheduled").sum()),
                "cancelled": int((self.pending["status"] == "cancelled").sum())}

    def figures(self) -> dict[str, Any]:
        """plotly figures: equity per strategy, pnl and duration distributions, MAE/MFE."""
        from .plots import curves_figure, histogram_figure, mae_mfe_figure

        u = unit_label(self.unit)
        return {
            "equity by strategy": curves_figure(self.curves, f"Equity by strategy: {self.label}", self.unit),
            "pnl distribution": histogram_figure(self.trades[pnl_column(self.unit)], "PnL per trade",
                                                 f"pnl per trade ({u})"),
            "trade durations": histogram_figure(t.durations_minutes(self.trades), "Trade durations",
                                                "duration (minutes)", "#7f7f7f"),
            "mae/mfe": mae_mfe_figure(self.trades, "MAE / MFE per trade"),
        }

    def to_dict(self) -> dict[str, Any]:
        best, worst = self.extremes()
        monthly = self.monthly
        return {
            "label": self.label, "unit": self.unit,
            "headline": {k: json_value(v) for k, v in self.headline().items()},
            "drawdown_periods": _records(self.drawdowns),
            "monthly": {str(year): {str(k): json_value(v) for k, v in row.items()}
                        for year, row in monthly.to_dict("index").items()},
            "sides": {side: {str(k): json_value(v) for k, v in row.items()}
                      for side, row in self.sides.to_dict("index").items()},
            "exposure": _records(self.exposure),
            "best": _records(best[list(TRADE_LIST)]), "worst": _records(worst[list(TRADE_LIST)]),
            "pnl_histogram": _records(t.histogram(self.trades[pnl_column(self.unit)])),
            "duration_histogram_minutes": _records(t.histogram(t.durations_minutes(self.trades))),
            "open_positions": _records(self.positions[list(POSITION_LIST)]),
            "pending": _records(self.pending[list(PENDING_LIST)]),
        }

    def sections(self) -> str:
        """The tearsheet's tables as HTML sections (the report page adds its figures)."""
        u, parts = self.unit, []
        best, worst = self.extremes()
        monthly = self.monthly
        drawdowns = self.drawdowns
        parts.append(_section("Drawdown periods", html_table(drawdowns.head(10), u) if len(drawdowns)
                              else "<p>None: the equity curve never fell below a previous peak.</p>",
                              "Falls of the summed-pnl equity curve below its running peak, deepest first "
                              "(the 10 deepest)."))
        parts.append(_section(f"Monthly PnL ({unit_label(u)})", html_table(
            monthly.rename(columns={"year": "Total"}).astype("float64"), u, index="Year", css="months")
            if len(monthly) else "<p>No closed trades.</p>"))
        parts.append(_section("Long vs short", figure_table(
            {str(side): {str(k): v for k, v in row.items()} for side, row in self.sides.to_dict("index").items()},
            u, "")))
        streaks = figure_table({"": self.streaks}, u, "Streaks")
        parts.append(_section("Streaks and exposure", streaks + html_table(self.exposure, u),
                              "Exposure: time with at least one position open, over first entry to last exit."))
        parts.append(_section("Best trades", html_table(best[list(TRADE_LIST)], u)))
        parts.append(_section("Worst trades", html_table(worst[list(TRADE_LIST)], u)))
        parts.append(_section(f"Open positions ({len(self.positions)})", html_table(
            self.positions[list(POSITION_LIST)], u) if len(self.positions) else "<p>None.</p>",
            "Not counted as trades. Unrealized PnL: at the close of the last stored candle, with backtest-kit's "
            "default fee and slippage; PnL (%): the framework's, as of the row's last update."))
        parts.append(_section(f"Scheduled and cancelled signals ({len(self.pending)})", html_table(
            self.pending[list(PENDING_LIST)], u) if len(self.pending) else "<p>None.</p>",
            "Never opened: not counted as trades."))
        shown = self.trades[list(TRADE_LIST)].head(MAX_TRADE_ROWS)
        more = len(self.trades) - len(shown)
        parts.append(_section(f"Trade list ({len(self.trades):,})", html_table(shown, u, css="trades"),
                              f"The first {MAX_TRADE_ROWS:,}; {more:,} more in the JSON or trades()." if more
                              else ""))
        return "".join(parts)

    def _repr_html_(self) -> str:
        return f"<div><h4>{html.escape(self.label)}</h4>{self.sections()}</div>"

    def __repr__(self) -> str:
        return f"<Tearsheet {self.label}: {len(self.trades):,} trades, {len(self.positions)} open>"


def tearsheet_of(label: str, trades: pd.DataFrame, positions: pd.DataFrame, pending: pd.DataFrame,
                 unit: str = "percentage") -> Tearsheet:
    summary = summary_of(trades, unit, total=trades[["strategy", "symbol"]].drop_duplicates().shape[0] > 1)
    return Tearsheet(label, unit, trades, summary, positions, pending)


@dataclass(frozen=True, repr=False)
class Comparison:
    """Two stored runs side by side: `a` and `b` (two strategies, two frames, a backtest and its live session)."""
    a: Tearsheet
    b: Tearsheet

    def table(self) -> pd.DataFrame:
        """One row per figure (headline figures, streaks, exposure): a's value, b's and b − a."""
        a, b = self.a.headline(), self.b.headline()
        rows = []
        for name in dict.fromkeys([*a, *b]):
            x, y = a.get(name), b.get(name)
            try:
                diff: Any = y - x if x is not None and y is not None else None
            except TypeError:
                diff = None
            rows.append((name, x, y, diff))
        frame = pd.DataFrame(rows, columns=["figure", "a", "b", "difference"]).set_index("figure")
        return frame

    def figure(self) -> Any:
        """Both pooled equity curves, by days since each one's first close."""
        from .plots import curves_figure

        return curves_figure({self.a.label: equity_of(self.a.trades, self.a.unit),
                              self.b.label: equity_of(self.b.trades, self.b.unit)},
                             "Equity compared", self.a.unit, elapsed=True)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.label, "b": self.b.label, "unit": self.a.unit,
                "figures": {name: {str(k): json_value(v) for k, v in row.items()}
                            for name, row in self.table().to_dict("index").items()}}

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(header, a, b, difference) as text, for terminals and pages."""
        return [(header(name, self.a.unit), cell(name, row.a), cell(name, row.b), cell(name, row.difference))
                for name, row in zip(self.table().index, self.table().itertuples(index=False))]

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in ("", self.a.label, self.b.label, "b − a"))
        body = "".join("<tr><th>" + html.escape(r[0]) + "</th>" + "".join(f"<td>{html.escape(v)}</td>"
                                                                         for v in r[1:]) + "</tr>"
                       for r in self.rows())
        return _section("Comparison", f"<table class='figures'><thead><tr>{head}</tr></thead>"
                                      f"<tbody>{body}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"<Comparison {self.a.label} vs {self.b.label}>"


__all__ = ["Comparison", "MAX_TRADE_ROWS", "PENDING_LIST", "POSITION_LIST", "TRADE_LIST", "Tearsheet",
           "tearsheet_of"]
