"""backtest-kit 19.5's own statistics against ours, figure for figure, on the same persisted rows.

`tests/interop/stats.mjs` gives the framework (Node.js) a `dump/` and asks it for `Backtest.getData`,
`Live.getData` and `Heat.getData` of every context of the closed rows; it reads them through its own file
persistence, as its reports do after a restart. The same rows are imported with `import_dump` and read back with
`Analysis.statistics()`, `Analysis.heat()` and `Analysis.summary()`. Every figure must agree to 1e-9, and every
null must be a null.

The rows: the real dump's storage (a backtest of 39 trades on two symbols, one live trade), plus edge cases written
in the framework's row shape, each on an exchange of its own so that Heat pools it alone (see `EDGE_CASES`). Heat
computes a pooled drawdown for its Calmar and Recovery but does not return it: a copy of each pool's rows as one
symbol on an exchange `<exchange>~pooled` (given to the framework only) makes it return that drawdown, and every
per-symbol figure of the pool, as one Heat row.

The framework comes from BACKTEST_KIT_NODE_MODULES, as in tests/test_framework_interop.py (never skipped).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from backtest_store import Store
from backtest_store.analysis import stats
from backtest_store.dump import import_dump

from .realdata import unpack_dump
from .test_framework_interop import NODE_TIMEOUT, framework, node  # noqa: F401  (fixtures)

SCRIPT = Path(__file__).resolve().parent / "interop" / "stats.mjs"
DAY, MIN = 86_400_000, 60_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
POOLED = "~pooled"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Our field -> the framework's, where the snake_case spelling is not the whole story.
CLOSED_NAMES = {**{f: camel(f) for f in stats.CLOSED}, "wins": "winCount", "losses": "lossCount"}
HEAT_NAMES = {**{f: camel(f) for f in stats.HEAT}, "trades": "totalTrades", "wins": "winCount",
              "losses": "lossCount"}
PORTFOLIO_NAMES = {**{f: "portfolio" + camel(f)[0].upper() + camel(f)[1:] for f in stats.PORTFOLIO},
                   "symbols": "totalSymbols", "trades": "portfolioTotalTrades"}
del PORTFOLIO_NAMES["max_drawdown"]  # not returned by Heat: checked through the pooled copy


# -- rows ------------------------------------------------------------------------------------------------------------


def signal(exchange: str, strategy: str, symbol: str, opened: int, closed: int, pnl: float, fall: float,
           peak: float, price: float, *, live: bool = False) -> dict[str, Any]:
    """A closed Storage row as backtest-kit 19.5 persists it (the fields its statistics and our import read)."""
    signal_id = str(uuid.UUID(int=random.Random(f"{exchange}{strategy}{symbol}{opened}").getrandbits(128)))
    level = {"price": price, "timestamp": opened, "priceOpen": price, "priceClose": price, "pnlEntries": 100}
    return {
        "position": "long", "priceTakeProfit": price * 1.02, "priceStopLoss": price * 0.98, "minuteEstimatedTime": 600,
        "note": "", "id": signal_id, "cost": 100, "priceOpen": price, "multiplier": 1, "isolated": True,
        "symbol": symbol, "exchangeName": exchange, "strategyName": strategy, "frameName": "" if live else "edge",
        "scheduledAt": opened, "pendingAt": opened, "timestamp": opened, "_isScheduled": False,
        "_entry": [{"price": price, "cost": 100, "timestamp": opened}],
        "_peak": {**level, "pnlPercentage": peak, "pnlCost": peak},
        "_fall": {**level, "pnlPercentage": fall, "pnlCost": fall},
        "maxDrawdown": {**level, "pnlPercentage": fall, "pnlCost": fall},
        "peakProfit": {**level, "pnlPercentage": peak, "pnlCost": peak},
        "originalPriceOpen": price, "originalPriceStopLoss": price * 0.98, "originalPriceTakeProfit": price * 1.02,
        "partialExecuted": 0, "totalEntries": 1, "totalPartials": 0,
        "pnl": {"pnlPercentage": pnl, "priceOpen": price, "priceClose": price, "pnlCost": pnl, "pnlEntries": 100},
        "status": "closed", "priority": closed, "currentPrice": price * (1 + pnl / 100), "closeReason": "closed",
        "closeTimestamp": closed, "createdAt": opened, "updatedAt": closed,
    }


def series(exchange: str, pnls: list[float], days: float, *, symbols: tuple[str, ...] = ("EDGEUSDT",),
           strategies: tuple[str, ...] = ("edge",), live: bool = False, seed: int = 1,
           unmarked: int = 0) -> list[dict[str, Any]]:
    """One trade per pnl, spread evenly over `days` (distinct close times), round-robin over symbols and
    strategies; each dips below its close by a seeded amount (its `maxDrawdown`) and peaks above it, except every
    `unmarked`-th trade, which carries neither (as rows written before the framework stored them)."""
    rand = random.Random(seed)
    step = days * DAY / len(pnls)
    price = 100.0
    rows = []
    for i, pnl in enumerate(pnls):
        opened = T0 + int(i * step)
        closed = opened + int(step * 0.8) + rand.randrange(MIN)
        price = round(price * (1 + rand.uniform(-0.02, 0.025)), 4)
        fall = round(min(pnl, 0.0) - rand.uniform(0, 1.5), 6)
        peak = round(max(pnl, 0.0) + rand.uniform(0, 1), 6)
        row = signal(exchange, strategies[i % len(strategies)], symbols[i % len(symbols)], opened, closed, pnl,
                     fall, peak, price, live=live)
        if unmarked and i % unmarked == 0:
            for key in ("maxDrawdown", "peakProfit", "_peak", "_fall"):
                del row[key]
        rows.append(row)
    return rows


def pnls(seed: int, count: int, low: float, high: float, zeros: int = 0) -> list[float]:
    rand = random.Random(seed)
    values = [round(rand.uniform(low, high), 4) for _ in range(count)]
    for i in range(zeros):
        values[(i * 7 + 3) % count] = 0.0
    return values


# Each on an exchange of its own; what the framework gates or nulls in it.
EDGE_CASES: dict[str, list[dict[str, Any]]] = {
    # Zero-pnl trades: neither wins nor losses; annualized (14 trades over 30 days).
    "zero-pnl": series("zero-pnl", pnls(1, 14, -1.2, 1.5, zeros=4), 30),
    # No losses: no profit factor, Sortino or Certainty; the drawdown comes from intra-trade dips only.
    "no-losses": series("no-losses", pnls(2, 12, 0, 0.3, zeros=2), 20),
    # No wins: no profit factor, win rate 0.
    "no-wins": series("no-wins", pnls(3, 12, -0.3, 0, zeros=1), 20),
    # Every pnl 0: stdDev 0 gives no Sharpe; Backtest's win rate is 0, Heat's is null.
    "all-zero": series("all-zero", [0.0] * 10, 20),
    # Under the 14-day span: nothing annualized, the per-trade ratios are there.
    "short-span": series("short-span", pnls(4, 12, -1, 1.2), 3),
    # More than 365 trades a year: too clustered to annualize.
    "clustered": series("clustered", pnls(5, 20, -1, 1.2), 15),
    # One trade: below every sample gate.
    "single": series("single", [0.7], 1),
    # Nine trades: one below the ratio gate.
    "nine": series("nine", pnls(6, 9, -1, 1.2), 20),
    # A trade at -120 % (leveraged): the account is blown, the drawdown is 100.
    "blown": series("blown", [*pnls(7, 10, -0.5, 0.6), -120.0], 30),
    # A large edge: the expected yearly return passes the ±100 % cap and is null.
    "over-cap": series("over-cap", pnls(8, 12, 0.5, 2), 20),
    # Two symbols, one of them traded by two strategies (Heat merges them per symbol); annualized pool.
    "pool": series("pool", pnls(9, 21, -1, 1.3, zeros=2), 30, symbols=("AAAUSDT", "BBBUSDT", "AAAUSDT"),
                   strategies=("p1", "p1", "p2")),
    # Every other trade without its intra-trade dip and peak: those neither mark the drawdown nor count in means.
    "unmarked": series("unmarked", pnls(11, 12, -1, 1.2), 20, unmarked=2),
    # A live session of 11 trades over 20 days.
    "live": series("live", pnls(10, 11, -1, 1.3, zeros=1), 20, live=True),
}


def write_rows(dump: Path, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        folder = dump / "data" / "storage" / ("backtest" if row["frameName"] else "live")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{row['id']}.json").write_text(json.dumps(row))


def pooled_copies(dump: Path) -> list[dict[str, Any]]:
    """Every closed row again as symbol POOLED on `<exchange>~pooled`, with a new id."""
    copies = []
    for path in sorted(dump.glob("data/storage/*/*.json")):
        row = json.loads(path.read_text())
        if row and row.get("status") == "closed":
            copies.append({**row, "symbol": "POOLED", "exchangeName": row["exchangeName"] + POOLED,
                           "id": str(uuid.uuid5(uuid.NAMESPACE_OID, row["id"]))})
    return copies


# -- the oracle, once for the module ---------------------------------------------------------------------------------


@dataclass(repr=False)
class Oracle:
    framework: dict[str, list[dict[str, Any]]]
    statistics: dict[str, pd.DataFrame]  # per mode, Analysis.statistics()
    heat: dict[str, tuple[pd.DataFrame, pd.DataFrame]]  # per mode, Analysis.heat()
    summaries: dict[tuple[str, str, str], pd.DataFrame]  # per mode × exchange × frame, summary(total=True)


@pytest.fixture(scope="module")
async def oracle(servers, node: str, framework: Path,  # noqa: F811
                 tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    root = tmp_path_factory.mktemp("stats")
    real = unpack_dump(root / "real")
    ours = root / "ours" / "dump"  # what we import: the real storage rows and the edge cases
    shutil.copytree(real / "data" / "storage", ours / "data" / "storage")
    for rows in EDGE_CASES.values():
        write_rows(ours, rows)
    theirs = root / "theirs"  # what the framework reads: the same rows and the pooled copies
    shutil.copytree(ours, theirs / "dump")
    write_rows(theirs / "dump", pooled_copies(ours))

    command = [node, str(SCRIPT), str(theirs), str(framework)]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=NODE_TIMEOUT)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(f"{' '.join(command)} exited with {done.returncode}\nstderr:\n{done.stderr[-4000:]}")
    computed = json.loads(lines[-1])

    database = f"stats_{uuid.uuid4().hex[:10]}"
    store = await Store.open(mongo_url=servers.mongo_db(database), redis_url=servers.redis,
                             cache_prefix=f"stats_{uuid.uuid4().hex[:10]}")
    try:
        await store.create_indexes()
        report = await import_dump(store, ours)
        assert report.skipped == 0, report.skipped_files
        modes = ("backtest", "live")
        statistics = {mode: await store.analysis(mode).statistics() for mode in modes}
        heat = {mode: await store.analysis(mode).heat() for mode in modes}
        summaries = {}
        for mode in modes:
            trades = await store.analysis(mode).trades()
            for (exchange, frame), _ in trades.groupby(["exchange", "frame"]):
                summaries[mode, exchange, frame] = await store.analysis(mode, exchange=exchange).summary(total=True)
    finally:
        await store.mongo.drop_database(database)
        await store.flush_cache()
        await store.close()
    return Oracle(computed, statistics, heat, summaries)


# -- comparing -------------------------------------------------------------------------------------------------------


def value(cell: Any) -> Any:
    if cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell)):
        return None
    return cell.item() if hasattr(cell, "item") else cell


def differences(where: str, ours: dict[str, Any], theirs: dict[str, Any], names: dict[str, str]) -> Iterator[str]:
    for field, name in names.items():
        mine, expected = value(ours[field]), theirs[name]
        if mine is None or expected is None or isinstance(expected, str):
            same = mine == expected
        else:
            same = math.isclose(mine, expected, rel_tol=1e-9, abs_tol=1e-9)
        if not same:
            yield f"{where}: {field} ours {mine!r}, framework's {name} {expected!r}"


def row_of(table: pd.DataFrame, **keys: str) -> dict[str, Any]:
    match = table
    for column, key in keys.items():
        match = match[match[column] == key]
    assert len(match) == 1, (keys, len(match))
    return dict(match.iloc[0])


def test_every_context_was_computed_by_the_framework(oracle: Oracle) -> None:
    computed = oracle.framework
    exchanges = {e["exchangeName"] for e in computed["heat"]}
    assert {*EDGE_CASES, "synth-walk", "synth-live"} | {f"{e}{POOLED}" for e in (*EDGE_CASES, "synth-walk",
                                                                                  "synth-live")} == exchanges
    assert sum(e["stats"]["totalSignals"] for e in computed["backtest"] if POOLED not in e["exchangeName"]) == (
        39 + sum(len(rows) for name, rows in EDGE_CASES.items() if name != "live"))
    # The gates under test did gate: a guard against edge cases that exercise nothing.
    heat = {(e["exchangeName"]): e["stats"]["symbols"][0] for e in computed["heat"] if len(e["stats"]["symbols"]) == 1}
    assert heat["no-losses"]["profitFactor"] is None and heat["no-wins"]["profitFactor"] is None
    assert heat["all-zero"]["winRate"] is None and heat["all-zero"]["sharpeRatio"] is None
    assert heat["short-span"]["expectedYearlyReturns"] is None and heat["short-span"]["sharpeRatio"] is not None
    assert heat["clustered"]["tradesPerYear"] is None and heat["zero-pnl"]["tradesPerYear"] is not None
    assert heat["zero-pnl"]["calmarRatio"] is not None and heat["single"]["stdDev"] is None
    assert heat["nine"]["sharpeRatio"] is None and heat["blown"]["maxDrawdown"] == 100
    assert heat["over-cap"]["expectedYearlyReturns"] is None and heat["over-cap"]["tradesPerYear"] is not None
    assert heat["unmarked"]["avgFallPnl"] is not None


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_backtest_and_live_getdata(oracle: Oracle, mode: str) -> None:
    """Every figure of `Backtest.getData` / `Live.getData`, per symbol × strategy × exchange × frame."""
    ours = oracle.statistics[mode]
    found: list[str] = []
    contexts = [e for e in oracle.framework[mode] if POOLED not in e["exchangeName"]]
    assert len(ours) == len(contexts) and contexts
    names = {**CLOSED_NAMES, "trades": "totalSignals" if mode == "backtest" else "totalClosed"}
    for e in contexts:
        mine = row_of(ours, strategy=e["strategyName"], symbol=e["symbol"], exchange=e["exchangeName"],
                      frame=e["frameName"])
        found += differences(f"{mode} {e['exchangeName']} {e['symbol']} {e['strategyName']}", mine, e["stats"], names)
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_heat_getdata(oracle: Oracle, mode: str) -> None:
    """Every figure of `Heat.getData`: each symbol row, the portfolio's pooled figures, and the pooled drawdown."""
    symbols, portfolios = oracle.heat[mode]
    found: list[str] = []
    heats = {e["exchangeName"]: e for e in oracle.framework["heat"] if e["mode"] == mode}
    originals = [name for name in heats if not name.endswith(POOLED)]
    assert len(portfolios) == len(originals) and originals
    for exchange in originals:
        e = heats[exchange]
        for theirs in e["stats"]["symbols"]:
            mine = row_of(symbols, exchange=exchange, frame=e["frameName"], symbol=theirs["symbol"])
            found += differences(f"heat {exchange} {theirs['symbol']}", mine, theirs, HEAT_NAMES)
        portfolio = row_of(portfolios, exchange=exchange, frame=e["frameName"])
        found += differences(f"portfolio {exchange}", portfolio, e["stats"], PORTFOLIO_NAMES)
        (pooled,) = heats[exchange + POOLED]["stats"]["symbols"]
        found += differences(f"portfolio {exchange}", portfolio, pooled, {"max_drawdown": "maxDrawdown"})
        # Our summary's figures are the framework's Heat definitions, for each symbol and for the whole pool.
        summary = oracle.summaries[mode, exchange, e["frameName"]]
        figures = {"wins": "winCount", "losses": "lossCount", "win_rate": "winRate", "total_pnl": "totalPnl",
                   "avg_pnl": "avgPnl", "profit_factor": "profitFactor", "max_drawdown": "maxDrawdown"}
        found += differences(f"summary {exchange} (all)", row_of(summary, strategy="(all)"), pooled, figures)
        if len(summary) == 2:  # one strategy × symbol: its row is the symbol's Heat row
            (theirs,) = e["stats"]["symbols"]
            found += differences(f"summary {exchange}", dict(summary.iloc[0]), theirs, figures)
    assert found == [], "\n".join(found)


def test_real_dump_drawdowns_are_the_issues(oracle: Oracle) -> None:
    """The figures issue 18 quotes from the framework: BTCUSDT 14.765, ETHUSDT 4.615, all 17.808; live 0.3996."""
    symbols, portfolios = oracle.heat["backtest"]
    walk = symbols[symbols["exchange"] == "synth-walk"].set_index("symbol")["max_drawdown"]
    assert (round(walk["BTCUSDT"], 3), round(walk["ETHUSDT"], 3)) == (14.765, 4.615)
    assert round(row_of(portfolios, exchange="synth-walk")["max_drawdown"], 3) == 17.808
    live = oracle.heat["live"][0]
    assert round(row_of(live, exchange="synth-live")["max_drawdown"], 4) == 0.3996
