"""What holds today under load and faults, each with its counted result in the "measurements" section.

1. OS processes × asyncio tasks on shared keys: no error, no lost write, no duplicate document.
2. Redis stopped (SIGSTOP), resumed, then killed (SIGKILL) under load: no failed operation, no wrong read.
3. MongoDB (SecantusDB, `--sync-on-commit`) killed -9 and restarted under the same `Store`: it recovers and no
   acknowledged write is lost.
4. The client killed -9 during a candle write and during `import-dump`: the rerun completes with no duplicate
   and no partial document.

Every phase change waits on a counted condition (operations done, failures seen), never on a sleep; time
limits are generous bounds that only turn a hang into a failure. Only processes these tests start are
signalled, each through its own process object.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerUrls, unique
from tests.reliability_child import MEASURE_KEYS, ROW_IDS, SHARED_BUCKET, SYMBOLS, TASKS, UNIQUE_BUCKET, whole


pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[1]
Report = Callable[[str], None]
# Generous bounds: they only turn a hang into a failure, never decide a result.
HANG = 120.0


def child_env() -> dict[str, str]:
    """The children import this checkout's package, whatever the venv's editable install points at."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


class Child:
    """A Python child process of this test: stdout piped (one line per message), stderr to a file, so that a
    chatty child can never block on a full pipe. Only ever signalled through its own process object."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc, self.log = proc, log

    @classmethod
    async def start(cls, log: Path, *args: str, env: dict[str, str] | None = None, stdin: bool = False) -> "Child":
        with open(log, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args, cwd=ROOT, env=env or child_env(),
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=err, limit=2**24)
        return cls(proc, log)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    async def line(self, wanted: str) -> str:
        """The next stdout line, which must start with `wanted` (else the child's stderr says why)."""
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), HANG)).decode()
        if not line.startswith(wanted):
            await asyncio.wait_for(self.proc.wait(), HANG)
            raise AssertionError(f"child said {line!r}, expected {wanted!r}; stderr:\n{self.stderr()[-3000:]}")
        return line

    async def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        await self.proc.stdin.drain()

    async def finish(self) -> str:
        """Run to the end; the rest of stdout. A non-zero exit fails with the child's stderr."""
        out, _ = await asyncio.wait_for(self.proc.communicate(), HANG)
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}:\n{self.stderr()[-3000:]}"
        return out.decode()

    async def kill(self) -> None:
        """SIGKILL, if it is still running."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


# -- 1. processes × tasks on shared keys ---------------------------------------------------------------------

OPS_PER_RUN = int(os.environ.get("BACKTEST_STORE_RELIABILITY_OPS", "3000"))


@pytest.mark.parametrize("processes", [2, 4])
async def test_processes_times_tasks_on_shared_keys(open_store: Any, tmp_path: Path, report: Report,
                                                    processes: int) -> None:
    """`processes` OS processes × 50 asyncio tasks, each process with its own `Store` on the same servers, all
    reading and writing 3 Signal rows, 3 Measure entries and a 5-row Storage window, and each writing Measure
    entries of its own: 3,000 operations per run, 6,000 over both runs, to stay within this file's time budget.
    `BACKTEST_STORE_RELIABILITY_OPS=4000` runs 8,000 in all (about 6 s more: SecantusDB serves some 300-350 of
    these operations a second on a 2-core machine)."""
    total_ops = OPS_PER_RUN
    ops_per_task = total_ops // (processes * TASKS)
    store = await open_store()  # creates the indexes; the children share its database and cache prefix
    cfg = {"mongo_url": store.settings.mongo_url, "redis_url": store.settings.redis_url,
           "prefix": store.settings.cache_prefix, "ops_per_task": ops_per_task, "seed": processes}
    children = [await Child.start(tmp_path / f"workload-{p}.log", "-m", "tests.reliability_child", "workload",
                                  json.dumps({**cfg, "process": p}), stdin=True) for p in range(processes)]
    try:
        for child in children:
            await child.line("ready")
        started = time.perf_counter()
        for child in children:  # every process is connected before any starts its load
            await child.send("go\n")
        results = [json.loads(await child.line("{")) for child in children]
        seconds = time.perf_counter() - started
        for child in children:
            await child.finish()
    finally:
        for child in children:
            await child.kill()
    # SecantusDB answers some racing first upserts with null; the repository retries them and logs each retry.
    null_retries = sum(child.stderr().count("returned no document for an upsert") for child in children)

    ops = sum(r["ops"] for r in results)
    errors = sum(r["errors"] for r in results)
    wrong_reads = sum(r["wrong_reads"] for r in results)
    # The last value each writer had acknowledged, per key, over all processes.
    last: dict[str, dict[str, int]] = {}
    for r in results:
        for key, writers in r["last"].items():
            last.setdefault(key, {}).update(writers)

    def final_ok(key: str, payload: Any) -> bool:
        return whole(payload, key) and last.get(key, {}).get(payload["w"]) == payload["n"]

    db = store.database
    lost = 0
    finals: dict[str, Any] = {}
    for symbol in SYMBOLS:
        doc = await db["signal-items"].find_one({"symbol": symbol, "strategyName": "rel", "exchangeName": "x"})
        finals[f"signal/{symbol}"] = doc and doc["payload"]
    for mkey in MEASURE_KEYS:
        doc = await db["measure-items"].find_one({"bucket": SHARED_BUCKET, "entryKey": mkey})
        finals[f"measure/{mkey}"] = doc and doc["payload"]
    for rid in ROW_IDS:
        doc = await db["storage-items"].find_one({"backtest": False, "signalId": rid})
        finals[f"storage/{rid}"] = doc and doc["payload"]
    for key, payload in finals.items():
        if key in last and not final_ok(key, payload):
            lost += 1
    written_keys = [k for k in finals if k in last]
    unique_keys = [k for r in results for k in r["unique"]]
    stored_unique = {doc["entryKey"]: doc["payload"]
                     async for doc in db["measure-items"].find({"bucket": UNIQUE_BUCKET})}
    lost += sum(1 for k in unique_keys if not whole(stored_unique.get(k), k))

    duplicates = 0
    for collection, fields in (("signal-items", ("symbol", "strategyName", "exchangeName")),
                               ("measure-items", ("bucket", "entryKey")), ("storage-items", ("backtest", "signalId"))):
        counts = Counter([tuple(doc[f] for f in fields) async for doc in db[collection].find({}, {"_id": 0})])
        duplicates += sum(n - 1 for n in counts.values() if n > 1)
    documents = {c: await db[c].count_documents({}) for c in ("signal-items", "measure-items", "storage-items")}

    report(f"reliability/processes×tasks: {processes} processes × {TASKS} tasks, {ops:,} operations in "
           f"{seconds:.1f} s: {errors} errors, {wrong_reads} wrong reads, {lost} lost writes (of "
           f"{len(written_keys)} shared keys and {len(unique_keys):,} unique keys), {duplicates} duplicate documents; "
           f"{null_retries} null upsert answers retried")
    assert ops == total_ops
    assert errors == 0, [s for r in results for s in r["error_samples"]]
    assert wrong_reads == 0, [s for r in results for s in r["wrong_samples"]]
    assert len(written_keys) == len(finals)  # every shared key was written by someone
    assert lost == 0, {k: v for k, v in finals.items() if k in last and not final_ok(k, v)}
    assert len(set(unique_keys)) == len(unique_keys) == len(stored_unique)
    assert duplicates == 0
    assert documents == {"signal-items": len(SYMBOLS), "measure-items": len(MEASURE_KEYS) + len(unique_keys),
                         "storage-items": len(ROW_IDS)}


# -- helpers for the fault tests -----------------------------------------------------------------------------

class Progress:
    """Counts shared by workload tasks and the controller that injects faults: the controller waits on counted
    conditions (operations done, failures seen), never on a sleep."""

    def __init__(self) -> None:
        self.phase = "up"
        self.ops: Counter[str] = Counter()      # successful operations, per phase
        self.failed: Counter[str] = Counter()   # operations that raised, per phase
        self.slowest: dict[str, float] = {}     # longest operation, per phase (seconds)
        self.errors: list[str] = []
        self.stop = False
        self._changed = asyncio.Condition()

    async def done(self, ok: bool, seconds: float, error: BaseException | None = None) -> None:
        (self.ops if ok else self.failed)[self.phase] += 1
        self.slowest[self.phase] = max(self.slowest.get(self.phase, 0.0), seconds)
        if error is not None and len(self.errors) < 5:
            self.errors.append(f"{self.phase}: {type(error).__name__}: {error}")
        async with self._changed:
            self._changed.notify_all()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)
        try:
            await asyncio.wait_for(wait(), HANG)
        except asyncio.TimeoutError:
            raise AssertionError(f"gave up after {HANG:.0f} s waiting for {what}: ops {dict(self.ops)}, "
                                 f"failed {dict(self.failed)}, errors {self.errors}") from None

    def enter(self, phase: str) -> None:
        self.phase = phase


async def stop_tasks(progress: Progress, tasks: list[asyncio.Task[None]]) -> None:
    progress.stop = True
    await asyncio.wait_for(asyncio.gather(*tasks), HANG)


def own_valkey(tmp_path: Path) -> Any:
    from backtest_store.embedded import EmbeddedServer, free_port, valkey_binary

    port = free_port()
    return EmbeddedServer("valkey-server", [
        str(valkey_binary()), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(tmp_path)], port, tmp_path / "valkey.log")


def own_secantus(tmp_path: Path, name: str = "mongo") -> Any:
    """A SecantusDB of this test's own, durable as the embedded one (`--sync-on-commit`), on a tmp path."""
    from backtest_store.embedded import EmbeddedServer, free_port, secantus_command

    port, storage = free_port(), tmp_path / name
    storage.mkdir(parents=True, exist_ok=True)
    return EmbeddedServer("SecantusDB", [
        secantus_command(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(storage),
        "--sync-on-commit", "--log-level", "WARNING"], port, tmp_path / f"{name}.log")


def stop_server(server: Any) -> None:
    """Stop a server this test started: resumed first if it was stopped, so that SIGTERM is seen."""
    proc = server.proc
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
    server.stop()


def discard_server(server: Any) -> None:
    """End a throwaway server this test started (its data is in tmp_path): SIGKILL spares SecantusDB's seconds of
    shutdown checkpoint."""
    proc = server.proc
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    server.stop()  # forgets the process


# -- 2. Redis stopped, resumed and killed under load ---------------------------------------------------------

async def test_redis_stopped_resumed_and_killed_mid_run(open_store: Any, tmp_path: Path, report: Report) -> None:
    """20 tasks, each the only writer of its own Signal row and Measure entry, write then read back in a loop.
    Redis (a valkey-server of this test's own) is SIGSTOPped until the store has tried it again after
    `cache_retry_after` and seen it fail again, SIGCONTed until the cache serves hits again, then SIGKILLed. Every
    read must equal what the task last wrote and what MongoDB holds at that moment."""
    from datetime import datetime, timezone

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    valkey = own_valkey(tmp_path)
    await valkey.start()
    socket_timeout, retry_after = 1.0, 1.0  # the store's defaults
    try:
        # A first level of one entry: the 40 keys, in turn, never stay known in this process, so every call asks
        # Redis, as calls on keys a process has not seen do: the level under test here.
        store = await open_store(redis_url=f"redis://127.0.0.1:{valkey.port}/0",
                                 redis_socket_timeout=socket_timeout, cache_retry_after=retry_after,
                                 cache_local_entries=1)
        await store.wait_ready()
        db, progress = store.database, Progress()
        wrong: list[str] = []

        async def worker(t: int) -> None:
            sig, measure = store.adapters.signal(f"S{t}", "rel", "x"), store.adapters.measure("rel_1m_0")
            flt = {"symbol": f"S{t}", "strategyName": "rel", "exchangeName": "x"}
            n = 0
            while not progress.stop:
                n += 1
                started = time.perf_counter()
                try:
                    if n % 2:
                        row = {"task": t, "n": n}
                        await sig.write_signal_data(row)
                        got = await sig.read_signal_data()
                        held = (await db["signal-items"].find_one(flt) or {}).get("payload")
                    else:
                        row = {"id": f"m{t}", "data": {"n": n}, "removed": False}
                        await measure.write_measure_data(row, f"m{t}", when)
                        got = await measure.read_measure_data(f"m{t}")
                        held = (await db["measure-items"].find_one(
                            {"bucket": "rel_1m_0", "entryKey": f"m{t}"}) or {}).get("payload")
                except Exception as exc:
                    await progress.done(False, time.perf_counter() - started, exc)
                    continue
                if not (got == row == held):
                    wrong.append(f"{progress.phase}: wrote {row}, read {got}, MongoDB holds {held}")
                await progress.done(True, time.perf_counter() - started)

        workers = 20
        tasks = [asyncio.create_task(worker(t)) for t in range(workers)]
        assert valkey.proc is not None
        pid, stats, batch = valkey.proc.pid, store.cache_stats, 200
        try:
            await progress.until(lambda: progress.ops["up"] >= batch and stats.hits > 0, "a warm cache")
            errors_before = stats.errors
            os.kill(pid, signal.SIGSTOP)
            progress.enter("stopped")
            # Each task has at most one Redis call in flight, so the first outage fails at most `workers` calls;
            # more failures than that mean the store tried Redis again after `cache_retry_after`, still stopped.
            await progress.until(lambda: stats.errors > errors_before + workers and progress.ops["stopped"] >= batch,
                                 "a second Redis outage while it is stopped")
            stopped_errors = stats.errors - errors_before
            os.kill(pid, signal.SIGCONT)
            progress.enter("resumed")
            hits_before = stats.hits
            await progress.until(lambda: stats.hits > hits_before and progress.ops["resumed"] >= batch,
                                 "cache hits after SIGCONT")
            errors_before = stats.errors
            valkey.proc.kill()  # SIGKILL
            valkey.proc.wait()
            progress.enter("killed")
            await progress.until(lambda: stats.errors > errors_before and progress.ops["killed"] >= batch,
                                 "a Redis failure after SIGKILL")
        finally:
            await stop_tasks(progress, tasks)
    finally:
        stop_server(valkey)

    ops, failed = sum(progress.ops.values()), sum(progress.failed.values())
    report(f"reliability/redis faults: {ops:,} write+read operations (up {progress.ops['up']}, SIGSTOP "
           f"{progress.ops['stopped']}, SIGCONT {progress.ops['resumed']}, SIGKILL {progress.ops['killed']}): "
           f"{failed} failed, {len(wrong)} wrong reads; {stopped_errors} Redis calls timed out while stopped "
           f"(socket timeout {socket_timeout:g} s, retry after {retry_after:g} s), slowest operation while stopped "
           f"{progress.slowest.get('stopped', 0):.2f} s, after SIGKILL {progress.slowest.get('killed', 0):.2f} s")
    assert failed == 0, progress.errors
    assert wrong == [], wrong[:5]
    # Bounded: at most a cache read and a cache write time out within one operation (generous slack).
    assert progress.slowest["stopped"] < 2 * socket_timeout + 10


# -- 3. MongoDB killed -9 and restarted under the same Store -------------------------------------------------

async def test_mongodb_killed_and_restarted_under_the_same_store(servers: ServerUrls, tmp_path: Path,
                                                                  report: Report) -> None:
    """10 tasks write Measure entries of their own (one new key per write) and their own Signal row through one
    `Store` on a SecantusDB of this test's own (`--sync-on-commit`). After 200 acknowledged writes the server is
    killed -9; once a write has failed it is restarted on the same port and storage path, and the same `Store`
    must acknowledge 200 more. Every acknowledged write must then be in MongoDB."""
    from datetime import datetime, timezone

    from backtest_store import Store

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    server = own_secantus(tmp_path)
    await server.start()
    store = None
    try:
        store = await Store.open(mongo_url=f"mongodb://127.0.0.1:{server.port}/rel", redis_url=servers.redis,
                                 cache_prefix=unique("rel"), mongo_timeout_ms=2000)
        await store.wait_ready()
        await store.create_indexes()
        progress = Progress()
        acked: dict[str, int] = {}               # unique Measure key -> acknowledged value
        signals: dict[int, list[int]] = {}       # task -> every sequence number it tried to write
        last_signal: dict[int, int] = {}         # task -> last acknowledged sequence number

        async def worker(t: int) -> None:
            sig, measure = store.adapters.signal(f"S{t}", "rel", "x"), store.adapters.measure("rel_1m_0")
            n = 0
            while not progress.stop:
                n += 1
                started = time.perf_counter()
                try:
                    if n % 2:
                        signals.setdefault(t, []).append(n)
                        await sig.write_signal_data({"task": t, "n": n})
                        last_signal[t] = n
                    else:
                        key = f"t{t}-{n}"
                        await measure.write_measure_data({"id": key, "data": n, "removed": False}, key, when)
                        acked[key] = n
                except Exception as exc:
                    await progress.done(False, time.perf_counter() - started, exc)
                    continue
                await progress.done(True, time.perf_counter() - started)

        tasks = [asyncio.create_task(worker(t)) for t in range(10)]
        try:
            await progress.until(lambda: progress.ops["up"] >= 200, "200 acknowledged writes")
            assert server.proc is not None
            server.proc.kill()  # SIGKILL
            server.proc.wait()
            progress.enter("down")
            acked_at_kill = progress.ops["up"]
            await progress.until(lambda: progress.failed["down"] >= 1, "a failed write while MongoDB is down")
            await server.start()  # the same argv: same port, same storage path
            progress.enter("restarted")
            await progress.until(lambda: progress.ops["restarted"] >= 200, "200 writes after the restart")
        finally:
            await stop_tasks(progress, tasks)

        lost = 0
        stored = {doc["entryKey"]: doc["payload"]
                  async for doc in store.database["measure-items"].find({"bucket": "rel_1m_0"})}
        lost += sum(1 for key, n in acked.items() if stored.get(key) != {"id": key, "data": n, "removed": False})
        for t, n in last_signal.items():
            payload = await store.adapters.signal(f"S{t}", "rel", "x").read_signal_data()
            # The last acknowledged write, or a later one that raised but still landed.
            tried_after = [m for m in signals[t] if m >= n]
            lost += payload is None or payload["n"] not in tried_after
        keys = Counter([(doc["bucket"], doc["entryKey"]) async for doc in store.database["measure-items"].find({})])
        duplicates = sum(n - 1 for n in keys.values())
    finally:
        if store is not None:
            await store.flush_cache()
            await store.close()
        discard_server(server)

    report(f"reliability/mongodb kill -9: {acked_at_kill} writes acknowledged before the kill, "
           f"{progress.failed['down'] + progress.failed['restarted']} raised while it was down, "
           f"{progress.ops['restarted']} acknowledged by the same Store after the restart; "
           f"{len(acked)} acknowledged Measure keys and {len(last_signal)} Signal rows checked: {lost} lost, "
           f"{duplicates} duplicates")
    assert progress.failed["up"] == 0, progress.errors
    assert progress.ops["restarted"] >= 200
    assert lost == 0
    assert duplicates == 0


# -- 4. the client killed -9 during a candle write and during import-dump ------------------------------------

OHLCV = ("timestamp", "open", "high", "low", "close", "volume")


def whole_candle(doc: dict[str, Any]) -> bool:
    """All six OHLCV fields, each a number (a timestamp comes back as `bson.Int64`, a subclass of int)."""
    return all(isinstance(doc.get(f), (int, float)) and not isinstance(doc.get(f), bool) for f in OHLCV)


async def kill_when(child: Child, count: Callable[[], Any], at_least: int) -> int:
    """SIGKILL `child` once `count()` reaches `at_least` documents; returns the count seen at the kill. Polling
    only decides when to kill: any moment while the write runs would do."""
    deadline = time.monotonic() + HANG
    while (seen := await count()) < at_least:
        assert child.proc.returncode is None, \
            f"the client exited ({child.proc.returncode}) before {at_least} documents:\n{child.stderr()[-3000:]}"
        assert time.monotonic() < deadline, f"only {seen} documents after {HANG:.0f} s"
        await asyncio.sleep(0.05)
    await child.kill()
    return seen


@pytest.fixture
async def own_mongo(servers: ServerUrls, tmp_path: Path) -> AsyncIterator[Any]:
    """A `Store` on a SecantusDB of this test's own: tens of thousands of upserts would slow the shared one
    (its oplog caps at 100k entries, after which findAndModify slows down until restart) for later tests."""
    from backtest_store import Store

    server = own_secantus(tmp_path)
    await server.start()
    store = None
    try:
        store = await Store.open(mongo_url=f"mongodb://127.0.0.1:{server.port}/rel", redis_url=servers.redis,
                                 cache_prefix=unique("rel"))
        await store.wait_ready()
        await store.create_indexes()
        yield store
    finally:
        if store is not None:
            await store.flush_cache()
            await store.close()
        discard_server(server)


CANDLES = int(os.environ.get("BACKTEST_STORE_RELIABILITY_CANDLES", "3000"))


async def test_client_killed_during_a_candle_write(own_mongo: Any, tmp_path: Path, report: Report) -> None:
    """One `write_candles_data` call of 3,000 one-minute candles in a child process, SIGKILLed once a fifth of
    them are stored, then the same call again in a new process, to completion.

    Scaled down from 100,000: on SecantusDB (a Python server) 100k candles take minutes to write, far over this
    file's time budget. `python benchmarks/client_kill.py` runs the full 100,000 (its figures are in its
    docstring); `BACKTEST_STORE_RELIABILITY_CANDLES=100000` runs this test at that size."""
    from tests.reliability_child import candle_rows

    store = own_mongo
    candles = store.database["candle-items"]
    cfg = json.dumps({"mongo_url": store.settings.mongo_url, "redis_url": store.settings.redis_url,
                      "prefix": store.settings.cache_prefix, "count": CANDLES})
    child = await Child.start(tmp_path / "candles.log", "-m", "tests.reliability_child", "candles", cfg)
    try:
        await child.line("writing")
        at_kill = await kill_when(child, candles.estimated_document_count, CANDLES // 5)
    finally:
        await child.kill()
    after_kill = await candles.estimated_document_count()
    rerun_child = await Child.start(tmp_path / "candles-rerun.log", "-m", "tests.reliability_child", "candles", cfg)
    rerun = await rerun_child.finish()
    inserted_by_rerun = int(rerun.split()[-1])

    expected = {c["timestamp"]: c for c in candle_rows(CANDLES)}
    docs = [doc async for doc in candles.find({}, {"_id": 0})]
    keys = Counter((d["exchangeName"], d["symbol"], d["interval"], d["timestamp"]) for d in docs)
    duplicates = sum(n - 1 for n in keys.values())
    partial = sum(1 for d in docs if not whole_candle(d))
    wrong = sum(1 for d in docs if {f: d.get(f) for f in OHLCV} != expected.get(d["timestamp"]))
    report(f"reliability/client kill -9 during write_candles_data({CANDLES:,} candles): killed at {at_kill:,} "
           f"stored ({after_kill:,} right after the kill); the rerun inserted {inserted_by_rerun:,} (the server "
           f"applied the rest of the killed client's bulk write itself); "
           f"{len(docs):,} documents, {len(keys):,} distinct keys: {duplicates} duplicates, {partial} partial, "
           f"{wrong} differing from the candle written")
    assert at_kill < CANDLES, "the client finished before it was killed"
    assert len(docs) == len(keys) == CANDLES
    assert duplicates == 0 and partial == 0 and wrong == 0


def generate_dump(root: Path, candles: int, entries: int) -> dict[str, Any]:
    """`candles` one-minute candle files and `entries` Measure entries; returns every file's JSON by path."""
    from tests.reliability_child import MINUTE, T0

    files: dict[str, Any] = {}
    directory = root / "data/candle/binance/ETHUSDT/1m"
    directory.mkdir(parents=True)
    for i in range(candles):
        ts = T0 + i * MINUTE
        files[f"data/candle/binance/ETHUSDT/1m/{ts}.json"] = {
            "timestamp": ts, "open": 3000.5 + i, "high": 3010 + i, "low": 2990.25 + i, "close": 3005 + i,
            "volume": 1.5 + i % 11}
    bucket = root / "data/measure/rel_1m_0"
    bucket.mkdir(parents=True)
    for i in range(entries):
        key = f"ETHUSDT_{T0 + i * MINUTE}"
        files[f"data/measure/rel_1m_0/{key}.json"] = {"id": key, "data": {"i": i, "tags": ["a", str(i)]},
                                                      "removed": i % 10 == 0}
    for rel, value in files.items():
        (root / rel).write_bytes(json.dumps(value, separators=(",", ":")).encode())
    return files


async def test_client_killed_during_import_dump(own_mongo: Any, tmp_path: Path, report: Report) -> None:
    """`backtest-store import-dump` of a generated dump (2,000 candle files and 1,000 Measure entries) in a
    child process, SIGKILLed once 500 documents are stored, then run again to completion. Every record must
    then be stored once and equal its file."""
    from backtest_store.models.candle import candle_of

    store = own_mongo
    dump = tmp_path / "dump"
    files = generate_dump(dump, candles=2000, entries=1000)
    env = {**child_env(), "CC_MONGO_CONNECTION_STRING": store.settings.mongo_url,
           "CC_REDIS_URL": store.settings.redis_url, "BACKTEST_STORE_CACHE_PREFIX": store.settings.cache_prefix}
    command = ("-m", "backtest_store", "import-dump", str(dump), "--batch-size", "100", "--no-progress", "--json")
    db = store.database

    async def stored() -> int:
        return await db["candle-items"].estimated_document_count() + \
            await db["measure-items"].estimated_document_count()

    child = await Child.start(tmp_path / "import.log", *command, env=env)
    try:
        at_kill = await kill_when(child, stored, 500)
    finally:
        await child.kill()
    rerun = json.loads(await (await Child.start(tmp_path / "import-rerun.log", *command, env=env)).finish())

    candle_docs = [d async for d in db["candle-items"].find({}, {"_id": 0})]
    measure_docs = [d async for d in db["measure-items"].find({}, {"_id": 0})]
    keys = Counter([("candle", d["timestamp"]) for d in candle_docs] + [("measure", d["entryKey"]) for d in measure_docs])
    duplicates = sum(n - 1 for n in keys.values())
    partial = sum(1 for d in candle_docs if not whole_candle(d))
    differing = [f"candle {d['timestamp']}" for d in candle_docs
                 if candle_of(d) != files.get(f"data/candle/binance/ETHUSDT/1m/{d['timestamp']}.json")]
    for d in measure_docs:
        entry = files.get(f"data/measure/rel_1m_0/{d['entryKey']}.json")
        if entry is None or d.get("payload") != entry or d.get("removed") is not entry["removed"]:
            differing.append(f"measure {d['entryKey']}")
    imported_by_rerun = rerun["imported"]
    report(f"reliability/client kill -9 during import-dump ({len(files):,} files): killed at {at_kill:,} stored; "
           f"the rerun imported {imported_by_rerun:,}, found {rerun['unchanged']:,} already stored, skipped "
           f"{rerun['skipped']}; {len(keys):,} records: "
           f"{duplicates} duplicates, {partial} partial candles, {len(differing)} differing from their file")
    assert at_kill < len(files), "the import finished before it was killed"
    assert rerun["skipped"] == 0 and rerun["imported"] + rerun["unchanged"] == len(files)
    assert len(candle_docs) + len(measure_docs) == len(keys) == len(files)
    assert duplicates == 0 and partial == 0
    assert differing == [], differing[:5]
