"""Shard keys against our keys (`backtest_store/migrations/sharding.py`, `migrate plan|check`).

No mongos runs here. The config database's documents come from `tests/fixtures/sharded-config/`, written in the
shapes MongoDB documents (see that folder's README entry): the pure analysis is checked on them, then the CLI reads
them from a test database standing in for `config` (`--config-db`), and on the plain test server (SecantusDB, not
sharded) plan and check say nothing about sharding.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from bson import json_util
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from backtest_store import Settings, Store
from backtest_store.cli import main
from backtest_store.errors import ConfigurationError
from backtest_store.migrations import check, create_indexes, read_shard_config
from backtest_store.migrations.sharding import (
    COARSE_KEY,
    DOCUMENTS,
    EVERY,
    INSERT_ONLY,
    KEYLESS,
    LIST_READS,
    ONE,
    RECOMMENDED,
    SCATTER,
    SOME,
    UNIQUE_NOT_ENFORCED,
    UNREADABLE,
    UNTARGETED_UPSERT,
    ShardConfig,
    analyse,
    calls,
    is_mongos,
    routing,
    shard_keys,
)
from backtest_store.models import (
    CandleItem,
    IntervalItem,
    LogItem,
    MeasureItem,
    MemoryItem,
    NotificationItem,
    SignalItem,
    StorageItem,
)
from backtest_store.store import UNCACHED, CommandCounter

FIXTURES = Path(__file__).parent / "fixtures" / "sharded-config"
DOC = Path(__file__).parent.parent / "docs" / "scale-out.md"
FIXTURE_DB = "backtest-kit"  # the database the fixtures' namespaces name


def load(name: str, database: str = FIXTURE_DB) -> Any:
    """A fixture as PyMongo would return it, its namespaces moved to `database`."""
    data = json_util.loads((FIXTURES / name).read_text())
    for doc in data if isinstance(data, list) else [data]:
        if isinstance(doc.get("_id"), str) and doc["_id"].startswith(f"{FIXTURE_DB}."):
            doc["_id"] = database + doc["_id"][len(FIXTURE_DB):]
    return data


def config(name: str, database: str = FIXTURE_DB) -> ShardConfig:
    return ShardConfig("config.collections", load(name, database), len(load("shards.json")))


def by_kind(report: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in report.findings:
        found.setdefault(finding.collection, set()).add(finding.kind)
    return found


def routes(report: Any, collection: str) -> dict[str, str]:
    sharded = next(c for c in report.collections if c.collection == collection)
    return {call.name: call.routing for call in sharded.calls}


# -- pure: the documented shapes -------------------------------------------------------------------------------

def test_hello_from_a_mongos_says_isdbgrid_and_a_replica_set_does_not() -> None:
    assert is_mongos(load("hello-mongos.json")) is True
    assert is_mongos(load("hello-replica-set.json")) is False


def test_shard_keys_skip_dropped_unsplittable_and_other_databases() -> None:
    keys = shard_keys(load("collections.json"), FIXTURE_DB)
    # session-items is tracked unsharded (MongoDB 8.0, unsplittable); other-db.signal-items is another database's.
    assert set(keys) == {"candle-items", "storage-items", "notification-items", "log-items", "measure-items",
                         "interval-items"}
    assert keys["candle-items"].key == (("exchangeName", 1), ("symbol", 1), ("interval", 1), ("timestamp", 1))
    assert keys["candle-items"].unique is True
    assert keys["candle-items"].namespace == "backtest-kit.candle-items"
    # The 4.4 shape of a dropped collection is left out too.
    assert "log-items" not in shard_keys(load("collections-misconfigured.json"), FIXTURE_DB)
    assert shard_keys(load("collections.json"), "another-db") == {}


def test_routing_follows_mongos_targeting() -> None:
    key = (("exchangeName", 1), ("symbol", 1), ("interval", 1), ("timestamp", 1))
    every = ("exchangeName", "symbol", "interval", "timestamp")
    assert routing(key, every) == ONE
    assert routing(key, every[:3], "timestamp") == SOME  # the shards holding the range: usually one
    assert routing(key, ("exchangeName",)) == SOME  # a prefix: the shards holding that exchange
    assert routing(key, ("symbol", "interval")) == EVERY  # no leading field
    assert routing(key, ("_id",)) == EVERY
    assert routing((("_id", 1),), ("_id",)) == ONE
    assert routing((("_id", "hashed"),), ("_id",)) == ONE  # equality on a hashed field is one point
    assert routing((("timestamp", "hashed"),), (), "timestamp") == EVERY  # a range on a hashed field is not
    assert routing((("symbol", 1), ("timestamp", 1)), ("symbol",), "timestamp") == SOME


def test_recommended_keys_enforce_every_unique_index_and_target_every_keyed_call() -> None:
    report = analyse(config("collections.json"), FIXTURE_DB)
    assert report.errors == [] and report.shards == 3
    assert [c.collection for c in report.collections] == [
        "candle-items", "storage-items", "notification-items", "log-items", "measure-items", "interval-items"]
    assert routes(report, "candle-items") == {"insert": ONE, "range read": SOME}
    assert routes(report, "log-items") == {"insert": ONE, "read rows": EVERY}  # every row: inherent, not a finding
    assert routes(report, "storage-items") == {"upsert": ONE, "read rows": SOME}
    assert routes(report, "measure-items") == {"upsert": ONE, "read by key": ONE, "read by cached _id": EVERY,
                                               "list": SOME}
    # What is left: a cache hit reads by _id, which every shard must answer. A warning, never drift.
    assert by_kind(report) == {"measure-items": {SCATTER}, "interval-items": {SCATTER}}
    measure = next(f for f in report.findings if f.collection == "measure-items")
    assert "read by cached _id (_id =) goes to every shard" in measure.message
    assert "read by key goes to one shard" in measure.remedy


def test_misconfigured_keys_name_what_they_break() -> None:
    report = analyse(config("collections-misconfigured.json"), FIXTURE_DB)
    assert by_kind(report) == {
        # {symbol, interval}: both in every filter, so calls are targeted, but not a prefix of the unique index.
        "candle-items": {UNIQUE_NOT_ENFORCED},
        # {_id: hashed}: no unique index, our upserts and key reads carry no _id; a cached read is one point.
        "signal-items": {UNIQUE_NOT_ENFORCED, UNTARGETED_UPSERT, SCATTER},
        # {riskName: hashed}: targeted, but a hashed key enforces no unique index.
        "risk-items": {UNIQUE_NOT_ENFORCED, SCATTER},
        # {backtest}: a valid prefix with two values.
        "storage-items": {COARSE_KEY},
        "memory-items": {UNIQUE_NOT_ENFORCED, UNTARGETED_UPSERT, SCATTER},
        # {entryKey}: not a prefix of (bucket, entryKey); lists by bucket go everywhere.
        "measure-items": {UNIQUE_NOT_ENFORCED, SCATTER},
    }
    assert {f.collection for f in report.errors} == {"candle-items", "signal-items", "risk-items", "memory-items",
                                                     "measure-items"}
    assert routes(report, "candle-items") == {"insert": ONE, "range read": ONE}
    assert routes(report, "signal-items") == {"upsert": EVERY, "read by key": EVERY, "read by cached _id": ONE}
    assert routes(report, "memory-items")["list"] == EVERY

    messages = {(f.collection, f.kind): f for f in report.findings}
    candle = messages["candle-items", UNIQUE_NOT_ENFORCED]
    assert "candle_context_unique {exchangeName: 1, symbol: 1, interval: 1, timestamp: 1}" in candle.message
    assert "must be a prefix" in candle.message
    assert candle.remedy == ('sh.reshardCollection("backtest-kit.candle-items", '
                             '{exchangeName: 1, symbol: 1, interval: 1, timestamp: 1})')
    assert "hashed shard key enforces no unique index" in messages["risk-items", UNIQUE_NOT_ENFORCED].message
    assert "unshardCollection" in messages["risk-items", UNIQUE_NOT_ENFORCED].remedy  # small: leave it unsharded
    upsert = messages["signal-items", UNTARGETED_UPSERT]
    assert "not on the shard key's _id" in upsert.message and "before 7.1 refuses" in upsert.message
    assert "2 values" in messages["storage-items", COARSE_KEY].message


def test_every_recommended_key_and_every_context_key_is_sound() -> None:
    """The keys docs/scale-out.md recommends, and each collection's own context key, break nothing."""
    for choice in ("recommended", "context"):
        docs = []
        for model in DOCUMENTS:
            fields = RECOMMENDED[model] if choice == "recommended" else model.context_key()
            if fields is not None:
                docs.append({"_id": f"db.{model.collection_name()}", "key": {f: 1 for f in fields}})
        report = analyse(ShardConfig("config.collections", docs), "db")
        assert report.errors == [], (choice, report.errors)
        # Only the cached reads by _id scatter; no key is coarse.
        assert {f.kind for f in report.findings} <= {SCATTER}
        for sharded in report.collections:
            assert all(c.routing == ONE for c in sharded.calls if c.name in ("upsert", "insert", "read by key"))


def test_an_unreadable_config_database_is_a_warning_never_an_error() -> None:
    report = analyse(ShardConfig("config.collections", error="could not read config.collections: not authorized"),
                     FIXTURE_DB)
    assert [(f.kind, f.severity) for f in report.findings] == [(UNREADABLE, "warning")]
    assert report.errors == [] and report.as_dict()["in_sync"] is True
    assert "role `read`" in report.findings[0].remedy


def test_the_call_table_is_the_stores_own() -> None:
    assert KEYLESS == UNCACHED
    for model in DOCUMENTS:
        names = [c.name for c in calls(model, (("_id", 1),), cached=model not in UNCACHED)]
        assert names[0] == ("insert" if model in INSERT_ONLY else "upsert")
        assert ("read by key" in names) == (model not in KEYLESS)
        assert ("list" in names or "read rows" in names or "range read" in names) == (model in LIST_READS)


def test_the_doc_names_every_recommended_key() -> None:
    text = DOC.read_text()
    for model, fields in RECOMMENDED.items():
        assert model.collection_name() in text
        if fields is not None:
            assert "{" + ", ".join(f"{f}: 1" for f in fields) + "}" in text, model


# -- what the adapters really send -------------------------------------------------------------------------------

class Filters(monitoring.CommandListener):
    """The filter of every read and write, by collection: (equality fields, range field)."""

    def __init__(self) -> None:
        self.seen: dict[str, set[tuple[tuple[str, ...], str | None]]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        name = event.command_name
        if name in ("find", "findAndModify"):
            self._add(command[name], command.get("filter", command.get("query", {})))
        elif name == "update":
            for update in command["updates"]:
                self._add(command["update"], update["q"])

    def _add(self, collection: str, flt: dict[str, Any]) -> None:
        equal = tuple(sorted(f for f, v in flt.items() if not (isinstance(v, dict) and any(
            k.startswith("$") for k in v))))
        ranged = next((f for f, v in flt.items() if isinstance(v, dict) and "$gte" in v), None)
        self.seen.setdefault(collection, set()).add((equal, ranged))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_the_call_table_matches_the_filters_the_adapters_send(store: Store) -> None:
    listener = Filters()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        store.settings.mongo_url, tz_aware=True, event_listeners=[listener])
    probe = Store(store.settings, client, client[store.database.name], store.redis, CommandCounter())
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    try:
        a = probe.adapters
        candle = a.candle("BTCUSDT", "1m", "binance")
        await candle.write_candles_data([{"timestamp": 1740787200000, "open": 1.0, "high": 2.0, "low": 0.5,
                                          "close": 1.5, "volume": 10.0}])
        await candle.read_candles_data(1, 1740787200000, 1740787260000)
        await a.storage(True).write_storage_data([{"id": "r1"}])
        await a.storage(True).read_storage_data()
        await a.notification(True).write_notification_data([{"id": "n1"}])
        await a.notification(True).read_notification_data()
        await a.log().write_log_data([{"id": "l1"}])
        await a.log().read_log_data()
        signal = a.signal("BTCUSDT", "s", "binance")
        await signal.write_signal_data({"id": "x"})
        await signal.read_signal_data()  # through the id the write cached
        measure = a.measure("b")
        await measure.write_measure_data({"v": 1}, "k", when)
        await measure.read_measure_data("k")
        [key async for key in measure.list_measure_data()]
        interval = a.interval("b")
        await interval.write_interval_data({"v": 1}, "k", when)
        await interval.read_interval_data("k")
        [key async for key in interval.list_interval_data()]
        memory = a.memory("sig", "bucket")
        await memory.write_memory_data({"v": 1}, "m", when)
        await memory.read_memory_data("m")
        [entry async for entry in memory.list_memory_data()]
    finally:
        await client.close()

    exercised = [CandleItem, StorageItem, NotificationItem, LogItem, SignalItem, MeasureItem, IntervalItem, MemoryItem]
    for model in exercised:
        # An insert carries no filter: the listener sees the filters of the other calls only.
        expected = {(tuple(sorted(c.equal)), c.ranged)
                    for c in calls(model, (("_id", 1),), cached=model not in UNCACHED) if c.name != "insert"}
        assert listener.seen[model.collection_name()] == expected, model


async def test_uncached_collections_read_by_key_never_by_id(store: Store) -> None:
    """The remedy for a sharded cached collection: its reads go by key, which mongos sends to one shard."""
    listener = Filters()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        store.settings.mongo_url, tz_aware=True, event_listeners=[listener])
    settings = dataclasses.replace(store.settings, uncached_collections=("measure-items",))
    probe = Store(settings, client, client[store.database.name], store.redis, CommandCounter())
    try:
        for adapter in (probe.adapters.measure("b"), probe.adapters.measure("b")):
            await adapter.write_measure_data({"v": 1}, "k", datetime(2026, 1, 2, tzinfo=timezone.utc))
            assert await adapter.read_measure_data("k") == {"v": 1}
        await probe.adapters.signal("S", "s", "x").write_signal_data({"id": "1"})
        await probe.adapters.signal("S", "s", "x").read_signal_data()
    finally:
        await client.close()
    assert listener.seen["measure-items"] == {(("bucket", "entryKey"), None)}
    assert (("_id",), None) in listener.seen["signal-items"]  # the others still use the cache


def test_uncached_collections_are_checked_and_read_from_the_environment() -> None:
    env = {"BACKTEST_STORE_UNCACHED": " measure-items, interval-items ,"}
    assert Settings.from_env(env).uncached_collections == ("measure-items", "interval-items")
    assert Settings.from_env({}).uncached_collections == ()
    with pytest.raises(ConfigurationError, match="uncached_collections must name collections among"):
        Settings(uncached_collections=("measures",))


# -- the CLI and the library on the test server -----------------------------------------------------------------

async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


class Server:
    def __init__(self, url: str, database: AsyncDatabase[dict[str, Any]], config: AsyncDatabase[dict[str, Any]]):
        self.url, self.database, self.config = url, database, config

    async def shard(self, fixture: str) -> None:
        """Make the stand-in config database hold `fixture` (for this test's database) and three shards."""
        await self.config["collections"].delete_many({})
        await self.config["collections"].insert_many(load(fixture, self.database.name))
        if not await self.config["shards"].count_documents({}):
            await self.config["shards"].insert_many(load("shards.json"))


@pytest.fixture
async def server(servers) -> AsyncIterator[Server]:
    name, config_name = f"scale_{uuid.uuid4().hex[:10]}", f"cfg_{uuid.uuid4().hex[:10]}"
    url = servers.mongo_db(name)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    yield Server(url, client[name], client[config_name])
    await client.drop_database(name)
    await client.drop_database(config_name)
    await client.close()


async def test_cli_plan_json_reports_the_findings_of_a_config_database(server: Server, capsys, monkeypatch) -> None:
    monkeypatch.delenv("CC_MONGO_CONNECTION_STRING", raising=False)
    await create_indexes(server.database)
    await server.shard("collections-misconfigured.json")
    cfg = server.config.name

    assert await cli("migrate", "plan", "--json", "--uri", server.url, "--config-db", cfg) == 0
    out = json.loads(capsys.readouterr().out)
    sharding = out["sharding"]
    assert out["in_sync"] is False and sharding["in_sync"] is False
    assert sharding["source"] == f"{cfg}.collections" and sharding["shards"] == 3
    kinds: dict[str, set[str]] = {}
    for finding in sharding["findings"]:
        kinds.setdefault(finding["collection"], set()).add(finding["kind"])
    assert kinds["candle-items"] == {UNIQUE_NOT_ENFORCED}
    assert kinds["signal-items"] == {UNIQUE_NOT_ENFORCED, UNTARGETED_UPSERT, SCATTER}
    assert kinds["storage-items"] == {COARSE_KEY}
    signal = next(c for c in sharding["collections"] if c["collection"] == "signal-items")
    assert signal["namespace"] == f"{server.database.name}.signal-items"
    assert signal["shard_key"] == [["_id", "hashed"]]
    assert {c["call"]: c["routing"] for c in signal["calls"]} == {
        "upsert": EVERY, "read by key": EVERY, "read by cached _id": ONE}
    # The indexes themselves are in sync: only the shard keys fail the run.
    assert all(c["action"] == "unchanged" for c in out["changes"])

    assert await cli("migrate", "check", "--uri", server.url, "--config-db", cfg) == 1
    text = capsys.readouterr().out
    assert "sharding error: candle-items: candle_context_unique" in text
    assert 'remedy: sh.reshardCollection("' in text
    assert "sharding: 7 errors" in text and "drift:" not in text

    await server.shard("collections.json")
    assert await cli("migrate", "check", "--uri", server.url, "--config-db", cfg) == 0
    text = capsys.readouterr().out
    assert "in sync" in text
    assert "sharding warning: measure-items: read by cached _id (_id =) goes to every shard" in text
    assert "6 of 17 collections sharded, 2 warnings" in text
    assert re.search(r"candle-items\s+│\s+\{exchangeName: 1, symbol: 1, interval: 1, timestamp: 1\}", text)
    assert await check(server.database, shard_config=server.config) is True

    # Stores told to read those two by key (the remedy) leave nothing to warn about.
    monkeypatch.setenv("BACKTEST_STORE_UNCACHED", "measure-items,interval-items")
    assert await cli("migrate", "plan", "--json", "--uri", server.url, "--config-db", cfg) == 0
    sharding = json.loads(capsys.readouterr().out)["sharding"]
    assert sharding["findings"] == [] and sharding["summary"] == "6 of 17 collections sharded"


async def test_library_check_fails_on_a_shard_key_that_keeps_a_unique_index_from_being_enforced(
        server: Server) -> None:
    await create_indexes(server.database)
    assert await check(server.database) is True
    await server.shard("collections-misconfigured.json")
    assert await check(server.database, shard_config=server.config) is False
    found = await read_shard_config(server.database, server.config)
    assert found is not None and found.shards == 3 and len(found.collections) == 7  # the dropped one included
    assert {f.collection for f in analyse(found, server.database.name).errors} >= {"candle-items"}


async def test_a_plain_server_reports_nothing_about_sharding(server: Server, capsys, monkeypatch) -> None:
    """SecantusDB answers `hello` as a standalone: no config database is read, nothing is said, check passes."""
    monkeypatch.delenv("CC_MONGO_CONNECTION_STRING", raising=False)
    assert await read_shard_config(server.database) is None
    assert await cli("migrate", "apply", "--yes", "--uri", server.url) == 0
    capsys.readouterr()

    assert await cli("migrate", "plan", "--json", "--uri", server.url) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sharding"] is None and out["in_sync"] is True
    assert await cli("migrate", "plan", "--uri", server.url) == 0
    assert "shard" not in capsys.readouterr().out
    assert await cli("migrate", "check", "--uri", server.url) == 0
    text = capsys.readouterr().out
    assert "in sync" in text and "shard" not in text
    assert await check(server.database) is True


async def test_through_a_mongos_the_clusters_config_database_is_read(server: Server, monkeypatch, capsys) -> None:
    """The mongos path, with `hello` answered as a mongos would and the stand-in database as `config`."""
    from backtest_store.migrations import sharding

    monkeypatch.delenv("CC_MONGO_CONNECTION_STRING", raising=False)
    monkeypatch.setattr(sharding, "is_mongos", lambda hello: True)
    monkeypatch.setattr(sharding, "CONFIG_DATABASE", server.config.name)
    await create_indexes(server.database)
    found = await read_shard_config(server.database)
    assert found is not None and found.collections == [] and found.shards == 0
    assert await cli("migrate", "plan", "--uri", server.url) == 0
    assert "sharding: none of our collections is sharded" in capsys.readouterr().out

    await server.shard("collections-misconfigured.json")
    assert await cli("migrate", "check", "--json", "--uri", server.url) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["sharding"]["source"] == f"{server.config.name}.collections" and out["in_sync"] is False


async def test_a_config_database_the_user_may_not_read_is_reported_not_raised() -> None:
    from pymongo.errors import OperationFailure

    class Refusing:
        name = "config"

        def __getitem__(self, collection: str) -> Refusing:
            return self

        def find(self, *args: Any, **kwargs: Any) -> Any:
            raise OperationFailure("not authorized on config to execute command { find: \"collections\" }", 13,
                                   {"errmsg": "not authorized on config to execute command { find: \"collections\" }",
                                    "code": 13, "ok": 0})

    class Db:
        name = "backtest-kit"

    found = await read_shard_config(Db(), Refusing())  # type: ignore[arg-type]
    assert found is not None and found.collections == []
    assert found.error.startswith("could not read config.collections: not authorized on config")
    report = analyse(found, "backtest-kit")
    assert [f.kind for f in report.findings] == [UNREADABLE] and report.errors == []
