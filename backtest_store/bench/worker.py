"""One design's measurements, in a process of its own (so that its peak RSS is its own): the calls, or one whole
simulated backtest. `python -m backtest_store.bench.worker '<job as JSON>'` prints the result as JSON.

Round trips are counted on a handle opened with counting on; CPU and wall time are measured on another handle with
counting off (counting is not free: see `backtest_store.counting`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import time
import tracemalloc
from typing import Any

from ..demo import PERSISTED
from ..demo.market import symbol_names
from ..demo.run import DemoRun
from ..migrations import create_indexes
from . import calls
from .variants import VARIANTS, Handle, Target, open_handle


def rss_mib() -> float:
    """The resident set size now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM: since it started this program; `ru_maxrss` would also count
    the parent's, which it keeps across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _measure_calls(job: dict[str, Any]) -> dict[str, Any]:
    """Every design's calls in this one process, interleaved: for each call and size, the designs take turns in
    blocks, so that whatever else the machine does slows them alike; each design's CPU figure is its lowest block,
    its wall time the median block."""
    variants = [VARIANTS[key] for key in job["variants"]]
    targets = {v.key: Target(**job["targets"][v.key]) for v in variants}
    sizes = {k: tuple(v) for k, v in job["sizes"].items()}
    budget, max_rounds, max_call = job["budget_s"], job["max_rounds"], job["max_call_s"]
    data = calls.Data(sizes)
    seeded: dict[str, float] = {}
    for v in variants:
        started = time.perf_counter()
        await calls.seed(v.key, targets[v.key], data)
        seeded[v.key] = round(time.perf_counter() - started, 2)
    runners = {v.key: calls.Calls(data) for v in variants}
    counting = {v.key: await open_handle(v, targets[v.key], count=True) for v in variants}
    timing = {v.key: await open_handle(v, targets[v.key], count=False) for v in variants}
    results: list[dict[str, Any]] = []
    try:
        for scenario in calls.SCENARIOS:
            previous: dict[str, tuple[int, float]] = {}
            for size in sizes.get(scenario.key, ()):
                rows: dict[str, dict[str, Any]] = {}
                for v in variants:
                    rows[v.key] = row = {"call": scenario.key, "size": size, "variant": v.key}
                    # Scaled from a size of 10 or more: below that, a call's fixed cost would be scaled up too.
                    if v.key in previous and previous[v.key][1] * size / previous[v.key][0] > max_call:
                        last_size, last_wall = previous[v.key]
                        row["skipped"] = (f"not run: about {last_wall * size / last_size:.0f} s per call, estimated "
                                          f"from {last_size:,} {scenario.unit} (limit {max_call:g} s)")
                await _interleaved(runners, scenario.key, size, [v for v in variants if "skipped" not in rows[v.key]],
                                   counting, timing, rows, budget, max_rounds)
                for key, row in rows.items():
                    if "wall_ms" in row and size >= 10:
                        previous[key] = (size, row["wall_ms"] / 1000)
                    results.append(row)
    finally:
        for handle in (*counting.values(), *timing.values()):
            await handle.close()
    return {"calls": results, "seed_s": seeded, "peak_rss_mib": round(peak_rss_mib(), 1)}


BLOCKS = 7
SLOW_BUDGETS = 3


async def _interleaved(runners: dict[str, calls.Calls], scenario: str, size: int, variants: list[Any],
                       counting: dict[str, Handle], timing: dict[str, Handle], rows: dict[str, dict[str, Any]],
                       budget: float, max_rounds: int) -> None:
    """Every design of a row makes the same number of calls per block, and the collector stays out of every timed
    block alike (off during a block, a full collection before each): a design making more calls per block would
    otherwise pay collections the others do not. Each block's CPU and wall time are kept, so that the ratios of
    designs measured in the same block can be published with their spread."""
    firsts: dict[str, float] = {}
    calls_of: dict[str, Any] = {}
    for v in variants:
        try:
            calls_of[v.key], firsts[v.key] = await _prepare(runners[v.key], scenario, size, v, counting, timing,
                                                            rows[v.key])
        except Exception as exc:  # one design failing at one size is reported, and the others go on
            rows[v.key]["failed"] = _one_line(exc)
    running = [v for v in variants if v.key in calls_of]
    if not running:
        return
    # Calls per block from the median design's first call, so that one slow design (the original's, at large
    # sizes) does not leave the others with a single call per block. A design that would take more than
    # SLOW_BUDGETS budgets at that pace runs fewer blocks (never fewer calls per block); ratios pair blocks by index.
    median_first = sorted(firsts[v.key] for v in running)[len(running) // 2]
    rounds = max(1, min(max(1, max_rounds // BLOCKS), int(budget / (BLOCKS * max(median_first, 1e-6)))))
    blocks_of = {v.key: max(1, min(BLOCKS, int(SLOW_BUDGETS * budget / (rounds * max(firsts[v.key], 1e-6)))))
                 for v in running}
    samples: dict[str, dict[int, tuple[float, float]]] = {v.key: {} for v in running}
    counter = 3
    for block in range(BLOCKS):
        order = running[block % len(running):] + running[:block % len(running)]
        for v in order:
            if "failed" in rows[v.key] or block >= blocks_of[v.key]:
                continue
            call = calls_of[v.key]
            result = None
            gc.collect()
            gc.disable()
            try:
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for _ in range(rounds):
                    result = await call(counter)
                    counter += 1
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            except Exception as exc:
                rows[v.key]["failed"] = _one_line(exc)
                continue
            finally:
                gc.enable()
            try:
                runners[v.key].check(scenario, size, v.key, result)
            except Exception as exc:
                rows[v.key]["failed"] = _one_line(exc)
                continue
            samples[v.key][block] = (cpu / rounds, wall / rounds)
    for key, taken in samples.items():
        if "failed" in rows[key] or not taken:
            continue
        # CPU: the lowest block (whatever else runs on the machine only ever adds to a block's CPU time); wall
        # time: the median block. Every block's figures are kept, by block, for the ratios' spread (`report.py`).
        walls = sorted(w for _, w in taken.values())
        rows[key].update(cpu_ms=min(c for c, _ in taken.values()) * 1000, wall_ms=walls[len(walls) // 2] * 1000,
                         rounds=len(taken) * rounds, blocks=len(taken), calls_per_block=rounds,
                         cpu_blocks_ms=[taken[b][0] * 1000 for b in sorted(taken)],
                         wall_blocks_ms=[taken[b][1] * 1000 for b in sorted(taken)])


def _since(counts: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: n - before.get(name, 0) for name, n in counts.items() if n - before.get(name, 0)}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


async def _prepare(runner: calls.Calls, scenario: str, size: int, v: Any, counting: dict[str, Handle],
                   timing: dict[str, Handle], row: dict[str, Any]) -> tuple[Any, float]:
    # Round trips and the memory a call allocates: a warm-up call (caches filled, connections open), then
    # one counted call, traced.
    count_call = runner.make(scenario, size, counting[v.key])
    runner.check(scenario, size, v.key, await count_call(0))
    handle = counting[v.key]
    mongo0, redis0 = dict(handle.mongo_commands.counts), dict(handle.redis_commands.counts)
    tracemalloc.start()
    try:
        runner.check(scenario, size, v.key, await count_call(1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    mongo, redis = _since(handle.mongo_commands.counts, mongo0), _since(handle.redis_commands.counts, redis0)
    row.update(mongo=sum(mongo.values()), redis=sum(redis.values()), mongo_names=mongo, redis_names=redis,
               peak_alloc_kib=round(peak / 1024, 1))
    # Time: a warm-up call on the uncounted handle, then as many calls as fit the budget, in blocks.
    call = runner.make(scenario, size, timing[v.key])
    started = time.perf_counter()
    runner.check(scenario, size, v.key, await call(2))
    return call, time.perf_counter() - started


class _Backend:
    def __init__(self, handle: Handle) -> None:
        self.adapters = handle.adapters


async def _backtest(job: dict[str, Any]) -> dict[str, Any]:
    """The demo's call pattern from an empty database (or folder), once: timed, or counted."""
    variant = VARIANTS[job["variant"]]
    target = Target(**job["target"])
    baseline = rss_mib()
    if variant.mongo:
        from pymongo import AsyncMongoClient

        client: Any = AsyncMongoClient(target.mongo_url)
        try:
            await create_indexes(client[target.database])
        finally:
            await client.close()
    handle = await open_handle(variant, target, count=job["count"])
    run = DemoRun(_Backend(handle), symbol_names(job["symbols"]), job["minutes"], job["seed"], None, job["mode"],
                  timed=False)
    try:
        gc.collect()
        mongo0, redis0 = dict(handle.mongo_commands.counts), dict(handle.redis_commands.counts)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await run.simulate()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        mongo, redis = _since(handle.mongo_commands.counts, mongo0), _since(handle.redis_commands.counts, redis0)
    finally:
        await handle.close()
    return {"variant": variant.key, "counted": job["count"], "cpu_s": cpu, "wall_s": wall,
            "mongo": sum(mongo.values()), "redis": sum(redis.values()), "mongo_names": mongo, "redis_names": redis, "simulation": run.simulation(), "persisted": sorted(PERSISTED[job["mode"]]),
            "baseline_rss_mib": round(baseline, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
            "files_written": handle.file_env.files_written if handle.file_env else None}


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    if job["task"] == "calls":
        return await _measure_calls(job)
    if job["task"] == "backtest":
        return await _backtest(job)
    raise ValueError(f"unknown task {job['task']!r}")


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    result = asyncio.run(run_job(job))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
