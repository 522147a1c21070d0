// What the interop scripts share: loading a package from an unpacked node_modules folder, and turning on every
// persistence backtest-kit offers in backtest mode.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// The package's ESM entry: the scripts run from a temporary folder, so no bare import would find it.
export async function loadPackage(nodeModules, name) {
  const dir = join(nodeModules, ...name.split("/"));
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const exp = pkg.exports?.["."] ?? pkg.exports;
  const entry = (typeof exp === "string" ? exp : exp?.import?.default ?? exp?.import ?? exp?.default) ?? pkg.module
    ?? pkg.main;
  return import(pathToFileURL(join(dir, entry)).href);
}

// Signal, Schedule, Strategy, Risk, Partial and Breakeven are never persisted in backtest mode; the other ten are,
// once their persistence is turned on.
export function persistEveryBacktestContract(bk) {
  for (const adapter of ["StorageBacktest", "NotificationBacktest", "RecentBacktest", "MemoryBacktest",
    "StateBacktest", "SessionBacktest", "Log"]) {
    bk[adapter].usePersist();
  }
  for (const feature of ["Storage", "Notification", "Recent", "Memory", "State"]) bk[feature].enable();
}

// A seeded generator (mulberry32): the synthetic exchanges' walks are the same on every run.
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const round = (value, digits) => Math.round(value * 10 ** digits) / 10 ** digits;
