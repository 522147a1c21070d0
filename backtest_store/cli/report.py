"""The `report` command: how stored backtests (or live sessions) did, per strategy and symbol.

    backtest-store report [--mode backtest|live] [--strategy S] [--symbol X] [--exchange E]
                          [--html report.html] [--interval 1m] [--unit percentage|cost] [--json]

Reads the closed signals of the Storage rows (`storage-items`) and prints per strategy × symbol: trades, win
rate, total and average pnl, profit factor, max drawdown and the close reasons. `--html` also writes one page
that works offline: the table, the equity curve with its drawdown, and per symbol the candles with the entries
and exits. Only MongoDB is needed. Needs the `notebook` extra: pip install 'backtest-store[notebook]'.
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
from .connect import add_uri_options, target_database

SHOWN = (("trades", "trades"), ("win_rate", "win %"), ("total_pnl", "pnl"), ("avg_pnl", "avg"),
         ("profit_factor", "PF"), ("max_drawdown", "max DD"))


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("report", help="summarise stored backtests per strategy and symbol; --html for plots",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("backtest", "live"), default="backtest",
                        help="which signals (default backtest)")
    parser.add_argument("--strategy", metavar="S", help="only this strategy")
    parser.add_argument("--symbol", metavar="X", help="only this symbol, e.g. BTCUSDT")
    parser.add_argument("--exchange", metavar="E", help="only this exchange")
    parser.add_argument("--html", metavar="PATH", help="also write the table and the plots to this HTML file")
    parser.add_argument("--interval", default="1m", help="candle interval of the HTML charts (default 1m)")
    parser.add_argument("--unit", choices=("percentage", "cost"), default="percentage",
                        help="pnl as the sum of pnl percentages (default) or of pnl cost (quote currency)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    add_uri_options(parser)
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Everything that can be refused before a server is reached."""
    for name in ("strategy", "symbol", "exchange"):
        value = getattr(args, name)
        if value is not None and not value.strip():
            raise InvalidInput(f"--{name} must not be empty")
    validation.interval(args.interval)
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
    console = Console(highlight=False)
    console.print(Text(f"MongoDB {where}", style="dim"))
    show(console, report, stored)
    if args.html is not None:
        console.print(Text(f"wrote {os.path.abspath(args.html)}"))
    return 0


async def _report(args: argparse.Namespace) -> tuple[str, Any, dict[str, list[str]] | None]:
    from ..analysis import Analysis

    async with target_database(args, "backtest-store-report") as (database, where):
        analysis = Analysis(database, args.mode, strategy=args.strategy, symbol=args.symbol, exchange=args.exchange)
        # The terminal table needs no candles: the charts are read only for the HTML page.
        report = await analysis.report(args.interval, args.unit, charts=args.html is not None)
        # With nothing found, say what is stored, so that a mistyped name shows.
        stored = await analysis.stored() if report.trades == 0 else None
        return where, report, stored


def _number(value: Any, digits: int = 2) -> str:
    if value != value:  # NaN
        return "NA"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return f"{value:,.{digits}f}"


def _table(headers: Any, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("strategy", no_wrap=True)
    table.add_column("symbol", no_wrap=True)
    for header in headers:
        table.add_column(header, justify="right", overflow="fold")
    return table


def show(console: Console, report: Any, stored: dict[str, list[str]] | None) -> None:
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
        names = [[Text("NA" if row[c] is None or row[c] is pd.NA else str(row[c])) for c in ("strategy", "symbol")]
                 for row in rows]
        figures = _table((title for _, title in SHOWN))
        for name, row in zip(names, rows):
            figures.add_row(*name, str(row["trades"]), *(_number(row[c]) for c, _ in SHOWN[1:]))
        console.print(figures)
        counts = _table(reasons, "close reasons")
        for name, row in zip(names, rows):
            counts.add_row(*name, *(str(row[r]) for r in reasons))
        console.print(counts)
        console.print(Text("win %: wins of the trades with a profit or a loss; PF: profit factor (NA without a win "
                           "or a loss); max DD: backtest-kit's, % of the peak of compounded equity", style="dim"))
    for note in report.notes:
        console.print(Text(note, style="yellow"))
