// The framework author's own MongoDB adapter, @backtest-kit/mongo, with the real backtest-kit, on the suite's servers.
//
//   node tests/interop/mongo_adapter.mjs NODE_MODULES COMMAND SPEC_JSON OUT_JSON
//
// NODE_MODULES is an unpacked node_modules folder holding @backtest-kit/mongo, backtest-kit, mongoose and ioredis.
// SPEC_JSON is a file holding {mongo, redisHost, redisPort, keys?}; the result is written to OUT_JSON (the adapter's
// libraries may print to stdout, so the result never goes there).
//
// COMMAND:
//   run   a small backtest with every persistence the framework offers in backtest mode, through the adapter (setup()
//         registers it for all 16 contracts). The six contracts only live trading persists (Signal, Schedule,
//         Strategy, Risk, Partial, Breakeven) are written through the framework's own Persist*Adapter API, with
//         values taken from the backtest's closed signals. Writes {calls, closed}.
//   read  every key in spec.keys ({contract: [key fields]}) read back through the framework's Persist*Adapter API,
//         i.e. through the adapter. Writes {contract: [value]} in the keys' order.
//   raw   every document of every collection in spec.mongo's database, read with the plain `mongodb` driver and its
//         defaults (the driver mongoose uses). Writes {longs: [paths of BSON Long values], docs: {collection: [doc]}}.

import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

import { loadPackage, mulberry32, persistEveryBacktestContract, round } from "./framework.mjs";

if (process.argv.length !== 6) {
  console.error("usage: node mongo_adapter.mjs NODE_MODULES COMMAND SPEC_JSON OUT_JSON");
  process.exit(2);
}
const [nodeModules, command, specPath, outPath] = [resolve(process.argv[2]), process.argv[3], process.argv[4],
  process.argv[5]];
const spec = JSON.parse(readFileSync(specPath, "utf8"));

const load = (name) => loadPackage(nodeModules, name);

function finish(result) {
  writeFileSync(outPath, JSON.stringify(result));
  // ioredis pings every 30 s and mongoose keeps its pool: neither lets the process end by itself.
  process.exit(0);
}

// -- raw: the plain driver, no adapter ---------------------------------------------------------------------------

if (command === "raw") {
  const { MongoClient } = await load("mongodb");
  const client = new MongoClient(spec.mongo);
  const longs = [];
  const walk = (value, path) => {
    if (value && typeof value === "object") {
      if (value._bsontype === "Long") {
        longs.push(path);
        return;
      }
      for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
    }
  };
  const docs = {};
  try {
    const db = client.db();
    for (const { name } of await db.listCollections().toArray()) {
      docs[name] = await db.collection(name).find({}, { projection: { _id: 0 } }).toArray();
      docs[name].forEach((doc, i) => walk(doc, `${name}[${i}]`));
    }
  } finally {
    await client.close();
  }
  finish({ longs, docs });
}

// -- the framework with the author's adapter ---------------------------------------------------------------------

const adapter = await load("@backtest-kit/mongo");
const bk = await load("backtest-kit");
adapter.setup({ CC_MONGO_CONNECTION_STRING: spec.mongo, CC_REDIS_HOST: spec.redisHost, CC_REDIS_PORT: spec.redisPort });
await adapter.waitForInit();

const {
  Backtest, Cache, Interval, Log, addExchangeSchema, addFrameSchema, addStrategySchema, createSignalState, getCandles,
  removeMemory, setConfig, setSessionData, writeMemory,
  PersistBreakevenAdapter, PersistCandleAdapter, PersistIntervalAdapter, PersistLogAdapter, PersistMeasureAdapter,
  PersistMemoryAdapter, PersistNotificationAdapter, PersistPartialAdapter, PersistRecentAdapter, PersistRiskAdapter,
  PersistScheduleAdapter, PersistSessionAdapter, PersistSignalAdapter, PersistStateAdapter, PersistStorageAdapter,
  PersistStrategyAdapter,
} = bk;

const MINUTE = 60_000;
const STEP = { "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480,
  "1d": 1440 };
// Live-only reads take a `when`, which none of the adapters filters on.
const WHEN = new Date(Date.UTC(2024, 0, 1, 12));

if (command === "read") {
  const READ = {
    candle: (k) => PersistCandleAdapter.readCandlesData(k.symbol, k.interval, k.exchangeName, k.limit, k.since,
      k.since + k.limit * STEP[k.interval] * MINUTE),
    signal: (k) => PersistSignalAdapter.readSignalData(k.symbol, k.strategyName, k.exchangeName),
    schedule: (k) => PersistScheduleAdapter.readScheduleData(k.symbol, k.strategyName, k.exchangeName),
    strategy: (k) => PersistStrategyAdapter.readStrategyData(k.symbol, k.strategyName, k.exchangeName),
    risk: (k) => PersistRiskAdapter.readPositionData(k.riskName, k.exchangeName, WHEN),
    partial: (k) => PersistPartialAdapter.readPartialData(k.symbol, k.strategyName, k.signalId, k.exchangeName, WHEN),
    breakeven: (k) => PersistBreakevenAdapter.readBreakevenData(k.symbol, k.strategyName, k.signalId, k.exchangeName,
      WHEN),
    storage: (k) => PersistStorageAdapter.readStorageData(k.backtest),
    notification: (k) => PersistNotificationAdapter.readNotificationData(k.backtest),
    log: () => PersistLogAdapter.readLogData(),
    measure: (k) => PersistMeasureAdapter.readMeasureData(k.bucket, k.entryKey),
    interval: (k) => PersistIntervalAdapter.readIntervalData(k.bucket, k.entryKey),
    memory: (k) => PersistMemoryAdapter.readMemoryData(k.signalId, k.bucketName, k.memoryId),
    recent: (k) => PersistRecentAdapter.readRecentData(k.symbol, k.strategyName, k.exchangeName, k.frameName,
      k.backtest),
    state: (k) => PersistStateAdapter.readStateData(k.signalId, k.bucketName),
    session: (k) => PersistSessionAdapter.readSessionData(k.strategyName, k.exchangeName, k.frameName, k.symbol,
      k.backtest),
  };
  const out = {};
  for (const [contract, keys] of Object.entries(spec.keys)) {
    out[contract] = [];
    for (const key of keys) out[contract].push((await READ[contract](key)) ?? null);
  }
  finish(out);
}

if (command !== "run") {
  console.error(`unknown command ${command}`);
  process.exit(2);
}

// -- run: a small deterministic backtest --------------------------------------------------------------------------

const EXCHANGE = "synth-walk";
const FRAME = "jan-2024-morning";
const SYMBOL = "BTCUSDT";
const STRATEGY = "trend-market";
const ORIGIN = Date.UTC(2023, 11, 31, 12);
const calls = { getCandles: 0 };

const rand = mulberry32(20240101);
const minutes = [];
function minute(index) {
  while (minutes.length <= index) {
    const open = minutes.length ? minutes[minutes.length - 1].close : 42000;
    const close = round(open * (1 + (rand() - 0.5) * 0.008), 2);
    const high = round(Math.max(open, close) * (1 + rand() * 0.001), 2);
    const low = round(Math.min(open, close) * (1 - rand() * 0.001), 2);
    minutes.push({ open, high, low, close, volume: round(40 * (0.01 + rand()), 5) });
  }
  return minutes[index];
}
function candle(interval, timestamp) {
  const first = (timestamp - ORIGIN) / MINUTE;
  if (!Number.isInteger(first) || first < 0) throw new Error(`no ${interval} candle at ${timestamp}`);
  const parts = Array.from({ length: STEP[interval] }, (_, i) => minute(first + i));
  return { timestamp, open: parts[0].open, high: Math.max(...parts.map((c) => c.high)),
    low: Math.min(...parts.map((c) => c.low)), close: parts[parts.length - 1].close,
    volume: round(parts.reduce((sum, c) => sum + c.volume, 0), 5) };
}

addExchangeSchema({
  exchangeName: EXCHANGE,
  getCandles: async (_symbol, interval, since, limit) => {
    calls.getCandles += 1;
    return Array.from({ length: limit }, (_, i) => candle(interval, since.getTime() + i * STEP[interval] * MINUTE));
  },
  formatPrice: async (_symbol, price) => price.toFixed(2),
  formatQuantity: async (_symbol, quantity) => quantity.toFixed(6),
});
addFrameSchema({ frameName: FRAME, interval: "15m", startDate: new Date(Date.UTC(2024, 0, 1)),
  endDate: new Date(Date.UTC(2024, 0, 1, 8)) });

const trend = Cache.file(async (symbol) => {
  const candles = await getCandles(symbol, "1m", 10);
  const mean = candles.reduce((sum, c) => sum + c.close, 0) / candles.length;
  return { mean, up: candles[candles.length - 1].close >= mean };
}, { interval: "15m", name: "trend" });
const hourly = Interval.file(async (symbol) => {
  return { symbol, firedBy: "hourly" };
}, { interval: "1h", name: "hourly" });
const [, setTradeState] = createSignalState({ bucketName: "trade", initialValue: { pings: 0 } });

addStrategySchema({
  strategyName: STRATEGY,
  interval: "1h",
  getSignal: async (symbol, when, currentPrice) => {
    if (await hourly(symbol)) Log.debug("hourly", { symbol });
    await setSessionData(symbol, { lastTick: when.getTime(), lastPrice: currentPrice });
    const t = await trend(symbol);
    if (![1, 4].includes(when.getUTCHours())) return null;
    const sign = t.up ? 1 : -1;
    return { id: `${STRATEGY}-${symbol}-${when.getTime()}`, position: t.up ? "long" : "short", note: "trend",
      priceTakeProfit: currentPrice * (1 + sign * 0.015), priceStopLoss: currentPrice * (1 - sign * 0.012),
      minuteEstimatedTime: 45, cost: 100 };
  },
  callbacks: {
    onOpen: async (symbol, data, currentPrice, when) => {
      await writeMemory({ bucketName: "notes", memoryId: "entry", value: { price: currentPrice, at: when.getTime() },
        description: `entry ${symbol}` });
      await writeMemory({ bucketName: "notes", memoryId: "thesis", value: { position: data.position },
        description: "thesis" });
      Log.info("signal opened", { symbol, id: data.id });
    },
    onActivePing: async (symbol) => {
      const state = await setTradeState(symbol, (s) => ({ pings: s.pings + 1 }));
      if (state.pings === 2) await removeMemory({ bucketName: "notes", memoryId: "thesis" });
    },
    onClose: async (symbol, data, priceClose) => Log.warn("signal closed", { symbol, id: data.id, priceClose }),
  },
});

setConfig({ CC_MAX_NOTIFICATIONS: 10 });
persistEveryBacktestContract(bk);

const closed = [];
for await (const r of Backtest.run(SYMBOL, { strategyName: STRATEGY, exchangeName: EXCHANGE, frameName: FRAME })) {
  if (r.action === "closed") closed.push(r.signal);
}
if (!closed.length) throw new Error("the backtest closed no signal");

// The contracts only live trading persists, written through the framework's own API with a real signal's values.
const signal = closed[0];
const scheduled = { ...closed[closed.length - 1], scheduledAt: signal.pendingAt, priceOpen: signal.priceOpen * 0.99 };
await PersistSignalAdapter.writeSignalData(signal, SYMBOL, STRATEGY, EXCHANGE);
await PersistScheduleAdapter.writeScheduleData(scheduled, SYMBOL, STRATEGY, EXCHANGE);
await PersistStrategyAdapter.writeStrategyData({
  pendingSignalId: signal.id, lastPendingId: signal.id, createdSignal: null, commitQueue: [], closedSignal: null,
  cancelledSignal: null, activatedSignal: null, takeProfitSignal: null, stopLossSignal: null, retryOpenSignal: null,
  retryOpenCount: 0, retryCloseCount: 1, isPaused: false,
}, SYMBOL, STRATEGY, EXCHANGE);
await PersistRiskAdapter.writePositionData([[`${STRATEGY}:${SYMBOL}`, {
  strategyName: STRATEGY, exchangeName: EXCHANGE, frameName: "", symbol: SYMBOL, position: signal.position,
  priceOpen: signal.priceOpen, priceStopLoss: signal.priceStopLoss, priceTakeProfit: signal.priceTakeProfit,
  minuteEstimatedTime: signal.minuteEstimatedTime, openTimestamp: signal.pendingAt,
}]], "conservative", EXCHANGE, WHEN);
await PersistPartialAdapter.writePartialData({ [signal.id]: { profitLevels: [10, 20], lossLevels: [] } }, SYMBOL,
  STRATEGY, signal.id, EXCHANGE, WHEN);
await PersistBreakevenAdapter.writeBreakevenData({ [signal.id]: { reached: true } }, SYMBOL, STRATEGY, signal.id,
  EXCHANGE, WHEN);

finish({ calls, closed: closed.length });
