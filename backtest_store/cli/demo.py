"""The `demo` command: a deterministic simulated backtest through every adapter, then a summary.

Embedded servers (data under `--data-dir`) unless `CC_MONGO_CONNECTION_STRING` is set, in which case the
configured MongoDB (and `CC_REDIS_*` Redis) are used as they are: indexes are not created there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..config import Settings, redact
from ..demo import (
    DEFAULT_MINUTES,
    DEFAULT_MODE,
    DEFAULT_SEED,
    DEFAULT_SYMBOLS,
    LIVE_ONLY,
    PERSISTED,
    run_demo,
)
from ..store import Store
from ..wording import plural
from . import output
from .connect import add_data_dir_option, open_store, positive_int, warn_missing_indexes


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "demo", help="run a simulated backtest through every adapter and print what it stored",
        description="Run a deterministic simulated backtest (seeded synthetic candles, fixed dates) through the "
                    "persistence adapters the way backtest-kit calls them, then summarize documents, latencies, "
                    "cache hits and commands. Uses embedded servers unless CC_MONGO_CONNECTION_STRING is set. "
                    "Running it again on the same data stores nothing new.")
    parser.add_argument("--symbols", type=positive_int, default=DEFAULT_SYMBOLS, metavar="N",
                        help=f"number of symbols (default {DEFAULT_SYMBOLS})")
    parser.add_argument("--minutes", type=positive_int, default=DEFAULT_MINUTES, metavar="N",
                        help=f"one-minute ticks per symbol (default {DEFAULT_MINUTES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                        help=f"seed of the synthetic market (default {DEFAULT_SEED})")
    parser.add_argument("--mode", choices=tuple(PERSISTED), default=DEFAULT_MODE,
                        help="write what backtest-kit persists in a backtest (default) or in a live session, which "
                             f"adds {', '.join(LIVE_ONLY)}")
    add_data_dir_option(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout (nothing else)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    # In --json mode stdout carries the JSON only: the banner, warnings and progress go to stderr.
    info = output.console(stderr=True) if args.json else output.console()
    warn = output.console(stderr=True)
    configured = Settings.configured_in_env()
    if not configured and any(os.environ.get(k) for k in ("CC_REDIS_URL", "CC_REDIS_HOST", "CC_REDIS_PORT",
                                                           "CC_REDIS_USER", "CC_REDIS_PASSWORD")):
        warn.print("[yellow]note:[/] CC_REDIS_* is set but CC_MONGO_CONNECTION_STRING is not: using the "
                   "embedded servers for both.", highlight=False)
    data_dir = Path(args.data_dir).resolve()
    # Counting on: the summary reports the commands each server received.
    async with open_store(data_dir, count_commands=True) as store:
        if configured:
            _banner(info, "configured servers", store)
            await warn_missing_indexes(store, warn)
        else:
            _banner(info, f"embedded servers, data in {data_dir}", store)
        summary = await _simulate(store, args, info)
    where = {"mode": "configured"} if configured else {"mode": "embedded", "data_dir": str(data_dir)}
    summary["servers"] = {**where, **_urls(store)}
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        render(summary, output.console())
    return 0


def _urls(store: Store) -> dict[str, str]:
    return {"mongo": redact(store.settings.mongo_url), "redis": redact(store.settings.redis_url)}


def _banner(console: Console, how: str, store: Store) -> None:
    urls = _urls(store)
    console.print(f"[bold]backtest-store demo[/] on {how}\n  MongoDB {urls['mongo']}\n  Redis   {urls['redis']}",
                  highlight=False)


async def _simulate(store: Store, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    # A live bar only on a terminal: piped or captured output (CI, tests) gets no control sequences.
    if args.no_progress or not console.is_terminal:
        return await run_demo(store, symbols=args.symbols, minutes=args.minutes, seed=args.seed, mode=args.mode)
    columns = (TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("minutes"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("demo", total=args.minutes)
        return await run_demo(store, symbols=args.symbols, minutes=args.minutes, seed=args.seed, mode=args.mode,
                              progress=lambda done, total: bar.update(task, completed=done))


def render(summary: dict[str, Any], console: Console) -> None:
    runinfo, sim = summary["run"], summary["simulation"]
    console.print(
        f"\n{plural(runinfo['minutes'], 'minute')} from {runinfo['start']}, seed {runinfo['seed']}: "
        f"{runinfo['elapsed_s']:.1f} s\n"
        f"mode: {runinfo['mode']}: writes what backtest-kit persists in this mode"
        + (f" (it keeps {', '.join(LIVE_ONLY)} in memory)" if runinfo["mode"] == "backtest" else "") + "\n"
        f"symbols: {', '.join(runinfo['symbols'])}\n"
        f"signals: {sim['signals_scheduled']} scheduled, {sim['signals_opened']} opened, "
        f"{sim['signals_closed']} closed, {sim['signals_cancelled']} cancelled\n"
        f"exchange: {sim['exchange_fetches']} fetches, {sim['candles_fetched']:,} candles", highlight=False)

    docs = Table(title="Documents per collection", title_justify="left")
    docs.add_column("collection")
    docs.add_column("documents", justify="right")
    for name, count in summary["documents"].items():
        docs.add_row(name, f"{count:,}")
    docs.add_row("[bold]total[/]", f"[bold]{sum(summary['documents'].values()):,}[/]")
    console.print(docs)

    calls = Table(title="Adapter calls (timed around each call)", title_justify="left",
                  caption="wait_for_init is left out: it does no I/O after the first call", caption_justify="left")
    for col in ("method", "calls", "p50 ms", "p99 ms", "total ms"):
        calls.add_column(col, justify="left" if col == "method" else "right")
    for name, s in summary["calls"].items():
        if not name.endswith(".wait_for_init"):
            calls.add_row(name, f"{s['calls']:,}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['total_ms']:,.0f}")
    console.print(calls)

    cache, candles = summary["cache"], summary["candles"]
    hits = Table(title="Caches", title_justify="left")
    for col in ("cache", "hits", "misses", "hit ratio"):
        hits.add_column(col, justify="left" if col == "cache" else "right")
    hits.add_row("Redis key → _id", f"{cache['hits']:,}", f"{cache['misses'] + cache['stale']:,}",
                 f"{cache['hit_ratio']:.1%}")
    hits.add_row("candles (no exchange fetch)", f"{candles['hits']:,}", f"{candles['misses']:,}",
                 f"{candles['hit_ratio']:.1%}")
    console.print(hits)

    commands = Table(title="Commands issued", title_justify="left",
                     caption="as each server received them (Redis: the cache's commands and redis-py's own on a new "
                             "connection)", caption_justify="left")
    commands.add_column("server")
    commands.add_column("command")
    commands.add_column("count", justify="right")
    for name, count in summary["mongo_commands"].items():
        commands.add_row("MongoDB", name, f"{count:,}")
    commands.add_row("MongoDB", "[bold]total[/]", f"[bold]{summary['mongo_commands_total']:,}[/]")
    for name, count in summary.get("redis_command_names", {}).items():
        commands.add_row("Redis", name, f"{count:,}")
    commands.add_row("Redis", "[bold]total[/]", f"[bold]{summary['redis_commands']:,}[/]")
    console.print(commands)
    if not summary.get("commands_counted", True):
        console.print("Commands were not counted: open the store with count_commands=True.", style="dim")
    if summary.get("servers", {}).get("mode") == "embedded":
        console.print("Latencies above are the embedded SecantusDB's (a Python server, slow on large collections), "
                      "not MongoDB's.", style="dim", highlight=False)
