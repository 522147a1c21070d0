"""A deterministic simulated backtest that drives every adapter the way backtest-kit calls them.

`await run_demo(store, symbols=3, minutes=2000, seed=42)` replays `minutes` one-minute ticks for each symbol,
starting at a fixed historical instant (`START`), and returns a summary dict (see `run_demo`).

What is simulated:
- a synthetic exchange: a seeded random walk per symbol, so two runs with the same seed fetch the same candles;
- per tick and symbol, the VWAP read of 5 one-minute candles; on a miss the exchange client fetches a chunk of
  up to 1000 candles, writes the whole array and reads again;
- `Cache.file` (Measure) and `Interval.file` (Interval): read on every call, write on a miss;
- a strategy whose signals go through schedule → activation → pending → close (or cancel on timeout), with
  Strategy written ahead of every Signal/Schedule write, Risk rewritten on each open/close, Partial and Breakeven
  levels, Memory and State per signal, Session per symbol, Recent on every active ping;
- Storage (window of ≤50 rows), Notification (≤500) and Log (≤1000, append-only ids) written whole on every
  signal event (partial-level notifications are left out: each notification rewrites the whole window).

Every identifier and every timestamp inside a payload comes from the seed and the logical clock, never from the
wall clock, so a second run over the same database rewrites the same keys with the same payloads. Each run
replays the backtest from scratch: the init reads (storage, notifications, log, recent, session, risk, memory)
are issued and timed as the framework does, but their results do not seed the simulation.

Latency is measured here, around each adapter call, not inside the library.
"""

from .constants import (
    DEFAULT_MINUTES,
    DEFAULT_MODE,
    DEFAULT_SEED,
    DEFAULT_SYMBOLS,
    LIVE_ONLY,
    PERSISTED,
)
from .run import run_demo

__all__ = ["DEFAULT_MINUTES", "DEFAULT_MODE", "DEFAULT_SEED", "DEFAULT_SYMBOLS", "LIVE_ONLY", "PERSISTED", "run_demo"]
