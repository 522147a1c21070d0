"""Latency and round trips of the hot adapter calls: now part of `backtest-store bench`.

    python benchmarks/adapters.py [--rounds N]

runs `backtest-store bench` for backtest-store (a) and the raw floor (d) on the per-call measurements only, at
each call's usual size; pass any other `bench` option after `--`. `backtest-store bench --help` has them all,
including the TypeScript original's access pattern, a file store and the whole simulated backtest.
"""

from __future__ import annotations

import argparse
import sys

from backtest_store.cli import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="ignored: bench measures for --budget seconds")
    args, rest = parser.parse_known_args()
    rest = [a for a in rest if a != "--"]
    sys.exit(main(["bench", "--variants", "a,d", "--no-backtest", "--no-markdown", *rest]))
