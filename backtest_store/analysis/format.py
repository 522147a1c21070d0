"""How figures read on the report page and in the terminal: human headers with their units, sensible rounding,
`—` for a missing value. One table of known columns; any other column (a statistic added later) gets a header
from its name and a number rounded to four significant digits."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from .metrics import CLOSE_REASONS, NO_REASON
from .tables import MONTHS


def json_value(value: Any) -> Any:
    """A JSON value: NA, NaN and ±Infinity null (as backtest-kit writes them), times ISO 8601, durations in
    seconds, numpy scalars plain."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

NULL = "—"

# column -> (header, kind). `pnl` is in the report's unit (%, or the quote currency); the kinds are below.
COLUMNS: dict[str, tuple[str, str]] = {
    "strategy": ("Strategy", "text"), "symbol": ("Symbol", "text"), "exchange": ("Exchange", "text"),
    "frame": ("Frame", "text"), "side": ("Side", "text"), "status": ("Status", "text"),
    "signal_id": ("Signal", "id"), "close_reason": ("Close reason", "text"),
    "trades": ("Trades", "int"), "wins": ("Wins", "int"), "losses": ("Losses", "int"),
    "win_rate": ("Win rate (%)", "pct"), "total_pnl": ("Total PnL", "pnl"), "avg_pnl": ("Avg PnL", "pnl"),
    "gross_profit": ("Gross profit", "pnl"), "gross_loss": ("Gross loss", "pnl"),
    "profit_factor": ("Profit factor (×)", "ratio"), "max_drawdown": ("Max drawdown", "pnl"),
    "total_pnl_cost": ("Total PnL (quote)", "money"),
    "open_time": ("Opened (UTC)", "time"), "close_time": ("Closed (UTC)", "time"),
    "scheduled_at": ("Scheduled (UTC)", "time"), "updated_at": ("Updated (UTC)", "time"),
    "last_candle": ("Last candle (UTC)", "time"), "duration": ("Duration", "duration"),
    "price_open": ("Entry price", "price"), "price_close": ("Exit price", "price"),
    "price_current": ("Current price", "price"), "last_price": ("Last price", "price"),
    "price_take_profit": ("Take profit", "price"), "price_stop_loss": ("Stop loss", "price"),
    "pnl_percentage": ("PnL (%)", "pct"), "pnl_cost": ("PnL (quote)", "money"), "cost": ("Cost (quote)", "money"),
    "mfe_percentage": ("MFE (%)", "pct"), "mae_percentage": ("MAE (%)", "pct"),
    "unrealized_pnl": ("Unrealized PnL (%)", "pct"), "unrealized_pnl_cost": ("Unrealized PnL (quote)", "money"),
    "start": ("Peak (UTC)", "time"), "trough": ("Trough (UTC)", "time"), "recovery": ("Recovered (UTC)", "time"),
    "depth": ("Depth", "pnl"), "in_market": ("Time in market", "duration"), "span": ("Span", "duration"),
    "exposure": ("Exposure (%)", "pct"), "total_entries": ("Entries", "int"),
    "max_wins": ("Longest winning run (trades)", "int"), "max_losses": ("Longest losing run (trades)", "int"),
    "max_wins_pnl": ("PnL of that winning run", "pnl"), "max_losses_pnl": ("PnL of that losing run", "pnl"),
    "current": ("Current run (+ wins / − losses)", "int"),
    "open_positions": ("Open positions", "int"), "scheduled": ("Scheduled signals", "int"),
    "cancelled": ("Cancelled signals", "int"), "count": ("Trades", "int"), "low": ("From", "number"),
    "high": ("To", "number"), "Total": ("Total", "pct"),
    **{month: (month, "pct") for month in MONTHS},
    **{reason: (reason.replace("_", " ").capitalize() + " (trades)", "int") for reason in (*CLOSE_REASONS, NO_REASON)},
}


def unit_label(unit: str) -> str:
    return "%" if unit == "percentage" else "quote"


def header(column: str, unit: str = "percentage") -> str:
    """`win_rate` -> `Win rate (%)`; a pnl column carries the report's unit."""
    name, kind = COLUMNS.get(column, (column.replace("_", " ").capitalize(), "number"))
    return f"{name} ({unit_label(unit)})" if kind == "pnl" else name


def missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def _significant(value: float) -> str:
    if value == 0:
        return "0"
    digits = max(0, 3 - int(math.floor(math.log10(abs(value)))))
    return f"{value:,.{min(digits, 8)}f}"


def duration_text(value: Any) -> str:
    seconds = int(pd.Timedelta(value).total_seconds())
    days, rest = divmod(abs(seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    sign = "-" if seconds < 0 else ""
    if days:
        return f"{sign}{days}d {hours}h"
    return f"{sign}{hours}h {minutes:02d}m" if hours else f"{sign}{minutes}m"


def cell(column: str, value: Any) -> str:
    """One value as text: rounded for its kind, `—` when missing, `∞` for an infinite ratio."""
    if missing(value):
        return NULL
    kind = COLUMNS.get(column, ("", "number"))[1]
    if hasattr(value, "item") and not isinstance(value, (pd.Timestamp, pd.Timedelta)):
        value = value.item()
    if kind in ("text", "id"):
        text = str(value)
        return text[:8] if kind == "id" and len(text) > 12 else text
    if kind == "time":
        return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M")
    if kind == "duration":
        return duration_text(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if kind == "int":
        return f"{int(value):,}"
    if kind in ("pct", "pnl", "ratio", "money"):
        return f"{value:,.2f}"
    if kind == "price":
        return _significant(value) if abs(value) < 1000 else f"{value:,.2f}"
    return _significant(value)


def html_table(frame: pd.DataFrame, unit: str = "percentage", index: str | None = None,
               css: str = "") -> str:
    """`frame` as an HTML table with human headers; the index becomes a first column headed `index`."""
    columns = list(frame.columns)
    head = ([f"<th>{html.escape(index)}</th>"] if index is not None else []) + [
        f"<th>{html.escape(header(c, unit))}</th>" for c in columns]
    body = []
    for label, row in zip(frame.index, frame.itertuples(index=False)):
        cells = [f"<th>{html.escape(str(label))}</th>"] if index is not None else []
        cells += [f"<td>{html.escape(cell(c, v))}</td>" for c, v in zip(columns, row)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='{css}'><thead><tr>{''.join(head)}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def figure_table(rows: dict[str, dict[str, Any]], unit: str = "percentage", first: str = "") -> str:
    """Figures down, groups across: `{group: {column: value}}` -> one row per column, one column per group."""
    groups = list(rows)
    names: list[str] = []
    for values in rows.values():
        names.extend(n for n in values if n not in names)
    head = f"<th>{html.escape(first)}</th>" + "".join(f"<th>{html.escape(g)}</th>" for g in groups)
    body = "".join(f"<tr><th>{html.escape(header(n, unit))}</th>"
                   + "".join(f"<td>{html.escape(cell(n, rows[g].get(n)))}</td>" for g in groups) + "</tr>"
                   for n in names)
    return f"<table class='figures'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


__all__ = ["COLUMNS", "NULL", "cell", "duration_text", "figure_table", "header", "html_table", "missing",
           "unit_label"]
