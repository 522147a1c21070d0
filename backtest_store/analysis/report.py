"""`Report`: the summary, the tearsheet and the figures of one analysis (optionally compared with another run), as
a notebook table, JSON or one offline HTML page that fits a 1,400 px window."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from .format import cell, figure_table, json_value, unit_label
from .metrics import SUMMARY_FIGURES

if TYPE_CHECKING:
    from .tearsheet import Comparison, Tearsheet

GROUPS_PER_TABLE = 6  # strategy × symbol columns per summary table: more go to the next table, never sideways
_STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1352px}h2{margin:0 0 4px}h3{margin:24px 0 4px}
table{border-collapse:collapse;font-size:12px;margin:8px 0 16px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
thead th{background:#f4f4f4;white-space:normal;vertical-align:bottom}tbody th{text-align:left;font-weight:600;
background:#fafafa}td:first-child{text-align:left}.wide{overflow-x:auto;max-width:100%}.note{color:#8a6d3b}
.hint{color:#666;font-size:12px;margin:0}.figure{max-width:100%}"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True, repr=False)
class Report:
    mode: str
    filters: dict[str, str]  # strategy / symbol / exchange / frame given, by name
    unit: str
    trades: int
    summary: pd.DataFrame
    equity: Any  # plotly Figure
    charts: dict[str, Any]  # "SYMBOL on EXCHANGE (interval)" -> plotly Figure
    notes: list[str] = field(default_factory=list)
    sheet: "Tearsheet | None" = None
    comparison: "Comparison | None" = None

    def headline(self) -> str:
        where = "".join(f", {k} {v}" for k, v in self.filters.items())
        trades = f"{self.trades:,} closed signal{'' if self.trades == 1 else 's'}"
        return f"{self.mode}{where}: {trades} (pnl in {'%' if self.unit == 'percentage' else 'quote currency'})"

    def __repr__(self) -> str:
        return f"<Report {self.headline()}>"

    def summary_rows(self) -> list[list[str]]:
        return [[cell(c, v) for c, v in zip(self.summary.columns, row)]
                for row in self.summary.itertuples(index=False)]

    def to_dict(self) -> dict[str, Any]:
        rows = [{str(k): json_value(v) for k, v in row.items()} for row in self.summary.to_dict("records")]
        out = {"mode": self.mode, "filters": self.filters, "unit": self.unit, "trades": self.trades,
               "summary": rows, "charts": list(self.charts), "notes": self.notes}
        if self.sheet is not None:
            out["tearsheet"] = self.sheet.to_dict()
        if self.comparison is not None:
            out["comparison"] = self.comparison.to_dict()
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def _table(self) -> str:
        """Figures down, strategy × symbol across, GROUPS_PER_TABLE groups per table: as many figures as the
        summary has (it gains some over time) never widen the page."""
        if self.summary.empty:
            return "<p>No closed trades.</p>"
        groups: dict[str, dict[str, Any]] = {}
        for row in self.summary.to_dict("records"):
            name = f"{cell('strategy', row['strategy'])} · {cell('symbol', row['symbol'])}"
            groups[name] = {str(k): v for k, v in row.items() if k not in ("strategy", "symbol")}
        names = list(groups)
        return "".join(
            f"<div class='wide'>{figure_table({n: groups[n] for n in names[i:i + GROUPS_PER_TABLE]}, self.unit)}</div>"
            for i in range(0, len(names), GROUPS_PER_TABLE))

    def _notes(self) -> str:
        return "".join(f"<p class='note'>{_e(n)}</p>" for n in self.notes)

    def _repr_html_(self) -> str:
        # The figures are left out here (each renders by itself in Jupyter): the tables and the notes only.
        sheet = self.sheet.sections() if self.sheet is not None else ""
        compared = self.comparison.html() if self.comparison is not None else ""
        return f"<div><h4>{_e(self.headline())}</h4>{self._table()}{self._notes()}{compared}{sheet}</div>"

    def figures(self) -> list[Any]:
        out = [self.equity]
        if self.comparison is not None:
            out.append(self.comparison.figure())
        if self.sheet is not None:
            out.extend(self.sheet.figures().values())
        return [*out, *self.charts.values()]

    def to_html(self) -> str:
        """One standalone page that works offline: plotly.js is embedded once, no CDN, no MathJax."""
        parts = [fig.to_html(full_html=False, include_plotlyjs=i == 0, include_mathjax=False,
                             config={"displaylogo": False, "responsive": True})
                 for i, fig in enumerate(self.figures())]
        title = _e(f"backtest-store report: {self.headline()}")
        units = (f"<p class='hint'>PnL in {unit_label(self.unit)} (percentages summed, as backtest-kit's reports "
                 f"do); times in UTC; — means no value.</p>")
        compared = self.comparison.html() if self.comparison is not None else ""
        sheet = self.sheet.sections() if self.sheet is not None else ""
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style>"
                f"</head><body><h2>{_e(self.headline())}</h2>{units}<h3>Summary</h3>{self._table()}{self._notes()}"
                f"{compared}" + "".join(f"<div class='figure'>{p}</div>" for p in parts) + sheet + "</body></html>")

    def write_html(self, path: str | os.PathLike[str]) -> str:
        """Write `to_html()` to `path`; returns the path."""
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html())
        return path


__all__ = ["GROUPS_PER_TABLE", "Report", "SUMMARY_FIGURES", "json_value"]
