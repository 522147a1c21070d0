// backtest-kit's own statistics of the closed signals persisted in WORKDIR/dump/data/storage/{backtest,live}.
//
//   node tests/interop/stats.mjs WORKDIR NODE_MODULES
//
// Nothing is traded: the framework reads the rows through its default file persistence, as its reports do after a
// restart, and computes `Backtest.getData` / `Live.getData` for every symbol × strategy × exchange × frame of the
// closed rows, and `Heat.getData` for every exchange × frame × mode. The schemas are registered only because these
// calls check that the names exist. The last line on stdout is one JSON object: {backtest, live, heat}, each a list
// of {context, stats}; the signal and event lists are left out.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";

import { loadPackage } from "./framework.mjs";

if (process.argv.length !== 4) {
  console.error("usage: node stats.mjs WORKDIR NODE_MODULES");
  process.exit(2);
}
const nodeModules = resolve(process.argv[3]);
process.chdir(process.argv[2]);

const bk = await loadPackage(nodeModules, "backtest-kit");
const {
  Backtest, Heat, Live, Markdown, StorageBacktest, StorageLive, addExchangeSchema, addFrameSchema, addStrategySchema,
  setConfig,
} = bk;

// Storage keeps the CC_MAX_SIGNALS (default 50) latest rows of each mode; the reports then read at most 250 rows
// per context (CC_MAX_*_MARKDOWN_ROWS). Every row given here must be read.
setConfig({ CC_MAX_SIGNALS: 1_000_000 });

const closed = [];
for (const mode of ["backtest", "live"]) {
  const dir = join("dump", "data", "storage", mode);
  if (!existsSync(dir)) continue;
  for (const file of readdirSync(dir).sort()) {
    const row = JSON.parse(readFileSync(join(dir, file), "utf8"));
    if (row && row.status === "closed") closed.push({ mode, row });
  }
}

const distinct = (key) => [...new Set(closed.map(({ row }) => row[key]))];
for (const exchangeName of distinct("exchangeName")) {
  addExchangeSchema({ exchangeName, getCandles: async () => [], formatPrice: async (_s, p) => String(p),
    formatQuantity: async (_s, q) => String(q) });
}
for (const strategyName of distinct("strategyName")) {
  addStrategySchema({ strategyName, interval: "1m", getSignal: async () => null });
}
for (const frameName of distinct("frameName").filter(Boolean)) {
  addFrameSchema({ frameName, interval: "1m", startDate: new Date(0), endDate: new Date(60_000) });
}

StorageBacktest.usePersist();
StorageLive.usePersist();
Markdown.enable({ backtest: true, live: true, heat: true });

const out = { backtest: [], live: [], heat: [] };
const done = new Set();
for (const { mode, row } of closed) {
  const context = { strategyName: row.strategyName, exchangeName: row.exchangeName, frameName: row.frameName };
  const key = JSON.stringify(["report", mode, row.symbol, row.strategyName, row.exchangeName, row.frameName]);
  if (!done.has(key)) {
    done.add(key);
    if (mode === "backtest") {
      const { signalList, ...stats } = await Backtest.getData(row.symbol, context);
      out.backtest.push({ symbol: row.symbol, ...context, stats });
    } else {
      const { eventList, ...stats } = await Live.getData(row.symbol, context);
      out.live.push({ symbol: row.symbol, ...context, stats });
    }
  }
  const heat = JSON.stringify(["heat", mode, row.exchangeName, row.frameName]);
  if (!done.has(heat)) {
    done.add(heat);
    const stats = await Heat.getData(context, mode === "backtest");
    out.heat.push({ mode, exchangeName: row.exchangeName, frameName: row.frameName, stats });
  }
}

process.stdout.write(`${JSON.stringify(out)}\n`);
