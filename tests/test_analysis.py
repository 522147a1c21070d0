"""Results analysis: trades, equity, summary, candles, plots, the `report` command and the example notebook.

Figures are checked against values computed by hand on a small fixture written through the Storage adapter
(rows shaped like backtest-kit 19.5's), against the real dump's storage files after `import_dump`, and on a
database written by the TypeScript original.
"""

from __future__ import annotations

import asyncio
import glob
import json
import math
import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from pymongo import AsyncMongoClient, monitoring

from backtest_store import Store
from backtest_store.analysis import TRADE_COLUMNS, Analysis
from backtest_store.analysis.tables import pnl_at
from backtest_store.cli import main
from backtest_store.errors import InvalidInput

from .browser import overflowing, screenshot_colours
from .realdata import load_ts_original, unpack_dump

NOTEBOOK = Path(__file__).parent.parent / "examples" / "results.ipynb"
CONFIGURATION = ("CC_MONGO_CONNECTION_STRING", "CC_REDIS_URL", "CC_REDIS_HOST", "CC_REDIS_PASSWORD")
T0 = 1740787200000  # 2025-03-01T00:00:00Z
MIN = 60_000


def row(signal_id: str, strategy: str, symbol: str, opened: int, closed: int | None, pnl: float, reason: str | None,
        *, side: str = "long", cost: float = 100, status: str = "closed", **extra: Any) -> dict[str, Any]:
    """A Storage row as backtest-kit 19.5 writes it (see the real dump's data/storage/*/*.json)."""
    price = 100.0 if symbol == "BTCUSDT" else 10.0
    sign = 1 if side == "long" else -1
    close_price = price * (1 + sign * pnl / 100)
    level = {"pnlPercentage": 0, "priceOpen": 0, "priceClose": 0, "pnlCost": 0, "pnlEntries": 0}
    out: dict[str, Any] = {
        "position": side, "priceOpen": price, "priceTakeProfit": price * (1 + sign * 0.02),
        "priceStopLoss": price * (1 - sign * 0.03), "minuteEstimatedTime": 120, "note": "", "id": signal_id,
        "cost": cost, "multiplier": 1, "isolated": True, "symbol": symbol, "exchangeName": "ex",
        "strategyName": strategy, "frameName": "f", "scheduledAt": opened, "pendingAt": opened, "timestamp": opened,
        "_isScheduled": False, "_entry": [{"price": price, "cost": cost, "timestamp": opened}],
        "_peak": {**level, "price": price, "timestamp": opened}, "_fall": {**level, "price": price, "timestamp": opened},
        "originalPriceOpen": price, "originalPriceStopLoss": price, "originalPriceTakeProfit": price,
        "maxDrawdown": level, "peakProfit": level, "partialExecuted": 0, "totalEntries": 1, "totalPartials": 0,
        "pnl": {"pnlPercentage": pnl, "priceOpen": price, "priceClose": close_price, "pnlCost": pnl * cost / 100,
                "pnlEntries": cost},
        "status": status, "priority": 1795422791762, "createdAt": opened, "updatedAt": closed or opened,
    }
    if status == "closed":
        out.update(currentPrice=close_price, closeReason=reason, closeTimestamp=closed)
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


# Close order: A1 B1 A2 A3 B2 A4 B3. By hand, in %:
#   equity 2, 3, 2, -1, -1, 0.5, 1;  peak 2, 3, 3, 3, 3, 3, 3;  drawdown 0, 0, -1, -4, -4, -2.5, -2.
#   A (BTCUSDT): +2 -1 -3 +1.5: total -0.5, 2 wins / 2 losses, gross 3.5 / 4, profit factor 0.875, max dd 4
#   B (ETHUSDT): +1 0 +0.5: total 1.5, 2 wins / 0 losses (0 is neither), win rate 2/2, no profit factor, dd 0
#   all: total 1, 4 wins / 2 losses of 7 (win rate 4/6), gross 5 / 4, profit factor 1.25, max dd 4
# backtest-kit's max drawdown compounds (no trade dips below its close here): -1 % then -3 % from the peak is
# 1 - 0.99 * 0.97 = 3.97 %, for A and for all.
FRAMEWORK_DD = 100 * (1 - 0.99 * 0.97)
CLOSED = [
    row("A1", "alpha", "BTCUSDT", T0, T0 + 10 * MIN, 2.0, "take_profit", cost=200),
    row("B1", "beta", "ETHUSDT", T0 + 5 * MIN, T0 + 20 * MIN, 1.0, "take_profit", side="short"),
    row("A2", "alpha", "BTCUSDT", T0 + 25 * MIN, T0 + 30 * MIN, -1.0, "stop_loss"),
    row("A3", "alpha", "BTCUSDT", T0 + 35 * MIN, T0 + 40 * MIN, -3.0, "liquidation", multiplier=10, isolated=False),
    # No close reason, no `isolated`, a `multiplier` of the wrong type: NA, never a crash.
    row("B2", "beta", "ETHUSDT", T0 + 45 * MIN, T0 + 50 * MIN, 0.0, None, side="short", isolated=None,
        multiplier="x"),
    row("A4", "alpha", "BTCUSDT", T0 + 55 * MIN, T0 + 60 * MIN, 1.5, "closed"),
    row("B3", "beta", "ETHUSDT", T0 + 62 * MIN, T0 + 70 * MIN, 0.5, "time_expired", side="short"),
]
NOT_CLOSED = [
    row("A5", "alpha", "BTCUSDT", T0 + 80 * MIN, None, 0.4, None, status="opened", currentPrice=100.4),
    row("B4", "beta", "ETHUSDT", 0, None, 0, None, status="scheduled", pendingAt=0),
    row("B5", "beta", "ETHUSDT", 0, None, 0, None, status="cancelled", pendingAt=0),
]
LIVE = [row("L1", "alpha", "BTCUSDT", T0 + 90 * MIN, T0 + 95 * MIN, 9.0, "take_profit")]


async def write_fixture(store: Store) -> None:
    await store.adapters.storage(True).write_storage_data(CLOSED + NOT_CLOSED)
    await store.adapters.storage(False).write_storage_data(LIVE)


async def write_candles(store: Store, symbol: str = "BTCUSDT", exchange: str = "ex", count: int = 90) -> None:
    await store.adapters.candle(symbol, "1m", exchange).write_candles_data([
        {"timestamp": T0 + i * MIN, "open": 100 + i, "high": 101 + i, "low": 99 + i, "close": 100.5 + i,
         "volume": 10 + i} for i in range(count)])


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: list[monitoring.CommandStartedEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.events.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e.command for e in self.events if e.command_name == name]


async def watched(store: Store) -> tuple[AsyncMongoClient, Commands]:
    """A second client on the store's database that records every command it sends."""
    commands = Commands()
    client: AsyncMongoClient = AsyncMongoClient(store.settings.mongo_url, tz_aware=True, event_listeners=[commands])
    return client, commands


# -- figures on the hand-computed fixture ----------------------------------------------------------------------------


async def test_trades_are_the_closed_rows_with_typed_columns(store: Store) -> None:
    await write_fixture(store)
    trades = await store.analysis("backtest").trades()
    assert list(trades["signal_id"]) == ["A1", "B1", "A2", "A3", "B2", "A4", "B3"]  # by close time
    assert str(trades["open_time"].dtype) == "datetime64[ms, UTC]" and str(trades["duration"].dtype) == "timedelta64[ms]"
    assert {c: str(trades[c].dtype) for c in ("price_open", "pnl_percentage", "pnl_cost", "multiplier")} == dict.fromkeys(
        ("price_open", "pnl_percentage", "pnl_cost", "multiplier"), "Float64")
    assert (str(trades["isolated"].dtype), str(trades["total_entries"].dtype), str(trades["side"].dtype)) == (
        "boolean", "Int64", "string")
    first = trades.iloc[0]
    assert first["open_time"] == pd.Timestamp("2025-03-01T00:00:00Z")
    assert first["close_time"] == pd.Timestamp("2025-03-01T00:10:00Z")
    assert first["duration"] == pd.Timedelta(minutes=10)
    assert (first["side"], first["strategy"], first["exchange"], first["frame"]) == ("long", "alpha", "ex", "f")
    assert (first["price_open"], first["price_take_profit"], first["price_close"]) == (100.0, 102.0, 102.0)
    assert (first["pnl_percentage"], first["pnl_cost"], first["cost"]) == (2.0, 4.0, 200.0)
    by_id = trades.set_index("signal_id")
    assert by_id.loc["B1", "side"] == "short" and by_id.loc["B1", "price_stop_loss"] == pytest.approx(10.3)
    assert (by_id.loc["A3", "multiplier"], by_id.loc["A3", "isolated"]) == (10.0, False)
    assert by_id.loc["B2", "close_reason"] is pd.NA and by_id.loc["B2", "isolated"] is pd.NA
    assert by_id.loc["B2", "multiplier"] is pd.NA

    live = await store.analysis("live").trades()
    assert list(live["signal_id"]) == ["L1"]
    only = await store.analysis("backtest", strategy="beta", symbol="ETHUSDT", exchange="ex").trades()
    assert list(only["signal_id"]) == ["B1", "B2", "B3"]
    assert (await store.analysis("backtest", exchange="other").trades()).empty


async def test_equity_and_drawdown_by_hand(store: Store) -> None:
    await write_fixture(store)
    equity = await store.analysis().equity()
    assert list(equity["equity"]) == pytest.approx([2, 3, 2, -1, -1, 0.5, 1])
    assert list(equity["peak"]) == pytest.approx([2, 3, 3, 3, 3, 3, 3])
    assert list(equity["drawdown"]) == pytest.approx([0, 0, -1, -4, -4, -2.5, -2])
    assert equity["time"].iloc[-1] == pd.Timestamp("2025-03-01T01:10:00Z")
    cost = await store.analysis().equity("cost")
    assert list(cost["pnl"]) == pytest.approx([4, 1, -1, -3, 0, 1.5, 0.5])  # A1 cost 200: 2 % is 4


async def test_summary_by_hand(store: Store) -> None:
    await write_fixture(store)
    summary = (await store.analysis().summary(total=True)).set_index(["strategy", "symbol"])
    alpha, beta, everything = (summary.loc[k] for k in (("alpha", "BTCUSDT"), ("beta", "ETHUSDT"), ("(all)", "(all)")))
    assert (alpha["trades"], alpha["wins"], alpha["losses"], alpha["win_rate"]) == (4, 2, 2, 50.0)
    assert (alpha["total_pnl"], alpha["avg_pnl"]) == pytest.approx((-0.5, -0.125))
    assert (alpha["gross_profit"], alpha["gross_loss"], alpha["profit_factor"]) == pytest.approx((3.5, 4, 0.875))
    assert (alpha["max_drawdown"], alpha["max_drawdown_points"]) == pytest.approx((FRAMEWORK_DD, 4))
    assert alpha["total_pnl_cost"] == pytest.approx(1.5)  # 4 - 1 - 3 + 1.5
    assert (beta["trades"], beta["wins"], beta["losses"]) == (3, 2, 0)
    # The zero-pnl trade is neither a win nor a loss: 2 wins of 2 decisive trades.
    assert beta["win_rate"] == 100 and beta["total_pnl"] == pytest.approx(1.5)
    assert math.isnan(beta["profit_factor"]) and beta["max_drawdown"] == beta["max_drawdown_points"] == 0
    assert (everything["trades"], everything["wins"], everything["losses"]) == (7, 4, 2)
    assert everything["win_rate"] == pytest.approx(400 / 6)
    assert (everything["total_pnl"], everything["profit_factor"], everything["max_drawdown"],
            everything["max_drawdown_points"]) == pytest.approx((1, 1.25, FRAMEWORK_DD, 4))
    reasons = ["take_profit", "stop_loss", "time_expired", "closed", "liquidation", "unknown"]
    assert list(summary.columns[-6:]) == reasons
    assert [alpha[r] for r in reasons] == [1, 1, 0, 1, 1, 0]
    assert [beta[r] for r in reasons] == [1, 0, 1, 0, 0, 1]
    assert [everything[r] for r in reasons] == [2, 1, 1, 1, 1, 1]
    # The figures of the cost unit and of a filtered analysis.
    in_cost = (await store.analysis(strategy="alpha").summary("cost")).iloc[0]
    assert (in_cost["total_pnl"], in_cost["max_drawdown_points"], in_cost["profit_factor"]) == pytest.approx(
        (1.5, 4, 5.5 / 4))
    assert in_cost["max_drawdown"] == pytest.approx(FRAMEWORK_DD)  # always of pnl %: compounding needs returns


async def test_report_table_has_no_infinity(store: Store, no_configuration: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """beta has no losing trade: its profit factor does not exist, and the table says —, never inf or ∞."""
    await write_fixture(store)
    assert await cli("report", "--uri", store.settings.mongo_url) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\binf\b|∞", out), out
    beta = next(line for line in out.splitlines() if "beta" in line)
    assert re.search(r"beta\W+ETHUSDT\W+3\W+100\.00\W+1\.50\W+0\.50\W+—\W+0\.00\W", beta), beta


async def test_tearsheet_by_hand(store: Store) -> None:
    await write_fixture(store)
    await write_candles(store)
    sheet = await store.analysis().tearsheet()
    # One fall: from the peak 3 (B1's close, 00:20) to -1 (A3's close, 00:40), never recovered by the last close.
    (period,) = sheet.drawdowns.to_dict("records")
    assert (period["start"], period["trough"], period["recovery"]) == (
        pd.Timestamp("2025-03-01T00:20Z"), pd.Timestamp("2025-03-01T00:40Z"), pd.NaT)
    assert (period["depth"], period["duration"], period["trades"]) == (4, pd.Timedelta(minutes=50), 5)
    assert sheet.monthly.loc[2025, "Mar"] == pytest.approx(1) and sheet.monthly.loc[2025, "year"] == pytest.approx(1)
    assert pd.isna(sheet.monthly.loc[2025, "Feb"])
    # Close order 2, 1, -1, -3, 0, 1.5, 0.5: two wins (3), two losses (-4), and a run of two wins now.
    assert sheet.streaks == pytest.approx({"max_wins": 2, "max_wins_pnl": 3, "max_losses": 2, "max_losses_pnl": -4,
                                           "current": 2})
    assert list(sheet.sides["trades"]) == [4, 3, 7] and list(sheet.sides.index) == ["long", "short", "all"]
    assert sheet.sides.loc["short", "total_pnl"] == pytest.approx(1.5)
    best, worst = sheet.extremes(2)
    assert list(best["signal_id"]) == ["A1", "A4"] and list(worst["signal_id"]) == ["A3", "A2"]
    # In market: alpha 25 of 60 min, beta 28 of 65, together 48 of 70 (overlaps counted once).
    exposure = sheet.exposure.set_index("strategy")
    assert list(exposure["in_market"]) == [pd.Timedelta(minutes=m) for m in (25, 28, 48)]
    assert list(exposure["exposure"]) == pytest.approx([2500 / 60, 2800 / 65, 4800 / 70])
    assert list(sheet.curves) == ["alpha", "beta", "(all)"]
    assert list(sheet.curves["beta"]["equity"]) == pytest.approx([1, 1, 1.5])
    assert list(sheet.trades["mae_percentage"]) == [0] * 7  # the fixture's _fall never moved
    # Open and pending signals: listed apart, never trades.
    (position,) = sheet.positions.to_dict("records")
    assert (position["signal_id"], position["last_candle"], position["last_price"]) == (
        "A5", pd.Timestamp("2025-03-01T01:29Z"), 189.5)  # the 90th candle closes at 100.5 + 89
    assert position["unrealized_pnl"] == pytest.approx(pnl_at("long", 100, 189.5))
    assert position["unrealized_pnl_cost"] == pytest.approx(position["unrealized_pnl"])  # cost 100
    assert list(zip(sheet.pending["signal_id"], sheet.pending["status"])) == [("B5", "cancelled"), ("B4", "scheduled")]
    assert sheet.headline()["trades"] == 7 and sheet.headline()["open_positions"] == 1
    assert (sheet.headline()["scheduled"], sheet.headline()["cancelled"]) == (1, 1)
    assert set(sheet.figures()) == {"equity by strategy", "pnl distribution", "trade durations", "mae/mfe"}
    assert json.loads(json.dumps(sheet.to_dict(), allow_nan=False))["open_positions"][0]["signal_id"] == "A5"
    # A position without stored candles has no unrealized pnl, and is still listed.
    other = await store.analysis(strategy="alpha", exchange="ex").positions(interval="5m")
    assert len(other) == 1 and pd.isna(other.loc[0, "unrealized_pnl"])


async def test_compare_two_strategies_and_backtest_with_live(store: Store) -> None:
    await write_fixture(store)
    comparison = await store.analysis(strategy="alpha").compare(store.analysis(strategy="beta"))
    table = comparison.table()
    assert list(table.loc["trades"]) == [4, 3, -1]
    assert list(table.loc["total_pnl"]) == pytest.approx([-0.5, 1.5, 2])
    assert [t.name for t in comparison.figure().data] == ["backtest, strategy alpha", "backtest, strategy beta"]
    # Two frames: the fixture's rows are all in frame "f".
    frames = await store.analysis(frame="f").compare(store.analysis(frame="other"))
    assert list(frames.table().loc["trades"]) == [7, 0, -7] and frames.b.label == "backtest, frame other"
    live = await store.analysis(strategy="alpha").compare(store.analysis("live", strategy="alpha"))
    assert list(live.table().loc["total_pnl"]) == pytest.approx([-0.5, 9, 9.5])
    assert ("Total PnL (%)", "-0.50", "9.00", "9.50") in live.rows()
    assert json.loads(json.dumps(live.to_dict(), allow_nan=False))["figures"]["trades"] == {
        "a": 4, "b": 1, "difference": -3}


async def test_trades_stream_through_the_cursor_in_batches(store: Store) -> None:
    """Scaled down from the 100k benchmark: the rows come in batches of a projected cursor, never whole."""
    rows = [row(f"S{i:03}", "s", "BTCUSDT", T0 + i * MIN, T0 + (i + 1) * MIN, 0.1, "take_profit",
                note="x" * 2000) for i in range(25)]
    await store.adapters.storage(True).write_storage_data(rows)
    client, commands = await watched(store)
    try:
        trades = await Analysis(client[store.database.name], "backtest", batch_size=10).trades()
    finally:
        await client.close()
    assert len(trades) == 25
    (find,) = commands.named("find")
    assert find["batchSize"] == 10 and find["filter"] == {"backtest": True, "payload.status": "closed"}
    projection = find["projection"]
    assert "payload" not in projection and "payload.note" not in projection and "payload._entry" not in projection
    assert projection["payload.pnl.pnlPercentage"] == 1 and projection["_id"] == 0
    assert len(commands.named("getMore")) == 2  # 10 + 10 + 5


async def test_candles_are_one_query(store: Store) -> None:
    await write_candles(store)
    await write_candles(store, exchange="other", count=5)
    client, commands = await watched(store)
    try:
        analysis = Analysis(client[store.database.name])
        candles = await analysis.candles("BTCUSDT", "1m", "ex", start="2025-03-01T00:10:00Z", end=T0 + 69 * MIN)
    finally:
        await client.close()
    assert len(commands.named("find")) == 1 and commands.named("getMore") == []
    assert len(candles) == 60 and list(candles.columns) == ["open", "high", "low", "close", "volume"]
    assert candles.index[0] == pd.Timestamp("2025-03-01T00:10:00Z") and candles.index.name == "time"
    assert candles.index[-1] == pd.Timestamp("2025-03-01T01:09:00Z")  # the end is included
    assert (candles.iloc[0]["open"], candles.iloc[0]["volume"]) == (110.0, 20.0)
    assert len(await store.analysis().candles("BTCUSDT", "1m", "other")) == 5
    with pytest.raises(InvalidInput, match="exchange"):
        await store.analysis().candles("BTCUSDT")
    with pytest.raises(InvalidInput, match="timezone"):
        await store.analysis().candles("BTCUSDT", "1m", "ex", start="2025-03-01T00:00:00")


async def test_plots_have_their_traces_and_save_offline(store: Store, tmp_path: Path) -> None:
    await write_fixture(store)
    await write_candles(store)
    analysis = store.analysis()
    equity = await analysis.plot_equity()
    assert [(t.type, t.name) for t in equity.data] == [("scatter", "equity"), ("scatter", "drawdown")]
    assert list(equity.data[0].y) == pytest.approx([0, 2, 3, 2, -1, -1, 0.5, 1])  # from 0
    assert list(equity.data[1].y) == pytest.approx([0, 0, 0, -1, -4, -4, -2.5, -2])
    chart = await analysis.plot_trades("BTCUSDT")
    assert [(t.type, t.name) for t in chart.data] == [("candlestick", "candles"), ("scatter", "entries"),
                                                      ("scatter", "exits")]
    assert len(chart.data[1].x) == 4 and list(chart.data[2].y) == pytest.approx([102, 99, 97, 101.5])
    assert len(chart.data[0].x) == 90  # the trades ± 30 candles, clipped to what is stored
    # With trades on two exchanges, the chart asks which one, and shows only that exchange's trades.
    await store.adapters.storage(True).write_storage_data([row("O1", "alpha", "BTCUSDT", T0, T0 + MIN, 1.0, "closed",
                                                               exchangeName="other")])
    with pytest.raises(InvalidInput, match="exchange=.*BTCUSDT trades are on ex, other"):
        await analysis.plot_trades("BTCUSDT")
    assert len((await analysis.plot_trades("BTCUSDT", exchange="ex")).data[1].x) == 4
    report = await analysis.report()
    assert list(report.charts) == ["BTCUSDT on ex (1m)", "BTCUSDT on other (1m)", "ETHUSDT on ex (1m)"]
    assert any("ETHUSDT on ex (1m): no candles" in n for n in report.notes)
    page = Path(report.write_html(tmp_path / "r.html")).read_text()
    assert "<script src" not in page and page.count("Plotly.newPlot") == 4 + 4  # equity, 3 charts, the tearsheet's 4
    assert json.loads(report.to_json())["summary"][1]["profit_factor"] is None  # inf is null, as the framework writes


async def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="mode"):
        store.analysis("paper")
    with pytest.raises(InvalidInput, match="strategy"):
        store.analysis(strategy={"$ne": None})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="unit"):
        await store.analysis().summary("usd")
    with pytest.raises(InvalidInput, match="interval"):
        await store.analysis().plot_trades("BTCUSDT", "7m")


async def test_an_empty_store_gives_empty_frames(store: Store) -> None:
    analysis = store.analysis()
    trades = await analysis.trades()
    assert trades.empty and "close_time" in trades.columns and str(trades["close_time"].dtype) == "datetime64[ms, UTC]"
    assert (await analysis.equity()).empty and (await analysis.summary()).empty
    assert [t.name for t in (await analysis.plot_equity()).data] == ["equity", "drawdown"]
    report = await analysis.report()
    assert (report.trades, report.charts) == (0, {})


# -- the TypeScript original's database ------------------------------------------------------------------------------


async def test_trades_of_the_typescript_originals_database(store: Store) -> None:
    await load_ts_original(store.database, "current", indexes=False)
    analysis = store.analysis()
    trades = await analysis.trades()
    # Its rows carry only id, status, symbol and pnl.pnlPercentage: everything else is NA.
    assert list(trades["signal_id"]) == ["st-A-2", "st-B-2"]
    assert list(trades["symbol"]) == ["BTCUSDT", "ETHUSDT"] and list(trades["pnl_percentage"]) == [1.25, 1.25]
    assert trades["close_time"].isna().all() and trades["strategy"].isna().all() and trades["pnl_cost"].isna().all()
    summary = await analysis.summary()
    assert list(summary["trades"]) == [1, 1] and list(summary["unknown"]) == [1, 1]
    assert list((await analysis.equity())["equity"]) == [1.25, 2.5]
    figure = await analysis.plot_equity()
    assert list(figure.data[0].x) == [0, 1, 2]  # no close times: the trade number
    report = await analysis.report()
    assert report.charts == {} and len(report.notes) == 2


# -- the real dump ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealDump:
    store: Store
    dump: Path
    data: Path  # the embedded servers' data directory
    notebook: Any  # examples/results.ipynb, executed


async def execute_notebook(path: Path, cwd: Path, env: pytest.MonkeyPatch) -> Any:
    """Run a notebook headless as an analyst runs it, in `cwd`, with nothing configured but what `env` sets."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    for name in CONFIGURATION:
        env.delenv(name, raising=False)
    # The kernel imports this checkout's backtest_store, whichever one the environment has installed.
    env.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(NOTEBOOK.parent.parent),
                                                           os.environ.get("PYTHONPATH")))))
    # A kernelspec of our own, so the kernel is this venv's python whatever else is installed.
    write_kernel_spec(cwd / "kernels" / "backtest-store-test")
    km = AsyncKernelManager(kernel_name="backtest-store-test",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(cwd / "kernels")]))
    notebook = nbformat.read(path, as_version=4)
    await NotebookClient(notebook, km=km, timeout=180, resources={"metadata": {"path": str(cwd)}}).async_execute()
    return notebook


@pytest.fixture(scope="module")
async def real_dump(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealDump]:
    """The real backtest-kit dump, imported by the example notebook into the embedded servers of a data directory.

    The notebook runs headless as an analyst runs it, with nothing configured: its own `import_dump` cell does the
    import (once for this file: it is most of the file's time). The servers, started here, stay up for the
    module, so that the figures and the `report` command are checked on the same data.
    """
    root = tmp_path_factory.mktemp("real-dump")
    dump, data = unpack_dump(root), root / "data"
    store = await Store.local(data)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("BACKTEST_STORE_DATA_DIR", str(data))
            env.setenv("BACKTEST_STORE_DUMP", str(dump))
            notebook = await execute_notebook(NOTEBOOK, root, env)
        yield RealDump(store, dump, data, notebook)
    finally:
        await store.close()


def storage_rows(dump: Path, mode: str) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text()) for p in sorted(glob.glob(str(dump / "data" / "storage" / mode / "*.json")))]


async def test_real_dump_figures_match_its_storage_files(real_dump: RealDump) -> None:
    store, dump = real_dump.store, real_dump.dump
    for mode in ("backtest", "live"):
        closed = [r for r in storage_rows(dump, mode) if r["status"] == "closed"]
        trades = await store.analysis(mode).trades()
        assert len(trades) == len(closed) and set(trades["signal_id"]) == {r["id"] for r in closed}
        assert trades["pnl_percentage"].sum() == pytest.approx(sum(r["pnl"]["pnlPercentage"] for r in closed))
        assert trades["close_time"].notna().all() and trades["open_time"].notna().all()
        assert (trades["duration"] > pd.Timedelta(0)).all()
        by_id = trades.set_index("signal_id")
        for r in closed:
            assert by_id.loc[r["id"], "close_time"] == pd.Timestamp(r["closeTimestamp"], unit="ms", tz="UTC")
            assert by_id.loc[r["id"], "price_close"] == r["currentPrice"]
        summary = await store.analysis(mode).summary()
        groups = Counter((r["strategyName"], r["symbol"]) for r in closed)
        assert dict(zip(zip(summary["strategy"], summary["symbol"]), summary["trades"])) == groups
        reasons = Counter(r["closeReason"] for r in closed)
        assert {k: int(summary[k].sum()) for k in reasons} == reasons
        wins = sum(r["pnl"]["pnlPercentage"] > 0 for r in closed)
        assert summary["wins"].sum() == wins
    backtest = await store.analysis().summary(total=True)
    assert backtest.iloc[-1]["trades"] == 39
    assert backtest.iloc[-1]["total_pnl"] == pytest.approx(backtest.iloc[:-1]["total_pnl"].sum())


async def test_real_dump_open_positions_and_pending_signals(real_dump: RealDump) -> None:
    store, dump = real_dump.store, real_dump.dump
    live = storage_rows(dump, "live")
    (opened,) = [r for r in live if r["status"] == "opened"]
    positions = await store.analysis("live").positions()
    assert list(positions["signal_id"]) == [opened["id"]]
    position = positions.iloc[0]
    candles = await store.analysis("live").candles(opened["symbol"], "1m", opened["exchangeName"])
    assert position["last_candle"] == candles.index[-1] and position["last_price"] == candles["close"].iloc[-1]
    assert position["pnl_percentage"] == opened["pnl"]["pnlPercentage"]
    assert position["mae_percentage"] == opened["_fall"]["pnlPercentage"]
    # The unrealized pnl is backtest-kit's own formula: at each stored pnl's close price, it gives the stored pnl.
    closed = [r for mode in ("backtest", "live") for r in storage_rows(dump, mode) if r["status"] == "closed"]
    for r in [opened, *closed]:
        pnl = r["pnl"]
        assert pnl_at(r["position"], pnl["priceOpen"], pnl["priceClose"]) == pytest.approx(pnl["pnlPercentage"],
                                                                                        abs=1e-9), r["id"]
    assert position["unrealized_pnl"] == pytest.approx(pnl_at("long", opened["pnl"]["priceOpen"],
                                                              candles["close"].iloc[-1]))
    pending = {mode: Counter((await store.analysis(mode).pending())["status"]) for mode in ("backtest", "live")}
    assert pending == {"backtest": {"cancelled": 5}, "live": {"scheduled": 1}}
    assert (await store.analysis().positions()).empty
    sheet = await store.analysis().tearsheet()
    assert len(sheet.trades) == 39 and sheet.headline()["cancelled"] == 5
    assert sheet.trades["mae_percentage"].notna().all() and (sheet.trades["mae_percentage"] <= 0).all()
    assert (sheet.trades["mfe_percentage"] >= 0).all()


async def cli(*argv: str) -> int:
    # The command calls asyncio.run, which needs a thread without a running loop.
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
def no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONFIGURATION:
        monkeypatch.delenv(name, raising=False)


async def test_report_command_on_the_real_dump(real_dump: RealDump, tmp_path: Path, no_configuration: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data, html = real_dump.data, tmp_path / "report.html"
    assert await cli("report", "--data-dir", str(data), "--html", str(html)) == 0
    out = capsys.readouterr().out
    assert "backtest: 39 closed signals" in out and "walk-long" in out and "limit-short" in out
    # In all: 39 trades, 11 wins (28.21 %), -17.07 % in total; 8 take profits, 13 stop losses, 18 expired.
    assert re.search(r"\(all\)\W+\(all\)\W+39\W+28\.21\W+-17\.07\W", out)
    assert re.search(r"\(all\)\W+\(all\)\W+8\W+13\W+18\W+0\W+0\W", out.split("close reasons")[1])

    assert await cli("report", "--data-dir", str(data), "--mode", "live", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["mode"], report["trades"], report["summary"][0]["take_profit"]) == ("live", 1, 1)

    assert await cli("report", "--data-dir", str(data), "--strategy", "nope") == 0
    assert "Stored in backtest mode: strategy: limit-short, walk-long" in " ".join(capsys.readouterr().out.split())

    # The tearsheet in the terminal: the live session's open position and scheduled signal, never trades.
    assert await cli("report", "--data-dir", str(data), "--mode", "live") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "live: 1 closed signal" in out and "open positions (not counted as trades)" in out
    assert "scheduled and cancelled signals" in out and "scheduled" in out.split("scheduled and cancelled")[1]
    # A backtest and its live session side by side.
    assert await cli("report", "--data-dir", str(data), "--strategy", "walk-long", "--compare", "mode=live",
                     "--json") == 0
    compared = json.loads(capsys.readouterr().out)["comparison"]
    assert (compared["a"], compared["b"]) == ("backtest, strategy walk-long", "live, strategy walk-long")
    assert compared["figures"]["trades"] == {"a": 23, "b": 1, "difference": -22}
    assert compared["figures"]["open_positions"] == {"a": 0, "b": 1, "difference": 1}

    page = html.read_text()
    # The equity, one chart per symbol, the tearsheet's 4.
    assert "<script src" not in page and page.count("Plotly.newPlot") == 3 + 4


@pytest.mark.browser
async def test_report_html_renders_offline_in_chromium(real_dump: RealDump, tmp_path: Path,
                                                       no_configuration: None) -> None:
    """Rendered offline by headless Chromium: plotly drew its plot areas and the equity line, and nothing is wider
    than a 1,400 px window (the check itself sees the same page overflow a 600 px one)."""
    html = tmp_path / "report.html"
    assert await cli("report", "--data-dir", str(real_dump.data), "--html", str(html)) == 0
    size = (1400, 1600)
    colours = screenshot_colours(html, tmp_path, size)
    non_white = size[0] * size[1] - colours[b"\xff\xff\xff"]
    plot_area = colours[bytes((0xE5, 0xEC, 0xF6))]  # plotly's default plot background
    equity_line = colours[bytes((0x1F, 0x77, 0xB4))]  # the equity trace
    assert non_white > size[0] * size[1] // 5, f"the page looks blank: {non_white} non-white pixels"
    assert plot_area > 100_000, f"no plot area drawn: {plot_area} pixels of plotly's background"
    assert equity_line > 200, f"no equity line drawn: {equity_line} pixels"
    assert overflowing(html, tmp_path, 1400) == []
    assert any(found.startswith("table ends at") for found in overflowing(html, tmp_path, 600))
    compared = tmp_path / "compared.html"
    assert await cli("report", "--data-dir", str(real_dump.data), "--strategy", "walk-long", "--compare", "mode=live",
                     "--html", str(compared)) == 0
    assert overflowing(compared, tmp_path, 1400) == []


async def test_report_command_refuses_bad_input_with_one_line(tmp_path: Path, no_configuration: None,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # Refused before any server is reached (no --data-dir servers are started for them).
    for argv, message in ((("--html", str(tmp_path / "missing" / "r.html")), "does not exist"),
                          (("--html", str(tmp_path)), "is a directory"),
                          (("--interval", "7m"), "interval '7m'"), (("--strategy", ""), "--strategy must not be empty"),
                          (("--compare", "strategy"), "give KEY=VALUE pairs"),
                          (("--compare", "mode=paper"), "mode must be backtest or live")):
        assert await cli("report", "--data-dir", str(tmp_path / "data"), *argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("backtest-store: error: ") and message in err
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)  # the notebook extra is not installed
    assert await cli("report", "--data-dir", str(tmp_path / "data")) == 2
    assert "pip install 'backtest-store[notebook]'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
    with pytest.raises(SystemExit) as exit_:
        await cli("report", "--mode", "paper")
    assert exit_.value.code == 2


# -- the example notebook --------------------------------------------------------------------------------------------


async def test_notebook_runs_headless_after_import_dump(real_dump: RealDump) -> None:
    cells = {cell.id: cell for cell in real_dump.notebook.cells}

    def text(cell_id: str) -> str:
        return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cells[cell_id].outputs)

    def traces(cell_id: str) -> list[tuple[str, str]]:
        (figure,) = [o["data"]["application/vnd.plotly.v1+json"] for o in cells[cell_id].outputs
                     if "application/vnd.plotly.v1+json" in o.get("data", {})]
        return [(t["type"], t["name"]) for t in figure["data"]]

    # A first import of all 8,186 files (the one literal null, a cleared Schedule, is imported or reported as
    # skipped depending on the importer's version).
    imported = re.search(r"imported (\d+), unchanged 0, skipped (\d+)", text("import"))
    assert imported and int(imported[1]) + int(imported[2]) == 8186 and int(imported[2]) <= 1, text("import")
    assert traces("equity") == [("scatter", "equity"), ("scatter", "drawdown")]
    assert f"[39 rows x {len(TRADE_COLUMNS)} columns]" in text("trades")
    summary = text("summary")
    assert "walk-long" in summary and "limit-short" in summary
    assert re.search(r"\(all\)\s+\(all\)\s+39\s+11\s+28\s", summary)  # trades, wins, losses in all
    assert traces("plot-trades") == [("candlestick", "candles"), ("scatter", "entries"), ("scatter", "exits")]
    assert text("candles").startswith("60 2025-03-01 00:00:00+00:00 2025-03-01 00:59:00+00:00")
    assert "take_profit" in text("live") and "walk-long" in text("live")
    # The live session's open position, with its unrealized pnl; backtest and live side by side.
    assert "BTCUSDT" in text("positions") and "long" in text("positions")
    assert "Drawdown periods" in "".join(o.get("data", {}).get("text/html", "") for o in cells["tearsheet"].outputs)


def _outputs(notebook: Any) -> dict[str, list[Any]]:
    return {cell.id: cell.outputs for cell in notebook.cells if cell.cell_type == "code"}


@pytest.mark.servers  # starts embedded servers (or a CLI that does) of its own
async def test_notebook_runs_on_a_fresh_clone_after_the_demo(tmp_path: Path, no_configuration: None,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """README's path: a clone, `backtest-store demo` at its root (data in ./.backtest-store), then the notebook,
    with no dump and nothing configured; every figure also carries a static SVG for viewers without plotly.js."""
    clone = tmp_path / "clone"
    (clone / "examples").mkdir(parents=True)
    notebook = Path(shutil.copy(NOTEBOOK, clone / "examples"))
    assert await cli("demo", "--data-dir", str(clone / ".backtest-store"), "--symbols", "2", "--minutes", "600",
                     "--json") == 0
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as env:
        for name in ("BACKTEST_STORE_DATA_DIR", "BACKTEST_STORE_DUMP"):
            env.delenv(name, raising=False)
        ran = _outputs(await execute_notebook(notebook, clone / "examples", env))
    assert not (clone / "dump").exists()
    assert "no dump at" in ran["import"][0]["text"]
    figures = [o for outputs in ran.values() for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 5  # equity, the tearsheet's equity by strategy and MAE/MFE, the comparison, a trades chart
    for figure in figures:
        svg = figure["data"]["image/svg+xml"]
        assert svg.startswith("<svg") and ("<polyline" in svg or "<circle" in svg), svg[:300]
    (sheet,) = [o["data"]["text/html"] for o in ran["tearsheet"] if "text/html" in o.get("data", {})]
    for section in ("Drawdown periods", "Monthly PnL", "Long vs short", "Open positions", "Trade list"):
        assert section in sheet
    assert "demo-momentum" in "".join(o.get("data", {}).get("text/plain", "") for o in ran["trades"])
    assert "Trades" in "".join(o.get("data", {}).get("text/html", "") for o in ran["compare"])
