"""`Report`: the summary table and the figures of one analysis, as a notebook table, JSON or one offline HTML file."""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .metrics import SUMMARY_FIGURES

_STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:right}th{background:#f4f4f4}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
.wide{overflow-x:auto}.note{color:#8a6d3b}"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> Any:
    """A JSON value: NA, NaN and ±Infinity become null (as backtest-kit writes them), numpy scalars plain."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value: Any) -> str:
    if value is None or value is pd.NA:
        return "NA"
    if isinstance(value, float):
        if math.isnan(value):
            return "NA"
        return "inf" if math.isinf(value) else f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


@dataclass(frozen=True, repr=False)
class Report:
    mode: str
    filters: dict[str, str]  # strategy / symbol / exchange given, by name
    unit: str
    trades: int
    summary: pd.DataFrame
    equity: Any  # plotly Figure
    charts: dict[str, Any]  # "SYMBOL on EXCHANGE (interval)" -> plotly Figure
    notes: list[str] = field(default_factory=list)

    def headline(self) -> str:
        where = "".join(f", {k} {v}" for k, v in self.filters.items())
        trades = f"{self.trades:,} closed signal{'' if self.trades == 1 else 's'}"
        return f"{self.mode}{where}: {trades} (pnl in {'%' if self.unit == 'percentage' else 'quote currency'})"

    def __repr__(self) -> str:
        return f"<Report {self.headline()}>"

    def summary_rows(self) -> list[list[str]]:
        return [[_text(v) for v in row] for row in self.summary.itertuples(index=False)]

    def to_dict(self) -> dict[str, Any]:
        rows = [{k: _cell(v) for k, v in row.items()} for row in self.summary.to_dict("records")]
        return {"mode": self.mode, "filters": self.filters, "unit": self.unit, "trades": self.trades,
                "summary": rows, "charts": list(self.charts), "notes": self.notes}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def _table(self) -> str:
        head = "".join(f"<th>{_e(c)}</th>" for c in self.summary.columns)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in self.summary_rows())
        return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"

    def _notes(self) -> str:
        return "".join(f"<p class='note'>{_e(n)}</p>" for n in self.notes)

    def _repr_html_(self) -> str:
        # The figures are left out here (each renders by itself in Jupyter): a table and the notes only.
        return f"<div><h4>{_e(self.headline())}</h4>{self._table()}{self._notes()}</div>"

    def to_html(self) -> str:
        """One standalone page that works offline: plotly.js is embedded once, no CDN, no MathJax."""
        figures = [self.equity, *self.charts.values()]
        parts = [fig.to_html(full_html=False, include_plotlyjs=i == 0, include_mathjax=False,
                             config={"displaylogo": False}) for i, fig in enumerate(figures)]
        title = _e(f"backtest-store report: {self.headline()}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style>"
                f"</head><body><h2>{_e(self.headline())}</h2>{self._table()}{self._notes()}"
                + "".join(f"<div class='figure'>{p}</div>" for p in parts) + "</body></html>")

    def write_html(self, path: str | os.PathLike[str]) -> str:
        """Write `to_html()` to `path`; returns the path."""
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html())
        return path


__all__ = ["Report", "SUMMARY_FIGURES"]
