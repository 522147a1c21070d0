"""The `report` command: how stored backtests (or live sessions) did, per strategy and symbol.

    backtest-store report [--mode backtest|live] [--strategy S] [--symbol X] [--exchange E] [--frame F]
                          [--compare KEY=VALUE[,KEY=VALUE]] [--html report.html] [--interval 1m]
                          [--unit percentage|cost] [--trades N] [--json]

Reads the Storage rows (`storage-items`) and prints per strategy × symbol: trades, win rate, total and average
pnl, profit factor, max drawdown and the close reasons; then the tearsheet: long vs short, drawdown periods,
streaks and exposure, best and worst trades, open positions (with their unrealized pnl at the last stored
candle), scheduled and cancelled signals, and the latest trades. `--compare` sets a second run beside the
first, given by what differs from it:

    backtest-store report --strategy walk-long --compare mode=live       # a backtest and its live session
    backtest-store report --strategy walk-long --compare strategy=limit-short

`--html` also writes one page that works offline: the tables, the equity curves, the distributions, MAE/MFE,
the trade list and per symbol the candles with the entries and exits. Only MongoDB is needed. Needs the
`notebook` extra: pip install 'backtest-store[notebook]'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import validation
from ..errors import InvalidInput
from . import output
from .connect import add_uri_options, target_database

SHOWN = (("trades", "trades"), ("win_rate", "win %"), ("total_pnl", "pnl"), ("avg_pnl", "avg"),
         ("profit_factor", "PF"), ("max_drawdown", "max DD"))
FILTERS = ("strategy", "symbol", "exchange", "frame")
COMPARED = ("mode", *FILTERS)  # what --compare may change


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("report", help="summarise stored backtests per strategy and symbol; --html for plots",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("backtest", "live"), default="backtest",
                        help="which signals (default backtest)")
    parser.add_argument("--strategy", metavar="S", help="only this strategy")
    parser.add_argument("--symbol", metavar="X", help="only this symbol, e.g. BTCUSDT")
    parser.add_argument("--exchange", metavar="E", help="only this exchange")
    parser.add_argument("--frame", metavar="F", help="only this frame (backtest-kit's frameName)")
    parser.add_argument("--compare", metavar="KEY=VALUE[,...]",
                        help="a second run beside the first: the first's filters with these changed "
                             f"({', '.join(COMPARED)})")
    parser.add_argument("--trades", type=int, default=10, metavar="N",
                        help="latest trades listed in the terminal (default 10; the HTML and JSON list them all)")
    parser.add_argument("--html", metavar="PATH", help="also write the table and the plots to this HTML file")
    parser.add_argument("--interval", default="1m", help="candle interval of the HTML charts (default 1m)")
    parser.add_argument("--unit", choices=("percentage", "cost"), default="percentage",
                        help="pnl as the sum of pnl percentages (default) or of pnl cost (quote currency)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    add_uri_options(parser)
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Everything that can be refused before a server is reached."""
    for name in FILTERS:
        value = getattr(args, name)
        if value is not None and not value.strip():
            raise InvalidInput(f"--{name} must not be empty")
    validation.interval(args.interval)
    args.other = _other(args) if args.compare is not None else None
    if args.trades < 0:
        raise InvalidInput("--trades must be 0 or more")
    if args.html is not None:
        path = os.path.abspath(args.html)
        if os.path.isdir(path):
            raise InvalidInput(f"--html {args.html}: is a directory; give a file name such as report.html")
        if not os.path.isdir(os.path.dirname(path)):
            raise InvalidInput(f"--html {args.html}: the directory {os.path.dirname(path)} does not exist")
    # pandas and plotly are optional: say so before connecting (ConfigurationError, exit 2).
    from ..analysis import Analysis  # noqa: F401
    from ..analysis.plots import plotly

    plotly()


def _other(args: argparse.Namespace) -> dict[str, Any]:
    """The second run of --compare: the first run's mode and filters, with the given ones changed."""
    other: dict[str, Any] = {"mode": args.mode, **{name: getattr(args, name) for name in FILTERS}}
    for part in args.compare.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in COMPARED:
            raise InvalidInput(f"--compare {args.compare!r:.80}: give KEY=VALUE pairs, KEY one of "
                               f"{', '.join(COMPARED)}")
        if key == "mode" and value not in ("backtest", "live"):
            raise InvalidInput(f"--compare mode must be backtest or live, got {value!r:.40}")
        other[key] = value or None
    return other


def run(args: argparse.Namespace) -> int:
    _check(args)
    where, report, stored = asyncio.run(_report(args))
    if args.html is not None:
        report.write_html(args.html)
    if args.json:
        print(report.to_json())
        if args.html is not None:
            print(f"wrote {os.path.abspath(args.html)}", file=sys.stderr)
        return 0
    console = output.console(highlight=False)
    console.print(Text(f"MongoDB {where}", style="dim"))
    show(console, report, stored, args.trades)
    if args.html is not None:
        console.print(Text(f"wrote {os.path.abspath(args.html)}"))
    return 0


async def _report(args: argparse.Namespace) -> tuple[str, Any, dict[str, list[str]] | None]:
    from ..analysis import Analysis

    async with target_database(args, "backtest-store-report") as (database, where):
        analysis = Analysis(database, args.mode, strategy=args.strategy, symbol=args.symbol, exchange=args.exchange,
                            frame=args.frame)
        other = None
        if args.other is not None:
            mode = args.other.pop("mode")
            other = Analysis(database, mode, **args.other)
        # The terminal table needs no candles: the charts are read only for the HTML page.
        report = await analysis.report(args.interval, args.unit, charts=args.html is not None, compare=other)
        # With nothing found, say what is stored, so that a mistyped name shows.
        stored = await analysis.stored() if report.trades == 0 else None
        return where, report, stored


def _number(value: Any, digits: int = 2) -> str:
    if value != value:  # NaN
        return "—"
    if value in (float("inf"), float("-inf")):
        return "∞" if value > 0 else "−∞"
    return f"{value:,.{digits}f}"


def _table(headers: Any, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("strategy", no_wrap=True)
    table.add_column("symbol", no_wrap=True)
    for header in headers:
        table.add_column(header, justify="right", overflow="fold")
    return table


def show(console: Console, report: Any, stored: dict[str, list[str]] | None, trades: int = 10) -> None:
    # Here, not at the top: every subcommand's module is imported to build the parser, and pandas is the optional
    # `notebook` extra (`pip install -e '.[embedded]' && backtest-store demo` has no pandas).
    import pandas as pd

    console.print(Text(report.headline(), style="bold"))
    if stored is not None:
        found = "; ".join(f"{name}: {', '.join(values)}" for name, values in stored.items() if values)
        console.print(Text(f"No closed signals match. Stored in {report.mode} mode: {found}" if found
                           else f"No closed signals are stored in {report.mode} mode.", style="yellow"))
    else:
        columns = list(report.summary.columns)
        reasons = columns[columns.index("total_pnl_cost") + 1:]
        rows = report.summary.to_dict("records")
        # Text, not str: rich would read "[...]" in stored names as markup.
        names = [[Text("—" if row[c] is None or row[c] is pd.NA else str(row[c])) for c in ("strategy", "symbol")]
                 for row in rows]
        figures = _table((title for _, title in SHOWN))
        for name, row in zip(names, rows):
            figures.add_row(*name, str(row["trades"]), *(_number(row[c]) for c, _ in SHOWN[1:]))
        console.print(figures)
        counts = _table(reasons, "close reasons")
        for name, row in zip(names, rows):
            counts.add_row(*name, *(str(row[r]) for r in reasons))
        console.print(counts)
        console.print(Text("win %: wins of the trades with a profit or a loss; PF: profit factor (— without a win "
                           "or a loss); max DD: backtest-kit's, % of the peak of compounded equity", style="dim"))
    if report.comparison is not None:
        show_comparison(console, report.comparison)
    if report.sheet is not None:
        show_sheet(console, report.sheet, trades)
    for note in report.notes:
        console.print(Text(note, style="yellow"))


def _frame_table(console: Console, frame: Any, columns: Any, title: str, unit: str) -> None:
    from ..analysis.format import COLUMNS, cell, header

    table = Table(title=title, title_justify="left")
    for column in columns:
        text = COLUMNS.get(column, ("", "number"))[1] in ("text", "id")
        table.add_column(header(column, unit), justify="left" if text else "right", overflow="fold")
    for row in frame[list(columns)].itertuples(index=False):
        table.add_row(*(Text(cell(c, v)) for c, v in zip(columns, row)))
    console.print(table)


def show_comparison(console: Console, comparison: Any) -> None:
    table = Table(title="comparison", title_justify="left")
    table.add_column("")
    for name in (comparison.a.label, comparison.b.label, "b − a"):
        table.add_column(Text(name), justify="right", overflow="fold")
    for row in comparison.rows():
        table.add_row(*(Text(v) for v in row))
    console.print(table)


def show_sheet(console: Console, sheet: Any, trades: int) -> None:
    """The tearsheet's tables that read in a terminal (the HTML page adds the figures and the whole list)."""
    from ..analysis.format import cell, header
    from ..analysis.tearsheet import PENDING_LIST, POSITION_LIST, TRADE_LIST

    unit = sheet.unit
    if len(sheet.trades):
        sides = sheet.sides.reset_index()
        _frame_table(console, sides, ("side", "trades", "win_rate", "total_pnl", "avg_pnl", "profit_factor"),
                     "long vs short", unit)
        _frame_table(console, sheet.drawdowns.head(5), ("start", "trough", "recovery", "depth", "duration",
                                                        "trades"), "drawdown periods (deepest 5)", unit)
        streaks = Table(title="streaks and exposure", title_justify="left", show_header=False)
        streaks.add_column("")
        streaks.add_column("", justify="right")
        for name, value in sheet.streaks.items():
            streaks.add_row(header(name, unit), cell(name, value))
        for row in sheet.exposure.to_dict("records"):
            streaks.add_row(Text(f"Exposure (%), {row['strategy']}"), cell("exposure", row["exposure"]))
        console.print(streaks)
        best, worst = sheet.extremes(3)
        _frame_table(console, best, TRADE_LIST[:7] + ("pnl_percentage", "close_reason"), "best trades", unit)
        _frame_table(console, worst, TRADE_LIST[:7] + ("pnl_percentage", "close_reason"), "worst trades", unit)
        if trades:
            _frame_table(console, sheet.trades.tail(trades), TRADE_LIST[:7] + ("pnl_percentage", "close_reason"),
                         f"latest trades ({min(trades, len(sheet.trades))} of {len(sheet.trades):,})", unit)
    if len(sheet.positions):
        _frame_table(console, sheet.positions, POSITION_LIST[:10], "open positions (not counted as trades)", unit)
    else:
        console.print(Text("No open positions.", style="dim"))
    if len(sheet.pending):
        _frame_table(console, sheet.pending, PENDING_LIST[:7], "scheduled and cancelled signals", unit)
