"""Our framework-parity statistics agree with empyrical-reloaded (Quantopian's empyrical, maintained by Stefan
Jansen) when it is given the same conventions.

The conventions: a trade is one period, its return is `pnl_percentage / 100`, the risk-free rate and the target
return are 0, and the periods a year are the framework's trades a year. Then:

- per-trade Sharpe is `sharpe_ratio(r, annualization=1)`, the annualized one `annualization=trades_per_year`;
- Sortino is `sortino_ratio(r, annualization=1)`: both divide the squared losses by every trade, not only losses;
- the drawdown of compounded equity is `max_drawdown`; marked to market, each trade is two periods: down to its
  worst intra-trade pnl, then on to its close, `(1 + r) / (1 + fall) - 1`;
- the expected yearly return (before the framework's ±100 % cap) is `cagr(r, annualization=trades_per_year)`.

quantstats computes the same figures but needs matplotlib, seaborn and yfinance, so it is not a test dependency.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from backtest_store.analysis import max_drawdown
from backtest_store.analysis.stats import closed_figures, equity_drawdown, heat_figures, trades_of

empyrical = pytest.importorskip("empyrical", reason="empyrical-reloaded is in the test extra: pip install -e '.[test]'")

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def trades(seed: int, count: int, days: float, low: float = -1.5, high: float = 1.8, zeros: int = 0) -> pd.DataFrame:
    """`count` trades over `days`, seeded; each dips below its close (`mae_percentage`) before closing."""
    rand = random.Random(seed)
    pnl = [round(rand.uniform(low, high), 4) for _ in range(count)]
    for i in range(zeros):
        pnl[(i * 5 + 1) % count] = 0.0
    step = days * DAY / count
    opened = [T0 + i * step for i in range(count)]
    return pd.DataFrame({
        "signal_id": [f"s{i:03}" for i in range(count)],
        "open_time": opened, "close_time": [t + step * 0.7 for t in opened],
        "pnl_percentage": pd.array(pnl, dtype="Float64"),
        "mae_percentage": pd.array([min(p, 0.0) - rand.uniform(0, 2) for p in pnl], dtype="Float64"),
        "mfe_percentage": pd.array([max(p, 0.0) + rand.uniform(0, 1) for p in pnl], dtype="Float64"),
        "price_close": pd.array([100 + i for i in range(count)], dtype="Float64"),
    })


CASES = {"mixed": trades(1, 40, 60), "zero pnl": trades(2, 25, 45, zeros=5), "no losses": trades(3, 15, 30, 0, 1),
         "losing": trades(4, 30, 100, -1.2, 0.9)}


def close(ours: float | None, theirs: float) -> bool:
    return ours is not None and math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_sharpe_and_sortino(case: str) -> None:
    frame = CASES[case]
    ours = closed_figures(trades_of(frame))
    r = frame["pnl_percentage"].to_numpy(dtype="float64") / 100
    assert close(ours["sharpe_ratio"], empyrical.sharpe_ratio(r, annualization=1))
    per_year = heat_figures(trades_of(frame))["trades_per_year"]
    assert per_year is not None
    assert close(ours["annualized_sharpe_ratio"], empyrical.sharpe_ratio(r, annualization=per_year))
    if (r < 0).any():
        assert close(ours["sortino_ratio"], empyrical.sortino_ratio(r, annualization=1))
    else:  # empyrical gives inf without a loss; the framework gives null
        assert ours["sortino_ratio"] is None and empyrical.sortino_ratio(r, annualization=1) == math.inf


@pytest.mark.parametrize("case", CASES)
def test_compounded_drawdown(case: str) -> None:
    frame = CASES[case]
    r = frame["pnl_percentage"].to_numpy(dtype="float64") / 100
    fall = frame["mae_percentage"].to_numpy(dtype="float64") / 100
    # Closes only: the framework's walk without intra-trade dips is empyrical's drawdown.
    at_close, _, _ = equity_drawdown(r * 100, np.full(len(r), math.nan))
    assert close(at_close, -100 * empyrical.max_drawdown(r))
    # Marked to market: each trade down to its worst pnl first, then to its close.
    marked = np.column_stack([fall, (1 + r) / (1 + fall) - 1]).ravel()
    assert close(max_drawdown(frame), -100 * empyrical.max_drawdown(marked))
    assert max_drawdown(frame) >= at_close  # the dips only deepen it


@pytest.mark.parametrize("case", CASES)
def test_expected_yearly_returns_is_cagr(case: str) -> None:
    frame = CASES[case]
    ours = heat_figures(trades_of(frame))
    r = frame["pnl_percentage"].to_numpy(dtype="float64") / 100
    growth = 100 * empyrical.cagr(r, annualization=ours["trades_per_year"])
    if abs(growth) > 100:  # the framework's cap: null rather than an implausible figure
        assert ours["expected_yearly_returns"] is None
    else:
        assert close(ours["expected_yearly_returns"], growth)
