"""The demo's fixed world: dates, names, the framework's defaults it follows, and its strategy's parameters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from .. import validation
from ..contracts import CONTRACTS

START = datetime(2024, 3, 1, tzinfo=timezone.utc)  # fixed, long closed: the runs are reproducible
START_MS = validation.when_ms(START)
MINUTE = 60_000
ORIGIN_MS = START_MS - 60 * MINUTE  # the demo exchange's history starts an hour before the frame
INTERVAL = "1m"

STRATEGY = "demo-momentum"
FRAME = "demo-frame"  # live runs have no frame: the framework passes frameName ""
RISK = "demo-risk"

# What backtest-kit persists in each mode, from the registry's `live_only` (backtest_store/contracts.py). In a
# backtest it keeps the open position, the deferred-action snapshot, risk and partial/breakeven levels and (20.x)
# its dictionaries in memory; only a live session writes them, so that a restart can restore them. The rest is
# written in both modes (Storage, Notification, Log, Recent, Memory, State and Session once their persistence is
# enabled, as the demo has it).
BOTH = tuple(c.name for c in CONTRACTS if not c.live_only)
LIVE_ONLY = tuple(c.name for c in CONTRACTS if c.live_only)
PERSISTED = {"backtest": BOTH, "live": BOTH + LIVE_ONLY}
DEFAULT_MODE = "backtest"

DEFAULT_SYMBOLS = 3
DEFAULT_MINUTES = 1440
DEFAULT_SEED = 42

# The framework's defaults (CC_AVG_PRICE_CANDLES_COUNT, CC_MAX_CANDLES_PER_REQUEST, CC_MAX_SIGNALS, ...).
VWAP_CANDLES = 5
FETCH_CHUNK = 1000
MAX_SIGNALS = 50
MAX_NOTIFICATIONS = 500
MAX_LOG_LINES = 1000
SCHEDULE_AWAIT_MINUTES = 30

# The demo strategy.
MOMENTUM_LOOKBACK = 10
MOMENTUM_THRESHOLD = 0.003
ENTRY_OFFSET = 0.0005
TAKE_PROFIT = 0.005
STOP_LOSS = 0.0035
BREAKEVEN_AT = 40  # percent of the way to the take profit
COOLDOWN_MINUTES = 120
MAX_RISK_POSITIONS = 2  # across symbols, one shared risk profile
ATR_MINUTES = 15
COST = 100.0
LIFETIMES = (60, 90, 120, 180)  # minuteEstimatedTime choices
MAX_LIFETIME = max(LIFETIMES)

MEASURE_BUCKET = "demo-atr_15m_0"  # Cache.file bucket: <name>_<interval>_<instanceIndex>
INTERVAL_BUCKET = "demo-hourly_1h_1"  # Interval.file bucket
MEMORY_BUCKET = "demo-journal"
STATE_BUCKET = "demo-trade"
DICTIONARY_NAME = "demo-marks"  # backtest-kit 20 Dictionary: named values per signal

SYMBOL_NAMES = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT",
                "LINKUSDT", "DOTUSDT")
START_PRICES = {"BTCUSDT": 61_500.0, "ETHUSDT": 3_400.0, "SOLUSDT": 128.0, "BNBUSDT": 410.0, "XRPUSDT": 0.62,
                "ADAUSDT": 0.71, "DOGEUSDT": 0.12, "AVAXUSDT": 39.0, "LINKUSDT": 19.5, "DOTUSDT": 9.4}

Progress = Callable[[int, int], None]
