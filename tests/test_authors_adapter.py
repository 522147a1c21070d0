"""The framework author's own adapter, `@backtest-kit/mongo` 19.5.0, and backtest-store on the same servers.

- Framework to us: backtest-kit 19.5.0 runs a small backtest through the author's adapter into the suite's MongoDB
  and Redis (`tests/interop/mongo_adapter.mjs run`); the six contracts only live trading persists are written
  through the framework's own `Persist*Adapter` API. Every record of all 16 contracts then reads the same through
  the framework (so through the author's adapter) and through backtest-store.
- Us to the framework: what backtest-store read is written by backtest-store into a fresh database, and the
  framework reads every record back through the author's adapter, equal.
- No `Long`: what backtest-store writes reaches the Node MongoDB driver (the one mongoose uses) as numbers.

The Node packages come from BACKTEST_KIT_MONGO_NODE_MODULES: a `node_modules.tar.gz` (unpacked once per session)
or an unpacked `node_modules` holding @backtest-kit/mongo 19.5.0, backtest-kit 19.5.0, mongoose and ioredis
(`../shared/backtest-kit-mongo-19.5/node_modules.tar.gz`, see `tests/fixtures/README.md`), used when the variable is
unset. Neither there, these tests skip with a reason saying how to enable them; under
BACKTEST_STORE_REQUIRE_FRAMEWORK=1 (CI, `.ci/run`) a missing package or `node` fails them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from bson import Int64

from backtest_store import Store
from backtest_store.dump import import_dump
from backtest_store.dump.jsonfile import json_equal, loads, to_json
from backtest_store.contracts import DOCUMENTS
from backtest_store.models import Item
from backtest_store.validation import INTERVAL_MINUTES
from tests import external
from tests.zoo import ServerUrls, unique

ENV = "BACKTEST_KIT_MONGO_NODE_MODULES"
VERSION = "19.5.0"
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "interop" / "mongo_adapter.mjs"
SIBLING_TARBALL = REPO.parent / "shared" / "backtest-kit-mongo-19.5" / "node_modules.tar.gz"
NODE_TIMEOUT = 300  # a run takes seconds; this only stops a hung process
WHEN = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
# The author's Redis keys: `<name>_cache:<context>` holding a document's `_id`, in database 0, with no expiry.
AUTHOR_CACHES = ("candle", "signal", "schedule", "strategy", "risk", "partial", "breakeven", "storage", "notification",
                 "log", "measure", "interval", "memory", "recent", "state", "session", "dictionary")

Key = dict[str, Any]


# -- finding the author's adapter --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def authors_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked node_modules holding @backtest-kit/mongo 19.5.0 and its peers; unpacked once per session."""
    configured = os.environ.get(ENV) or (str(SIBLING_TARBALL) if SIBLING_TARBALL.is_file() else "")
    if not configured:
        external.missing(f"{ENV} is unset and {SIBLING_TARBALL} does not exist",
                         f"set {ENV} to ../shared/backtest-kit-mongo-19.5/node_modules.tar.gz (or an unpacked "
                         "node_modules with @backtest-kit/mongo 19.5.0, backtest-kit, mongoose and ioredis)")
    path = Path(configured).expanduser()
    if path.is_file():
        dest = tmp_path_factory.mktemp("backtest-kit-mongo")
        try:
            with tarfile.open(path) as archive:
                archive.extractall(dest, filter="data")
        except (OSError, tarfile.TarError) as exc:
            pytest.fail(f"{ENV}: cannot unpack {path}: {exc}", pytrace=False)
        path = dest / "node_modules" if (dest / "node_modules").is_dir() else dest
    manifest = path / "@backtest-kit" / "mongo" / "package.json"
    if not manifest.is_file():
        pytest.fail(f"{ENV}={configured}: {path} holds no @backtest-kit/mongo/package.json", pytrace=False)
    for package in ("@backtest-kit/mongo", "backtest-kit"):
        version = json.loads((path / package / "package.json").read_text())["version"]
        if version != VERSION:
            pytest.fail(f"{ENV}: {package} is {version}, this test is written against {VERSION}", pytrace=False)
    external.node()
    return path


async def node(modules: Path, command: str, spec: dict[str, Any], workdir: Path) -> Any:
    """Run `mongo_adapter.mjs COMMAND`; its result, parsed as JavaScript's JSON.parse would."""
    spec_path, out_path = workdir / f"{command}-spec.json", workdir / f"{command}-out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    argv = [shutil.which("node") or "node", str(SCRIPT), str(modules), command, str(spec_path), str(out_path)]
    try:
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=NODE_TIMEOUT,
                                       cwd=workdir)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} did not finish within {NODE_TIMEOUT} s")
    if done.returncode != 0 or not out_path.is_file():
        pytest.fail(f"{' '.join(argv)} exited with {done.returncode}\nstdout:\n{done.stdout[-2000:]}\n"
                    f"stderr:\n{done.stderr[-4000:]}")
    return loads(out_path.read_bytes())


def node_spec(servers: ServerUrls, database: str, **extra: Any) -> dict[str, Any]:
    redis = urlsplit(servers.redis)
    return {"mongo": servers.mongo_db(database), "redisHost": redis.hostname or "127.0.0.1",
            "redisPort": redis.port or 6379, **extra}


async def forget_author_keys(servers: ServerUrls, ids: set[str]) -> None:
    """Delete the author's cache keys that point at `ids` (documents of this test's databases), nothing else: with
    no expiry they would pile up in a Redis that outlives the suite."""
    parts = urlsplit(servers.redis)
    client = aioredis.Redis(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=0,
                            username=parts.username, password=parts.password)
    try:
        for name in AUTHOR_CACHES:
            keys = [key async for key in client.scan_iter(match=f"{name}_cache:*", count=1000)]
            for start in range(0, len(keys), 1000):
                chunk = keys[start:start + 1000]
                values = await client.mget(chunk)
                ours = [k for k, v in zip(chunk, values) if v is not None and v.decode() in ids]
                if ours:
                    await client.delete(*ours)
    finally:
        # redis-py 5 has aclose(); the types-redis stubs redis-om pulls in still describe 4.x.
        await client.aclose()  # type: ignore[attr-defined]


# -- the 16 contracts: keys from the stored documents, a read and a write on our side ----------------------------

# The 16 contracts of backtest-kit 19.5 (Dictionary came with 20).
CONTRACTS = ("candle", "signal", "schedule", "strategy", "risk", "partial", "breakeven", "storage", "notification",
             "log", "measure", "interval", "memory", "recent", "state", "session")
MODELS: dict[str, type[Item]] = {name: model for model in DOCUMENTS
                                 if (name := model.collection_name().removesuffix("-items")) in CONTRACTS}
ROW_ID = {"storage": "signalId", "notification": "notificationId", "log": "entryId"}


def keys_of(contract: str, docs: list[dict[str, Any]]) -> list[Key]:
    """One key per read: a record's context; a row set's mode; runs of consecutive candles as windows."""
    fields = [f for f in MODELS[contract].context_key() if f != ROW_ID.get(contract)]
    if contract == "candle":
        fields.remove("timestamp")
        windows = []
        ordered = sorted(docs, key=lambda d: (*[d[f] for f in fields], d["timestamp"]))
        for context, group in groupby(ordered, key=lambda d: tuple(d[f] for f in fields)):
            step = INTERVAL_MINUTES[dict(zip(fields, context))["interval"]] * 60_000
            stamps = [int(d["timestamp"]) for d in group]
            start = 0
            for i in range(1, len(stamps) + 1):
                if i == len(stamps) or stamps[i] != stamps[i - 1] + step:
                    windows.append({**dict(zip(fields, context)), "since": stamps[start], "limit": i - start})
                    start = i
        return windows
    seen: dict[str, Key] = {}
    for doc in docs:
        key = {f: doc[f] for f in fields}
        seen.setdefault(json.dumps(key, sort_keys=True), key)
    return list(seen.values())


Read = Callable[[Store, Key], Awaitable[Any]]
Write = Callable[[Store, Key, Any], Awaitable[Any]]


def _triple(k: Key) -> tuple[str, str, str]:
    return k["symbol"], k["strategyName"], k["exchangeName"]


def _session(k: Key) -> tuple[str, str, str, str, bool]:
    return k["strategyName"], k["exchangeName"], k["frameName"], k["symbol"], k["backtest"]


def _recent(k: Key) -> tuple[str, str, str, str, bool]:
    return k["symbol"], k["strategyName"], k["exchangeName"], k["frameName"], k["backtest"]


def _window_end(k: Key) -> int:
    return int(k["since"]) + int(k["limit"]) * INTERVAL_MINUTES[k["interval"]] * 60_000


READ: dict[str, Read] = {
    "candle": lambda s, k: s.adapters.candle(k["symbol"], k["interval"], k["exchangeName"]).read_candles_data(
        k["limit"], k["since"], _window_end(k)),
    "signal": lambda s, k: s.adapters.signal(*_triple(k)).read_signal_data(),
    "schedule": lambda s, k: s.adapters.schedule(*_triple(k)).read_schedule_data(),
    "strategy": lambda s, k: s.adapters.strategy(*_triple(k)).read_strategy_data(),
    "risk": lambda s, k: s.adapters.risk(k["riskName"], k["exchangeName"]).read_position_data(WHEN),
    "partial": lambda s, k: s.adapters.partial(*_triple(k)).read_partial_data(k["signalId"], WHEN),
    "breakeven": lambda s, k: s.adapters.breakeven(*_triple(k)).read_breakeven_data(k["signalId"], WHEN),
    "storage": lambda s, k: s.adapters.storage(k["backtest"]).read_storage_data(),
    "notification": lambda s, k: s.adapters.notification(k["backtest"]).read_notification_data(),
    "log": lambda s, k: s.adapters.log().read_log_data(),
    "measure": lambda s, k: s.adapters.measure(k["bucket"]).read_measure_data(k["entryKey"]),
    "interval": lambda s, k: s.adapters.interval(k["bucket"]).read_interval_data(k["entryKey"]),
    "memory": lambda s, k: s.adapters.memory(k["signalId"], k["bucketName"]).read_memory_data(k["memoryId"]),
    "recent": lambda s, k: s.adapters.recent(*_recent(k)).read_recent_data(),
    "state": lambda s, k: s.adapters.state(k["signalId"], k["bucketName"]).read_state_data(),
    "session": lambda s, k: s.adapters.session(*_session(k)).read_session_data(),
}

WRITE: dict[str, Write] = {
    "candle": lambda s, k, v: s.adapters.candle(k["symbol"], k["interval"], k["exchangeName"]).write_candles_data(v),
    "signal": lambda s, k, v: s.adapters.signal(*_triple(k)).write_signal_data(v),
    "schedule": lambda s, k, v: s.adapters.schedule(*_triple(k)).write_schedule_data(v),
    "strategy": lambda s, k, v: s.adapters.strategy(*_triple(k)).write_strategy_data(v),
    "risk": lambda s, k, v: s.adapters.risk(k["riskName"], k["exchangeName"]).write_position_data(v, WHEN),
    "partial": lambda s, k, v: s.adapters.partial(*_triple(k)).write_partial_data(v, k["signalId"], WHEN),
    "breakeven": lambda s, k, v: s.adapters.breakeven(*_triple(k)).write_breakeven_data(v, k["signalId"], WHEN),
    "storage": lambda s, k, v: s.adapters.storage(k["backtest"]).write_storage_data(v),
    "notification": lambda s, k, v: s.adapters.notification(k["backtest"]).write_notification_data(v),
    "log": lambda s, k, v: s.adapters.log().write_log_data(v),
    "measure": lambda s, k, v: s.adapters.measure(k["bucket"]).write_measure_data(v, k["entryKey"], WHEN),
    "interval": lambda s, k, v: s.adapters.interval(k["bucket"]).write_interval_data(v, k["entryKey"], WHEN),
    "memory": lambda s, k, v: s.adapters.memory(k["signalId"], k["bucketName"]).write_memory_data(
        v, k["memoryId"], WHEN),
    "recent": lambda s, k, v: s.adapters.recent(*_recent(k)).write_recent_data(v, WHEN),
    "state": lambda s, k, v: s.adapters.state(k["signalId"], k["bucketName"]).write_state_data(v, WHEN),
    "session": lambda s, k, v: s.adapters.session(*_session(k)).write_session_data(v, WHEN),
}
REMOVE = {"measure": "remove_measure_data", "interval": "remove_interval_data", "memory": "remove_memory_data"}
ENTRY = {"measure": ("bucket", "entryKey"), "interval": ("bucket", "entryKey"),
         "memory": ("signalId", "bucketName", "memoryId")}


def comparable(contract: str, value: Any) -> Any:
    """A read as JSON carries it; row sets by id, since neither side promises an order."""
    value = to_json(value)
    if contract in ROW_ID and isinstance(value, list):
        return sorted(value, key=lambda row: str(row.get("id")))
    return value


def differences(ours: dict[str, list[Any]], theirs: dict[str, list[Any]],
                keys: dict[str, list[Key]]) -> dict[str, str]:
    """Per contract, the first key whose two reads differ (or why the contract cannot be compared)."""
    found = {}
    for contract in READ:
        if not keys.get(contract):
            found[contract] = "no record of this contract was written"
            continue
        for key, a, b in zip(keys[contract], ours[contract], theirs[contract], strict=True):
            ours_, theirs_ = comparable(contract, a), comparable(contract, b)
            if not json_equal(ours_, theirs_):
                found[contract] = f"{key}: {first_difference(ours_, theirs_)}"
                break
    return found


def first_difference(a: Any, b: Any, path: str = "value") -> str:
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return next(first_difference(a[k], b[k], f"{path}.{k}") for k in a if not json_equal(a[k], b[k]))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next(first_difference(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))
                    if not json_equal(x, y))
    return f"{path} is {json.dumps(a)[:300]} in backtest-store, {json.dumps(b)[:300]} in the author's adapter"


# -- both ways, once ---------------------------------------------------------------------------------------------

@dataclass
class Interop:
    keys: dict[str, list[Key]]
    framework_reads: dict[str, list[Any]]  # database A, written by the framework, read through the author's adapter
    our_reads: dict[str, list[Any]]  # database A read through backtest-store
    framework_reads_ours: dict[str, list[Any]]  # database B, written by backtest-store, read by the framework


@pytest.fixture(scope="module")
async def interop(authors_adapter: Path, servers: ServerUrls,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Interop]:
    workdir = tmp_path_factory.mktemp("authors-adapter")
    a, b = unique("author"), unique("ours")
    ours_a = await Store.open(mongo_url=servers.mongo_db(a), redis_url=servers.redis, cache_prefix=unique("bts"))
    ours_b = await Store.open(mongo_url=servers.mongo_db(b), redis_url=servers.redis, cache_prefix=unique("bts"))
    ids: set[str] = set()
    try:
        await node(authors_adapter, "run", node_spec(servers, a), workdir)
        raw = {name: await ours_a.database[model.collection_name()].find({}).to_list()
               for name, model in MODELS.items()}
        ids |= {str(doc["_id"]) for docs in raw.values() for doc in docs}
        keys = {name: keys_of(name, docs) for name, docs in raw.items()}
        framework_reads = await node(authors_adapter, "read", node_spec(servers, a, keys=keys), workdir)
        our_reads = {name: [await READ[name](ours_a, key) for key in keys[name]] for name in READ}

        # What backtest-store read, written by backtest-store: entries the framework removed are written and
        # removed again, from the stored payload.
        await ours_b.create_indexes()
        for name in READ:
            for key, value in zip(keys[name], our_reads[name]):
                if value is None and name in REMOVE:
                    fields = ENTRY[name]
                    (doc,) = [d for d in raw[name] if all(d[f] == key[f] for f in fields)]
                    await WRITE[name](ours_b, key, doc["payload"])
                    adapter = (ours_b.adapters.memory(key["signalId"], key["bucketName"]) if name == "memory"
                               else getattr(ours_b.adapters, name)(key["bucket"]))
                    await getattr(adapter, REMOVE[name])(key[fields[-1]])
                else:
                    await WRITE[name](ours_b, key, value)
        framework_reads_ours = await node(authors_adapter, "read", node_spec(servers, b, keys=keys), workdir)
        for database in (ours_b.database,):
            for model in DOCUMENTS:
                ids |= {str(d["_id"]) async for d in database[model.collection_name()].find({}, {"_id": 1})}
        yield Interop(keys, framework_reads, our_reads, framework_reads_ours)
    finally:
        for store, name in ((ours_a, a), (ours_b, b)):
            await store.mongo.drop_database(name)
            await store.flush_cache()
            await store.close()
        await forget_author_keys(servers, ids)


def test_the_framework_wrote_every_contract_through_the_authors_adapter(interop: Interop) -> None:
    """Guards against a vacuous pass: all 16 collections hold records, and the adapter reads each back."""
    assert sorted(READ) == sorted(WRITE) == sorted(MODELS) == sorted(CONTRACTS) and len(CONTRACTS) == 16
    empty = sorted(name for name in READ if not interop.keys[name])
    assert empty == [], f"the framework wrote no record of {empty}"
    unread = sorted(name for name in READ if all(v is None for v in interop.framework_reads[name]))
    assert unread == [], f"the author's adapter read nothing back for {unread}"


def test_framework_records_read_equal_through_backtest_store(interop: Interop, report: Callable[[str], None]) -> None:
    found = differences(interop.our_reads, interop.framework_reads, interop.keys)
    report(f"author's adapter -> backtest-store: {16 - len(found)} of 16 contracts read equal "
           f"({sum(map(len, interop.keys.values()))} reads)")
    assert found == {}, "\n".join(f"{c}: {why}" for c, why in found.items())


def test_backtest_store_records_read_equal_through_the_authors_adapter(interop: Interop,
                                                                       report: Callable[[str], None]) -> None:
    found = differences(interop.our_reads, interop.framework_reads_ours, interop.keys)
    report(f"backtest-store -> author's adapter: {16 - len(found)} of 16 contracts read equal")
    assert found == {}, "\n".join(f"{c}: {why}" for c, why in found.items())


# -- the TypeScript side never sees a Long ------------------------------------------------------------------------

SAFE = 2**53 - 1
EDGES = {"max": SAFE, "min": -SAFE, "int64": Int64(SAFE), "small": 5, "int32_edge": 2**31, "double": 2.0**60,
         "nested": [{"ms": 1767225600000, "neg": -(2**40)}]}


async def test_the_node_driver_reads_numbers_never_a_long(authors_adapter: Path, store: Store,
                                                          tmp_path: Path) -> None:
    """What backtest-store writes, at the edge of the safe integers, reaches the Node MongoDB driver as numbers; a
    control document holding an Int64 beyond them (written with PyMongo, past our checks) shows what is refused."""
    a = store.adapters
    await a.signal("BTCUSDT", "s", "e").write_signal_data({"id": "sig", **EDGES})
    await a.interval("b").write_interval_data({"id": "k", "data": EDGES, "when": 1, "removed": False}, "k", WHEN)
    await a.storage(True).write_storage_data([{"id": "r", **EDGES}])
    await a.log().write_log_data([{"id": "l", **EDGES}])
    await a.risk("r", "e").write_position_data([["k", EDGES]], WHEN)
    await a.candle("BTCUSDT", "1m", "e").write_candles_data(
        [{"timestamp": 1704067200000, "open": 1.0, "high": 2, "low": 0.5, "close": 1.5, "volume": SAFE, "n": -SAFE}])
    # A dump written by the framework holds JSON numbers, doubles in JavaScript, however large.
    dump = tmp_path / "dump" / "data" / "log" / "log"
    dump.mkdir(parents=True)
    (dump / "big.json").write_bytes(b'{"id":"big","at":9007199254740992,"huge":12345678901234567890,"ok":%d}' % SAFE)
    assert (await import_dump(store, tmp_path / "dump")).imported == 1
    await store.database["control-items"].insert_one({"payload": {"long": Int64(2**60)}})

    seen = await node(authors_adapter, "raw", {"mongo": store.settings.mongo_url}, tmp_path)
    assert seen["longs"] == ["control-items[0].payload.long"], seen["longs"]
    docs = seen["docs"]
    expected = json.loads(json.dumps(EDGES))
    # JSON.stringify on the Node side, json here: the same numbers, to the digit.
    assert docs["signal-items"][0]["payload"] == {"id": "sig", **expected}
    assert docs["interval-items"][0]["payload"]["data"] == expected
    assert docs["storage-items"][0]["payload"] == {"id": "r", **expected}
    assert docs["risk-items"][0]["positions"] == [["k", expected]]
    logs = {doc["payload"]["id"]: doc["payload"] for doc in docs["log-items"]}
    assert logs["l"] == {"id": "l", **expected}
    assert logs["big"] == {"id": "big", "at": 2.0**53, "huge": float(12345678901234567890), "ok": SAFE}
    stored = await store.database["log-items"].find_one({"entryId": "big"})
    assert stored is not None and type(stored["payload"]["at"]) is float and type(stored["payload"]["ok"]) is not float
    (candle,) = docs["candle-items"]
    assert candle["volume"] == SAFE and candle["timestamp"] == 1704067200000
