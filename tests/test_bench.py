"""`backtest-store bench` at tiny sizes: every design and every call is measured and reported. The measurements
themselves are not asserted (no timings in tests); `tests/test_round_trips.py` asserts the round trips."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from backtest_store.bench import SCENARIOS, VARIANTS
from backtest_store.bench.report import render
from backtest_store.cli import main


@pytest.mark.servers  # the CLI (or Store.local) starts embedded servers of its own
def test_bench_smoke(tmp_path: Path, capsys) -> None:
    report = tmp_path / "performance.md"
    code = main(["bench", "--sizes", "1,3", "--budget", "0.01", "--minutes", "3", "--symbols", "1", "--json",
                 "--markdown", str(report)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)

    calls = {(row["call"], row["size"], row["variant"]): row for row in result["calls"]}
    assert set(calls) == {(s.key, n, v) for s in SCENARIOS for n in (1, 3) for v in VARIANTS}
    for key, row in calls.items():
        assert "skipped" not in row and "failed" not in row, key
        assert row["cpu_ms"] > 0 and row["wall_ms"] > 0 and row["rounds"] >= 1, key
        if row["variant"] == "files":
            assert row["mongo"] == row["redis"] == 0, key
        else:
            assert row["mongo"] >= 1, key
    # The round trips are the server-independent part: what the designs send differs as designed.
    # A keyed write or read of a key whose _id the process knows (the counted call follows a warm-up call): one
    # MongoDB command, no Redis, as the minimal client (f), which never uses Redis.
    for variant in ("shipped", "floor", "no-cache", "minimal"):
        assert calls[("keyed_write", 3, variant)]["mongo_names"] == {"findAndModify": 1}, variant
        assert calls[("keyed_write", 3, variant)]["redis"] == 0, variant
        assert calls[("keyed_read", 3, variant)]["mongo_names"] == {"find": 1}, variant
        assert calls[("keyed_read", 3, variant)]["redis"] == 0, variant
    # Every design of a row makes the same number of calls per block.
    for s in SCENARIOS:
        for n in (1, 3):
            per_block = {calls[(s.key, n, v)]["calls_per_block"] for v in VARIANTS}
            assert len(per_block) == 1, (s.key, n, per_block)
            assert all(len(calls[(s.key, n, v)]["cpu_blocks_ms"]) == calls[(s.key, n, v)]["blocks"] for v in VARIANTS)
    assert calls[("candle_read", 3, "shipped")]["mongo"] == 1
    assert calls[("candle_read", 3, "original")]["mongo"] == 3 and calls[("candle_read", 3, "original")]["redis"] == 3

    backtest = {row["variant"]: row for row in result["backtest"]}
    assert set(backtest) == set(VARIANTS)
    for variant, row in backtest.items():
        assert row["same_simulation"] is True, variant
        assert row["cpu_s"] > 0 and row["peak_rss_mib"] > 0, variant
    assert backtest["files"]["mongo"] == 0 and backtest["files"]["files_written"] > 0
    assert backtest["shipped"]["mongo"] < backtest["original"]["mongo"]

    text = io.StringIO()
    render(result, Console(file=text, width=200))
    written = report.read_text()
    for v in VARIANTS.values():
        assert f"({v.letter}) {v.short}" in text.getvalue() and f"({v.letter}) {v.short}" in written
    for s in SCENARIOS:
        assert s.title in text.getvalue() and s.title in written
    assert "calls × blocks" in written and "(f) minimal client" in written
    assert "Whole simulated backtest" in written and "backtest-store bench" in written
    assert result["servers"]["embedded_mongo"] is True and "SecantusDB" in written  # said plainly
