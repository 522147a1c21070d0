// Runs the real backtest-kit in backtest mode, with its default file persistence, on a synthetic exchange.
//
//   node tests/interop/backtest.mjs WORKDIR NODE_MODULES
//
// WORKDIR becomes the process's cwd, so the framework's dump lands in WORKDIR/dump (and is read from there
// when it already exists). NODE_MODULES is an unpacked node_modules folder holding backtest-kit and its
// dependencies. The last line on stdout is one JSON object: how often the exchange and the cached functions
// were actually called, and the backtest's results. Everything is deterministic: the exchange is a seeded
// random walk, signal ids are derived from symbol, strategy and time, and the frame lies in the past.

import { resolve } from "node:path";

import { loadPackage, mulberry32, persistEveryBacktestContract, round } from "./framework.mjs";

if (process.argv.length !== 4) {
  console.error("usage: node backtest.mjs WORKDIR NODE_MODULES");
  process.exit(2);
}
const nodeModules = resolve(process.argv[3]);
// Before the framework is loaded: some of its file paths are resolved from the cwd at construction.
process.chdir(process.argv[2]);

const bk = await loadPackage(nodeModules, "backtest-kit");
const {
  Backtest, Cache, Interval, Log, addExchangeSchema, addFrameSchema, addStrategySchema, createSignalState, getCandles,
  removeMemory, setConfig, setSessionData, writeMemory,
} = bk;

const MINUTE = 60_000;
const INTERVAL_MINUTES = { "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240,
  "6h": 360, "8h": 480, "1d": 1440 };
// The walk starts well before the frame, so that look-back windows at the frame's start have history.
const ORIGIN = Date.UTC(2023, 11, 25);
const FRAME_START = new Date(Date.UTC(2024, 0, 1));
const FRAME_END = new Date(Date.UTC(2024, 0, 2));
const EXCHANGE = "synth-walk";
const FRAME = "jan-2024";
// Prices on each market's tick size, volumes in its usual range: BTC trades in fractions of a coin around 42000,
// PEPE in billions of tokens around 0.0000012 (the range where JSON number formatting differs most).
const SYMBOLS = {
  BTCUSDT: { price: 42000, priceDigits: 2, volume: 40, volumeDigits: 5 },
  PEPEUSDT: { price: 0.00000135, priceDigits: 10, volume: 3e9, volumeDigits: 0 },
};

const calls = { getCandles: 0, candles: 0, measure: 0, interval: 0 };

// -- the exchange: a seeded random walk per symbol, generated forward from ORIGIN ----------------------------

const walks = new Map();

function minuteCandle(symbol, index) {
  let walk = walks.get(symbol);
  if (!walk) {
    let seed = 20240101;
    for (const ch of symbol) seed = Math.imul(seed ^ ch.charCodeAt(0), 16777619);
    walk = { rand: mulberry32(seed), last: SYMBOLS[symbol].price, candles: [] };
    walks.set(symbol, walk);
  }
  while (walk.candles.length <= index) {
    const { rand } = walk;
    const { priceDigits, volume: scale, volumeDigits } = SYMBOLS[symbol];
    const open = walk.last;
    const close = round(open * (1 + (rand() - 0.5) * 0.008), priceDigits);
    const high = round(Math.max(open, close) * (1 + rand() * 0.001), priceDigits);
    const low = round(Math.min(open, close) * (1 - rand() * 0.001), priceDigits);
    const volume = round(scale * (0.01 + rand()), volumeDigits);
    walk.candles.push({ timestamp: ORIGIN + walk.candles.length * MINUTE, open, high, low, close, volume });
    walk.last = close;
  }
  return walk.candles[index];
}

function candle(symbol, interval, timestamp) {
  const minutes = INTERVAL_MINUTES[interval];
  const first = (timestamp - ORIGIN) / MINUTE;
  if (!Number.isInteger(first) || first < 0) {
    throw new Error(`synthetic exchange has no ${interval} candle at ${new Date(timestamp).toISOString()}`);
  }
  const parts = Array.from({ length: minutes }, (_, i) => minuteCandle(symbol, first + i));
  return {
    timestamp,
    open: parts[0].open,
    high: Math.max(...parts.map((c) => c.high)),
    low: Math.min(...parts.map((c) => c.low)),
    close: parts[parts.length - 1].close,
    volume: round(parts.reduce((sum, c) => sum + c.volume, 0), SYMBOLS[symbol].volumeDigits),
  };
}

addExchangeSchema({
  exchangeName: EXCHANGE,
  getCandles: async (symbol, interval, since, limit) => {
    calls.getCandles += 1;
    calls.candles += limit;
    const step = INTERVAL_MINUTES[interval] * MINUTE;
    return Array.from({ length: limit }, (_, i) => candle(symbol, interval, since.getTime() + i * step));
  },
  formatPrice: async (symbol, price) => price.toFixed(SYMBOLS[symbol].priceDigits),
  formatQuantity: async (_symbol, quantity) => quantity.toFixed(6),
});

// Ticks every 15 minutes; open and scheduled signals are still followed candle by candle on 1m candles.
addFrameSchema({ frameName: FRAME, interval: "15m", startDate: FRAME_START, endDate: FRAME_END });

// -- what the strategies read and write besides candles ---------------------------------------------------------

// Measure (Cache.file): its value decides the trade direction, so a rerun that reads a damaged cache trades
// differently. The counter shows whether the rerun computed anything or read it all from the dump.
const trend = Cache.file(async (symbol) => {
  calls.measure += 1;
  const candles = await getCandles(symbol, "1m", 10);
  const mean = candles.reduce((sum, c) => sum + c.close, 0) / candles.length;
  return { mean, last: candles[candles.length - 1].close, up: candles[candles.length - 1].close >= mean };
}, { interval: "15m", name: "trend" });

// Interval (Interval.file): fires once per hour per symbol; on a rerun the fired markers come from the dump, so
// it must not fire at all. Its result is only logged, never traded on.
const hourly = Interval.file(async (symbol) => {
  calls.interval += 1;
  return { symbol, firedBy: "hourly" };
}, { interval: "1h", name: "hourly" });

const [getTradeState, setTradeState] = createSignalState({
  bucketName: "trade",
  initialValue: { pings: 0, peak: 0 },
});

function callbacks(strategyName) {
  return {
    onOpen: async (symbol, data, currentPrice, when) => {
      await writeMemory({ bucketName: "notes", memoryId: "entry",
        value: { price: currentPrice, at: when.getTime() }, description: `${strategyName} entry ${symbol}` });
      await writeMemory({ bucketName: "notes", memoryId: "thesis",
        value: { position: data.position, note: data.note }, description: `thesis ${data.position}` });
      Log.info("signal opened", { strategyName, symbol, id: data.id, priceOpen: data.priceOpen });
    },
    onActivePing: async (symbol, data, currentPrice) => {
      const state = await setTradeState(symbol, (s) => ({
        pings: s.pings + 1,
        peak: Math.max(s.peak, Math.abs(currentPrice - data.priceOpen) / data.priceOpen * 100),
      }));
      if (state.pings === 3) {
        // A soft-deleted memory entry: the file stays with `removed: true`.
        await removeMemory({ bucketName: "notes", memoryId: "thesis" });
      }
      await getTradeState(symbol);
    },
    onClose: async (symbol, data, priceClose) => {
      Log.warn("signal closed", { strategyName, symbol, id: data.id, priceClose });
    },
  };
}

// The framework rewrites every stored Storage row on each minute a signal is open or waiting (one fsync per file):
// a handful of trades a day keeps a run within seconds.
const ENTRY_HOURS = { "trend-market": [2, 14], "fade-limit": [6, 18] };

async function beforeSignal(strategyName, symbol, when, currentPrice) {
  const fired = await hourly(symbol);
  if (fired) Log.debug("hourly", fired);
  await setSessionData(symbol, { lastTick: when.getTime(), lastPrice: currentPrice });
  const t = await trend(symbol);
  return ENTRY_HOURS[strategyName].includes(when.getUTCHours()) ? t : null;
}

// A market entry in the direction of the last 10 minutes' trend, closed by take-profit, stop-loss or time.
addStrategySchema({
  strategyName: "trend-market",
  interval: "1h",
  getSignal: async (symbol, when, currentPrice) => {
    const t = await beforeSignal("trend-market", symbol, when, currentPrice);
    if (!t) return null;
    const position = t.up ? "long" : "short";
    const sign = position === "long" ? 1 : -1;
    return {
      id: `trend-market-${symbol}-${when.getTime()}`,
      position,
      note: `trend ${t.up ? "up" : "down"} vs mean ${t.mean.toPrecision(6)}`,
      priceTakeProfit: currentPrice * (1 + sign * 0.015),
      priceStopLoss: currentPrice * (1 - sign * 0.012),
      minuteEstimatedTime: 30,
      cost: 100,
    };
  },
  callbacks: callbacks("trend-market"),
});

// A limit entry against the trend: scheduled first, activated or cancelled later.
addStrategySchema({
  strategyName: "fade-limit",
  interval: "1h",
  getSignal: async (symbol, when, currentPrice) => {
    const t = await beforeSignal("fade-limit", symbol, when, currentPrice);
    if (!t) return null;
    const position = t.up ? "short" : "long";
    const sign = position === "long" ? 1 : -1;
    const priceOpen = currentPrice * (1 - sign * 0.01);
    return {
      id: `fade-limit-${symbol}-${when.getTime()}`,
      position,
      note: "fade the move",
      priceOpen,
      priceTakeProfit: priceOpen * (1 + sign * 0.007),
      priceStopLoss: priceOpen * (1 - sign * 0.007),
      minuteEstimatedTime: 60,
      cost: 50,
    };
  },
  callbacks: callbacks("fade-limit"),
});

// -- every persistence the framework offers in backtest mode, on its default file backend -------------------------
// (Signal, Schedule, Strategy, Risk, Partial and Breakeven are never persisted in backtest mode.)
// Each new notification rewrites the latest CC_MAX_NOTIFICATIONS of them (default 500), one fsync per file; every
// notification still gets its own file, only the rewriting is bounded. A limit order waits 60 minutes instead of
// 120 before it is cancelled: each minute of waiting rewrites all Storage rows too.
setConfig({ CC_MAX_NOTIFICATIONS: 10, CC_SCHEDULE_AWAIT_MINUTES: 60 });
persistEveryBacktestContract(bk);

// -- run, one (symbol, strategy) after another so that the order of writes is deterministic ----------------------

const results = [];
for (const symbol of Object.keys(SYMBOLS)) {
  for (const strategyName of ["trend-market", "fade-limit"]) {
    for await (const r of Backtest.run(symbol, { strategyName, exchangeName: EXCHANGE, frameName: FRAME })) {
      if (r.action === "closed") {
        results.push({ symbol, strategyName, action: r.action, id: r.signal.id, position: r.signal.position,
          closeReason: r.closeReason, closeTimestamp: r.closeTimestamp, pnl: r.pnl });
      } else if (r.action === "cancelled") {
        results.push({ symbol, strategyName, action: r.action, id: r.signal.id, position: r.signal.position,
          closeTimestamp: r.closeTimestamp, cancelReason: r.reason ?? null });
      }
    }
  }
}

process.stdout.write(`${JSON.stringify({ calls, results })}\n`);
