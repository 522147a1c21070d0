"""`backtest-store bench`: six storage designs side by side, on the same servers and the same data.

(a) backtest-store as shipped; (b) the same with the Redis cache off; (c) the TypeScript original's access pattern,
reproduced here only; (d) the raw floor (PyMongo and redis-py doing backtest-store's round trips, nothing else);
(e) a file store like backtest-kit's default (a JSON file per key, temp file + fsync + rename); (f) the minimal
client a user would write instead (plain PyMongo async, one round trip by unique key, no Redis).

For each call (`calls.SCENARIOS`) at each size, and for a whole simulated backtest (the demo's call pattern): the
MongoDB and Redis round trips, client CPU (`time.process_time`) and wall time per call, and the ratios to (d),
(f) and (c), with the spread of the ratios of blocks run side by side; peak RSS per design comes from its backtest, run in a process of its own. `run_bench` returns everything
as one dict (`report.py` renders it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..demo import DEFAULT_MINUTES, DEFAULT_SEED, DEFAULT_SYMBOLS
from .calls import SCENARIOS
from .servers import BenchServers, bench_servers, drop, machine, run_id
from .variants import VARIANTS, Target

__all__ = ["BenchOptions", "run_bench", "SCENARIOS", "VARIANTS"]


@dataclass
class BenchOptions:
    variants: tuple[str, ...] = tuple(VARIANTS)
    calls: tuple[str, ...] = tuple(s.key for s in SCENARIOS)
    sizes: tuple[int, ...] | None = None  # None: each call's own sizes (1, its usual size, 10,000)
    budget_s: float = 2.0  # time spent measuring one design's call at one size (at least one call)
    max_rounds: int = 500
    max_call_s: float = 30.0  # a larger size is not run when the last one took this long (scaled)
    backtest: bool = True
    symbols: int = DEFAULT_SYMBOLS
    minutes: int = DEFAULT_MINUTES
    seed: int = DEFAULT_SEED
    mode: str = "backtest"
    backtest_timeout_s: float = 3600.0  # a design's backtest stopped after this long is reported as such
    progress: Any = field(default=None, repr=False)  # callable(str) for progress lines

    def sizes_for(self, scenario: Any) -> tuple[int, ...]:
        return self.sizes if self.sizes else scenario.sizes


def _say(options: BenchOptions, text: str) -> None:
    if options.progress is not None:
        options.progress(text)


async def run_bench(options: BenchOptions, env: dict[str, str] | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    tag = run_id()
    with tempfile.TemporaryDirectory(prefix="backtest-store-bench-") as tmp:
        work = Path(tmp)
        async with bench_servers(work, env) as servers:
            _say(options, f"servers: {servers.mongo}; {servers.redis}")
            databases: list[str] = []
            prefixes: list[str] = []

            def target(variant: str, purpose: str) -> Target:
                name = f"bench_{tag}_{purpose}_{variant.replace('-', '_')}"
                databases.append(name)
                prefixes.append(f"bs{tag}{purpose}{variant.replace('-', '')}")
                return Target(servers.mongo_url, servers.redis_url, name, prefixes[-1], str(work / "files" / name))

            try:
                result: dict[str, Any] = {"machine": machine(), "servers": servers.describe(),
                                          "variants": {k: {"letter": v.letter, "label": v.label, "short": v.short}
                                                       for k, v in VARIANTS.items() if k in options.variants},
                                          "options": _options(options)}
                if options.calls:
                    result["calls"] = await _calls(options, servers, target)
                if options.backtest:
                    result["backtest"] = await _backtests(options, target)
            finally:
                await drop(servers, databases, prefixes)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def _options(options: BenchOptions) -> dict[str, Any]:
    out = asdict(options)
    out.pop("progress", None)
    out["sizes"] = {s.key: list(options.sizes_for(s)) for s in SCENARIOS if s.key in options.calls}
    return out


async def _worker(job: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Runs `worker.py` in a process of its own and returns what it printed."""
    # The worker imports this very package, wherever it was imported from (a checkout, an install).
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "backtest_store.bench.worker", json.dumps(job), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return {"timed_out": timeout}
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker failed ({job['task']}, {job.get('variant', '')}):\n"
                           f"{err.decode(errors='replace')[-4000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _calls(options: BenchOptions, servers: BenchServers, target: Any) -> list[dict[str, Any]]:
    sizes = {s.key: list(options.sizes_for(s)) for s in SCENARIOS if s.key in options.calls}
    _say(options, f"calls: {', '.join(sizes)} for {', '.join(options.variants)}")
    job = {"task": "calls", "variants": list(options.variants),
           "targets": {v: asdict(target(v, "calls")) for v in options.variants}, "sizes": sizes,
           "budget_s": options.budget_s, "max_rounds": options.max_rounds, "max_call_s": options.max_call_s}
    result = await _worker(job)
    rows: list[dict[str, Any]] = result["calls"]
    return rows


async def _backtests(options: BenchOptions, target: Any) -> list[dict[str, Any]]:
    out = []
    for variant in options.variants:
        job = {"task": "backtest", "variant": variant, "symbols": options.symbols, "minutes": options.minutes,
               "seed": options.seed, "mode": options.mode}
        _say(options, f"backtest: {VARIANTS[variant].label}, {options.symbols} symbols x {options.minutes} minutes")
        timed = await _worker({**job, "count": False, "target": asdict(target(variant, "timed"))},
                              options.backtest_timeout_s)
        row: dict[str, Any] = {"variant": variant}
        if "timed_out" in timed:
            row["skipped"] = f"stopped after {options.backtest_timeout_s:g} s"
            out.append(row)
            continue
        counted = await _worker({**job, "count": True, "target": asdict(target(variant, "counted"))},
                                options.backtest_timeout_s)
        row.update(cpu_s=timed["cpu_s"], wall_s=timed["wall_s"], peak_rss_mib=timed["peak_rss_mib"],
                   baseline_rss_mib=timed["baseline_rss_mib"], simulation=timed["simulation"],
                   files_written=timed["files_written"])
        if "timed_out" not in counted:
            row.update(mongo=counted["mongo"], redis=counted["redis"], mongo_names=counted["mongo_names"],
                       redis_names=counted["redis_names"])
            if counted["simulation"] != timed["simulation"]:
                raise RuntimeError(f"{variant}: the counted run simulated something else than the timed run")
        out.append(row)
    reference = next((r["simulation"] for r in out if "simulation" in r), None)
    for row in out:
        # Every design must have run the same backtest: the same trades from the same data.
        row["same_simulation"] = row.get("simulation") == reference if "simulation" in row else None
    return out
