"""Results of stored backtests (and live sessions) for notebooks: trades, equity, summaries, candles and plots.

    analysis = store.analysis("backtest", strategy="my-strategy")   # or Analysis(store.database, ...)
    await analysis.trades()          # one row per closed signal
    await analysis.summary()         # per strategy × symbol
    await analysis.plot_equity()     # plotly: equity and drawdown

Everything only reads MongoDB, with one query per call (plots of trades: one for the trades, one for the
candles). Needs the `notebook` extra (pandas, plotly): `pip install 'backtest-store[notebook]'`.
"""

from __future__ import annotations

from typing import Any

from ..drivers import Database
from ..errors import ConfigurationError, InvalidInput

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ConfigurationError("analysis needs pandas: pip install 'backtest-store[notebook]'") from exc


from .. import validation
from ..models import StorageItem
from .frames import (
    BATCH_SIZE,
    OHLCV,
    OPEN_STATUSES,
    PENDING_STATUSES,
    TRADE_COLUMNS,
    last_candle,
    mode_flag,
    read_candles,
    read_signals,
    read_trades,
    time_ms,
    trades_match,
)
from .metrics import (
    ALL,
    CLOSE_REASONS,
    NO_REASON,
    equity_of,
    figures,
    max_drawdown,
    max_drawdown_points,
    pnl_column,
    profit_factor,
    summary_of,
)
from .stats import heat_of, statistics_of
from .plots import TRACES, equity_figure, trades_figure
from .report import Report
from .tearsheet import Comparison, Tearsheet, tearsheet_of
from .tables import FEE, SLIPPAGE, unrealized

PAD_CANDLES = 30  # candles shown before the first entry and after the last exit of a trades chart
MAX_CANDLES = 5000  # per chart in `report()`: a longer run shows its last MAX_CANDLES candles
MAX_CHARTS = 20  # trades charts in `report()` (one per symbol and exchange)


class Analysis:
    """The closed signals of one mode (`"backtest"` or `"live"`), optionally of one strategy, symbol, exchange and
    frame; open positions and scheduled or cancelled signals are read apart (`positions()`, `pending()`)."""

    def __init__(self, database: Database, mode: str = "backtest", *, strategy: str | None = None,
                 symbol: str | None = None, exchange: str | None = None, frame: str | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        mode_flag(mode)
        self.database = database
        self.mode = mode
        self.filters = {k: v for k, v in (("strategy", strategy), ("symbol", symbol), ("exchange", exchange),
                                          ("frame", frame)) if v is not None}
        self.match = trades_match(mode, strategy, symbol, exchange, frame)
        self.batch_size = validation.integer("batch_size", batch_size, minimum=1)

    def __repr__(self) -> str:
        return f"Analysis({self.database.name!r}, {self.mode!r}{''.join(f', {k}={v!r}' for k, v in self.filters.items())})"

    # -- data --------------------------------------------------------------------------------------------------

    async def trades(self) -> pd.DataFrame:
        """One row per closed signal, by close time: `signal_id, strategy, symbol, exchange, frame, side,
        open_time, close_time` (UTC), `duration`, `price_open, price_close, price_take_profit, price_stop_loss,
        pnl_percentage, pnl_cost, cost, close_reason, multiplier, isolated, total_entries, total_partials`.
        Whatever a stored row lacks is NA."""
        return await read_trades(self.database, self.match, self.batch_size)

    async def positions(self, interval: str = "1m", fee: float = FEE, slippage: float = SLIPPAGE) -> pd.DataFrame:
        """The open positions (never counted as trades), one row each, with `last_candle`, `last_price` and
        `unrealized_pnl` (%, backtest-kit's formula with its default fee and slippage, in %) and
        `unrealized_pnl_cost` at the close of the latest stored `interval` candle of their symbol and exchange
        (one query per symbol and exchange); `pnl_percentage` is the framework's own as of `updated_at`."""
        validation.interval(interval)
        positions = await read_signals(self.database, self._status(OPEN_STATUSES), self.batch_size)
        last: dict[tuple[str, str], tuple[pd.Timestamp, float]] = {}
        for symbol, exchange in positions[["symbol", "exchange"]].drop_duplicates().itertuples(index=False):
            if symbol is pd.NA or exchange is pd.NA:
                continue
            found = await last_candle(self.database, symbol, interval, exchange)
            if found is not None:
                last[(symbol, exchange)] = (pd.Timestamp(found[0], unit="ms", tz="UTC"), found[1])
        return unrealized(positions, last, fee, slippage)

    async def pending(self) -> pd.DataFrame:
        """Scheduled (waiting for their entry price) and cancelled signals, with a `status` column: never opened,
        never counted as trades."""
        return await read_signals(self.database, self._status(PENDING_STATUSES), self.batch_size)

    async def tearsheet(self, unit: str = "percentage", interval: str = "1m") -> Tearsheet:
        """Everything beyond the summary: equity per strategy, drawdown periods, monthly pnl, distributions,
        MAE/MFE, long vs short, best and worst trades, streaks, exposure, open positions, pending signals and
        the trade list (tables as DataFrames, `figures()` as plotly figures)."""
        pnl_column(unit)
        return tearsheet_of(self._title(None), await self.trades(), await self.positions(interval),
                            await self.pending(), unit)

    async def compare(self, other: "Analysis", unit: str = "percentage", interval: str = "1m") -> Comparison:
        """This run and `other` side by side (two strategies, two frames, a backtest and its live session):
        `table()` of figures, `figure()` of both equity curves."""
        return Comparison(await self.tearsheet(unit, interval), await other.tearsheet(unit, interval))

    def _status(self, statuses: tuple[str, ...]) -> dict[str, Any]:
        return {**self.match, "payload.status": {"$in": list(statuses)}}

    async def equity(self, unit: str = "percentage") -> pd.DataFrame:
        """Per trade in close-time order: `pnl`, cumulative `equity`, running `peak` and `drawdown` (≤ 0)."""
        pnl_column(unit)
        return equity_of(await self.trades(), unit)

    async def summary(self, unit: str = "percentage", total: bool = False) -> pd.DataFrame:
        """Per strategy × symbol: trades, win rate (%), pnl totals, profit factor, max drawdown, close reasons."""
        pnl_column(unit)
        return summary_of(await self.trades(), unit, total)

    async def statistics(self) -> pd.DataFrame:
        """backtest-kit's own figures per strategy × symbol × exchange × frame, as `Backtest.getData` (or, in live
        mode, `Live.getData`) computes them: Sharpe, Sortino, expectancy, ... (docs/statistics.md)."""
        return statistics_of(await self.trades(), live=self.mode == "live")

    async def heat(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """backtest-kit's `Heat.getData` per exchange × frame: (its symbol rows, its portfolio row). Heat pools every
        strategy of an exchange × frame; a strategy filter here leaves the other strategies out."""
        return heat_of(await self.trades())

    async def candles(self, symbol: str, interval: str = "1m", exchange: str | None = None, start: Any = None,
                      end: Any = None) -> pd.DataFrame:
        """OHLCV indexed by open time (UTC) with `start <= time <= end`, read with one query. `start` and `end`
        are aware datetimes, ISO 8601 text with a timezone or epoch ms (either may be None); `exchange` defaults
        to this analysis' exchange filter."""
        exchange = exchange if exchange is not None else self.filters.get("exchange")
        if exchange is None:
            raise InvalidInput("candles are stored per exchange: pass exchange=...")
        return await read_candles(self.database, symbol, interval, exchange, time_ms("start", start),
                                  time_ms("end", end))

    async def stored(self) -> dict[str, list[str]]:
        """The strategies, symbols and exchanges of this mode's closed signals, ignoring the filters (for hints)."""
        base = {"backtest": self.match["backtest"], "payload.status": "closed"}
        collection = self.database[StorageItem.collection_name()]
        return {name: sorted(v for v in await collection.distinct(f"payload.{field}", base) if isinstance(v, str))
                for name, field in (("strategy", "strategyName"), ("symbol", "symbol"), ("exchange", "exchangeName"))}

    # -- plots -------------------------------------------------------------------------------------------------

    async def plot_equity(self, unit: str = "percentage") -> Any:
        """The equity curve with its drawdown (plotly; traces `equity` and `drawdown`)."""
        equity = await self.equity(unit)
        return equity_figure(equity, f"Equity: {self._title(len(equity))}", unit)

    async def plot_trades(self, symbol: str, interval: str = "1m", exchange: str | None = None, start: Any = None,
                          end: Any = None) -> Any:
        """Candles of `symbol` with the entries and exits of its trades (traces `candles`, `entries`, `exits`).

        By default the window spans the trades, with a margin of candles; the exchange is the analysis' exchange
        filter, else the one of the trades when they have only one."""
        symbol = validation.context_str("symbol", symbol)
        step = validation.INTERVAL_MINUTES[validation.interval(interval)] * 60_000
        trades = await read_trades(self.database, {**self.match, "payload.symbol": symbol}, self.batch_size)
        if exchange is None and "exchange" not in self.filters:
            found = sorted(set(trades["exchange"].dropna()))
            if len(found) != 1:
                raise InvalidInput(f"pass exchange=...: the {symbol} trades are on "
                                   f"{', '.join(found) if found else 'no stored exchange'}")
            exchange = found[0]
        exchange = exchange if exchange is not None else self.filters["exchange"]
        # The trades of that exchange (or of none stored): another exchange's prices do not belong on these candles.
        trades = trades[(trades["exchange"] == exchange).fillna(True)]
        start_ms, end_ms = time_ms("start", start), time_ms("end", end)
        first, last = _span(trades)
        if start_ms is None and first is not None:
            start_ms = first - PAD_CANDLES * step
        if end_ms is None and last is not None:
            end_ms = last + PAD_CANDLES * step
        candles = await self.candles(symbol, interval, exchange, start_ms, end_ms)
        return trades_figure(candles, _within(trades, start_ms, end_ms), f"{symbol} on {exchange} ({interval})")

    async def report(self, interval: str = "1m", unit: str = "percentage", max_candles: int = MAX_CANDLES,
                     charts: bool = True, compare: "Analysis | None" = None) -> Report:
        """The summary (with a total row when there are several groups), the tearsheet, the equity figure, and one
        trades chart per symbol and exchange (at most MAX_CHARTS, each at most `max_candles` candles, the latest;
        none with `charts=False`, which reads no candles); `compare` sets another run beside this one."""
        pnl_column(unit)
        step = validation.INTERVAL_MINUTES[validation.interval(interval)] * 60_000
        max_candles = validation.integer("max_candles", max_candles, minimum=1)
        sheet = await self.tearsheet(unit, interval)
        trades = sheet.trades
        summary = sheet.summary
        comparison = Comparison(sheet, await compare.tearsheet(unit, interval)) if compare is not None else None
        equity = equity_figure(equity_of(trades, unit), f"Equity: {self._title(len(trades))}", unit)
        figures: dict[str, Any] = {}
        notes: list[str] = []
        pairs = trades[["symbol", "exchange"]].drop_duplicates().sort_values(["symbol", "exchange"])
        if not charts:
            pairs = pairs.iloc[:0]
        for symbol, exchange in pairs.itertuples(index=False):
            name = f"{symbol} on {exchange} ({interval})"
            if symbol is pd.NA or exchange is pd.NA:
                notes.append(f"{'?' if symbol is pd.NA else symbol}: no chart, the trades do not say their "
                             f"{'symbol' if symbol is pd.NA else 'exchange'}.")
                continue
            if len(figures) == MAX_CHARTS:
                notes.append(f"Charts stop at {MAX_CHARTS} symbols: use plot_trades() for the others.")
                break
            mine = trades[((trades["symbol"] == symbol) & (trades["exchange"] == exchange)).fillna(False)]
            first, last = _span(mine)
            if first is None or last is None:
                notes.append(f"{name}: no chart, the trades carry no entry or exit times.")
                continue
            start, end = first - PAD_CANDLES * step, last + PAD_CANDLES * step
            if (end - start) // step + 1 > max_candles:
                start = end - (max_candles - 1) * step
                notes.append(f"{name}: the chart shows the last {max_candles:,} candles only.")
            candles = await read_candles(self.database, symbol, interval, exchange, start, end)
            if candles.empty:
                notes.append(f"{name}: no candles stored for this window; entries and exits only.")
            figures[name] = trades_figure(candles, _within(mine, start, end), name)
        return Report(self.mode, dict(self.filters), unit, len(trades), summary, equity, figures, notes, sheet,
                      comparison)

    def _title(self, trades: int | None) -> str:
        where = "".join(f", {k} {v}" for k, v in self.filters.items())
        if trades is None:
            return f"{self.mode}{where}"
        return f"{self.mode}{where}, {trades:,} closed signal{'' if trades == 1 else 's'}"


def _span(trades: pd.DataFrame) -> tuple[int | None, int | None]:
    """The first entry (or exit) and the last exit (or entry) of trades, in epoch ms."""
    times = pd.concat([trades["open_time"], trades["close_time"]]).dropna()
    if times.empty:
        return None, None
    return int(times.min().value // 1_000_000), int(times.max().value // 1_000_000)


def _within(trades: pd.DataFrame, start: int | None, end: int | None) -> pd.DataFrame:
    """Trades open or closed inside the window (an unbounded side lets everything through)."""
    lo = pd.Timestamp(start, unit="ms", tz="UTC") if start is not None else None
    hi = pd.Timestamp(end, unit="ms", tz="UTC") if end is not None else None

    def inside(times: pd.Series) -> pd.Series:
        ok = times.notna()
        if lo is not None:
            ok &= times >= lo
        if hi is not None:
            ok &= times <= hi
        return ok.fillna(False)

    return trades[inside(trades["open_time"]) | inside(trades["close_time"])]


__all__ = ["ALL", "Analysis", "BATCH_SIZE", "CLOSE_REASONS", "Comparison", "MAX_CANDLES", "NO_REASON", "OHLCV",
           "Report", "TRACES", "TRADE_COLUMNS", "Tearsheet", "equity_figure", "equity_of", "figures", "heat_of",
           "max_drawdown", "max_drawdown_points", "profit_factor", "statistics_of", "summary_of", "trades_figure"]
