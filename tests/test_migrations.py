"""Index migrations: plan / check / apply, as a library and as `backtest-store migrate`, against the real servers."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from backtest_store.cli import main
from backtest_store.errors import InvalidInput
from backtest_store.migrations import (
    IndexChange, MigrationRefused, apply, check, create_indexes, diff_collection, find_duplicates, operations, plan,
)
from backtest_store.models import DOCUMENTS, SignalItem, StrategyItem

SIGNAL = SignalItem.collection_name()
STRATEGY = StrategyItem.collection_name()
DECLARED = sum(len(model.declared_indexes()) for model in DOCUMENTS)
SIGNAL_KEYS = [["symbol", 1], ["strategyName", 1], ["exchangeName", 1]]


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Db:
    url: str
    database: AsyncDatabase
    commands: Commands = field(default_factory=Commands)

    async def indexes(self, collection: str) -> dict[str, dict[str, Any]]:
        cursor = await self.database[collection].list_indexes()
        return {spec["name"]: dict(spec) async for spec in cursor}


@pytest.fixture
async def db(servers) -> AsyncIterator[Db]:
    name = f"mig_{uuid.uuid4().hex[:10]}"
    url = servers.mongo_db(name)
    commands = Commands()
    client: AsyncMongoClient = AsyncMongoClient(url, event_listeners=[commands])
    yield Db(url, client[name], commands)
    await client.drop_database(name)
    await client.close()


def rows(changes: list[IndexChange], collection: str) -> dict[str, IndexChange]:
    return {c.name: c for c in changes if c.collection == collection}


# -- plan, check, apply ----------------------------------------------------------------------------------------

async def test_empty_database_plans_creates_then_apply_syncs_and_is_idempotent(db: Db) -> None:
    changes = await plan(db.database)
    assert [c.action for c in changes] == ["create"] * DECLARED
    assert rows(changes, SIGNAL)["signal_context_unique"].declared == {
        "key": SIGNAL_KEYS, "name": "signal_context_unique", "unique": True}
    assert await check(db.database) is False

    report = await apply(db.database)
    assert sorted((o.collection, o.name) for o in report.applied) == sorted((c.collection, c.name) for c in changes)
    assert {o.op for o in report.applied} == {"create"}
    assert (await db.indexes(SIGNAL))["signal_context_unique"]["unique"] is True
    assert await check(db.database) is True
    assert {c.action for c in await plan(db.database)} == {"unchanged"}

    again = await apply(db.database, prune=True, replace=True)
    assert again.changed is False and again.applied == [] and again.kept == []


async def test_create_indexes_still_matches_the_plan(db: Db) -> None:
    created = await create_indexes(db.database)
    assert created[SIGNAL] == ["signal_context_unique"]
    assert await check(db.database) is True


async def test_extra_index_is_drift_kept_without_prune_and_dropped_with_it(db: Db) -> None:
    await apply(db.database)
    await db.database[SIGNAL].create_index([("when", ASCENDING)], name="extra_when")
    extra = rows(await plan(db.database), SIGNAL)["extra_when"]
    assert (extra.action, extra.declared, extra.live["key"]) == ("drop", None, [["when", 1]])
    assert await check(db.database) is False

    kept = await apply(db.database)
    assert kept.applied == [] and [c.name for c in kept.kept] == ["extra_when"]
    assert "extra_when" in await db.indexes(SIGNAL)

    pruned = await apply(db.database, prune=True)
    assert [(o.op, o.name) for o in pruned.applied] == [("drop", "extra_when")]
    assert set(await db.indexes(SIGNAL)) == {"_id_", "signal_context_unique"}
    assert await check(db.database) is True


async def test_prune_with_hide_hides_instead_of_dropping(db: Db) -> None:
    await apply(db.database)
    await db.database[SIGNAL].create_index([("when", ASCENDING)], name="extra_when")
    with pytest.raises(InvalidInput):
        await apply(db.database, hide=True)

    db.commands.sent.clear()
    report = await apply(db.database, prune=True, hide=True)
    assert [(o.op, o.name) for o in report.applied] == [("hide", "extra_when")]
    assert "extra_when" in await db.indexes(SIGNAL)
    coll_mods = [c for c in db.commands.sent if "collMod" in c]
    assert coll_mods == [{**coll_mods[0], "collMod": SIGNAL, "index": {"name": "extra_when", "hidden": True}}]
    assert not any("dropIndexes" in c for c in db.commands.sent)


def test_a_hidden_undeclared_index_is_still_drift_but_not_hidden_twice() -> None:
    live = [{"v": 2, "key": {"_id": 1}, "name": "_id_"},
            {"v": 2, "key": {"symbol": 1, "strategyName": 1, "exchangeName": 1}, "name": "signal_context_unique",
             "unique": True},
            {"v": 2, "key": {"when": 1}, "name": "extra_when", "hidden": True}]
    changes = diff_collection(SIGNAL, SignalItem.declared_indexes(), live)
    assert [(c.name, c.action) for c in changes] == [("signal_context_unique", "unchanged"), ("extra_when", "drop")]
    assert "hidden" in changes[1].reason
    todo, kept, refused = operations(changes, prune=True, hide=True)
    assert todo == [] and kept == [] and refused == []
    assert [o.op for o in operations(changes, prune=True)[0]] == ["drop"]


async def test_same_name_with_changed_key_order_is_a_conflict_refused_without_replace(db: Db) -> None:
    await db.database[SIGNAL].create_index(
        [("exchangeName", ASCENDING), ("symbol", ASCENDING), ("strategyName", ASCENDING)],
        name="signal_context_unique", unique=True)
    conflict = rows(await plan(db.database), SIGNAL)["signal_context_unique"]
    assert conflict.action == "conflict"
    assert conflict.live["key"][0] == ["exchangeName", 1] and "key" in conflict.reason

    with pytest.raises(MigrationRefused) as refused:
        await apply(db.database)
    assert [c.name for c in refused.value.changes] == ["signal_context_unique"]
    assert "--replace" in str(refused.value)
    # Refusal comes before any write: not even the other collections' indexes were created.
    assert set(await db.indexes(STRATEGY)) <= {"_id_"}
    live_key = (await db.indexes(SIGNAL))["signal_context_unique"]["key"]
    assert list(live_key) == ["exchangeName", "symbol", "strategyName"]

    report = await apply(db.database, replace=True)
    assert ("replace", "signal_context_unique") in [(o.op, o.name) for o in report.applied]
    live_key = (await db.indexes(SIGNAL))["signal_context_unique"]["key"]
    assert list(live_key) == ["symbol", "strategyName", "exchangeName"]
    assert await check(db.database) is True


async def test_direction_change_is_a_conflict(db: Db) -> None:
    await db.database[SIGNAL].create_index(
        [("symbol", ASCENDING), ("strategyName", DESCENDING), ("exchangeName", ASCENDING)],
        name="signal_context_unique", unique=True)
    conflict = rows(await plan(db.database), SIGNAL)["signal_context_unique"]
    assert conflict.action == "conflict" and conflict.live["key"][1] == ["strategyName", -1]


async def test_changed_options_are_a_conflict(db: Db) -> None:
    await db.database[SIGNAL].create_index(
        [("symbol", ASCENDING), ("strategyName", ASCENDING), ("exchangeName", ASCENDING)],
        name="signal_context_unique")
    conflict = rows(await plan(db.database), SIGNAL)["signal_context_unique"]
    assert conflict.action == "conflict" and "unique" in conflict.reason


async def test_same_keys_under_another_name_is_a_conflict_replaced_under_the_declared_name(db: Db) -> None:
    await db.database[SIGNAL].create_index(
        [("symbol", ASCENDING), ("strategyName", ASCENDING), ("exchangeName", ASCENDING)], name="legacy", unique=True)
    signal_rows = rows(await plan(db.database), SIGNAL)
    assert set(signal_rows) == {"signal_context_unique"}  # no separate drop row for the twin
    conflict = signal_rows["signal_context_unique"]
    assert conflict.action == "conflict" and conflict.live["name"] == "legacy" and "legacy" in conflict.reason

    await apply(db.database, replace=True)
    assert set(await db.indexes(SIGNAL)) == {"_id_", "signal_context_unique"}


def test_key_order_and_direction_matter_in_the_comparison() -> None:
    declared = [IndexModel([("a", 1), ("b", 1)], name="ab")]
    assert diff_collection("c", declared, [{"key": {"a": 1, "b": 1}, "name": "ab"}])[0].action == "unchanged"
    assert diff_collection("c", declared, [{"key": {"b": 1, "a": 1}, "name": "ab"}])[0].action == "conflict"
    assert diff_collection("c", declared, [{"key": {"a": 1, "b": -1}, "name": "ab"}])[0].action == "conflict"


def test_option_normalization_counts_as_unchanged() -> None:
    declared = [IndexModel([("a", 1), ("b", -1)], name="ab", sparse=True, unique=True)]
    live = [{"v": 2, "ns": "db.c", "background": True, "key": {"a": 1.0, "b": -1}, "name": "ab",
             "sparse": 1, "unique": 1.0}]
    assert diff_collection("c", declared, live)[0].action == "unchanged"
    plain = [IndexModel([("a", 1)], name="a")]
    assert diff_collection("c", plain, [{"key": {"a": 1}, "name": "a", "unique": False, "sparse": 0}])[0].action \
        == "unchanged"
    # ... but a real difference is not normalized away.
    assert diff_collection("c", plain, [{"key": {"a": 1}, "name": "a", "sparse": True}])[0].action == "conflict"


def test_the_id_index_is_never_reported() -> None:
    changes = diff_collection("c", [], [{"v": 2, "key": {"_id": 1}, "name": "_id_"}])
    assert changes == []


async def test_live_index_created_with_numeric_options_is_unchanged(db: Db) -> None:
    await apply(db.database)
    await db.database[SIGNAL].drop_index("signal_context_unique")
    await db.database.command({"createIndexes": SIGNAL, "indexes": [
        {"key": {"symbol": 1, "strategyName": 1, "exchangeName": 1}, "name": "signal_context_unique",
         "unique": 1, "sparse": False, "background": True}]})
    assert await check(db.database) is True


async def test_duplicate_keys_refuse_the_unique_build_and_name_the_keys(db: Db) -> None:
    key = {"symbol": "BTCUSDT", "strategyName": "s1", "exchangeName": "binance"}
    await db.database[STRATEGY].insert_many([dict(key), dict(key), dict(key), {**key, "symbol": "ETHUSDT"}])
    with pytest.raises(MigrationRefused) as refused:
        await apply(db.database)
    [dup] = refused.value.duplicates
    assert (dup.collection, dup.index, dup.key, dup.count) == (STRATEGY, "strategy_context_unique", key, 3)
    message = str(refused.value)
    assert "BTCUSDT" in message and "3 documents" in message and "remedy" in message
    assert set(await db.indexes(STRATEGY)) == {"_id_"} and set(await db.indexes(SIGNAL)) <= {"_id_"}

    keep = await db.database[STRATEGY].find_one(key)
    await db.database[STRATEGY].delete_many({**key, "_id": {"$ne": keep["_id"]}})
    await apply(db.database)
    assert await check(db.database) is True


async def test_duplicates_count_missing_fields_as_null_and_respect_sparse(db: Db) -> None:
    await db.database["dups"].insert_many([{"a": 1}, {"a": 1, "b": None}, {"c": 1}, {"c": 2}])
    spec = {"key": [["a", 1], ["b", 1]], "name": "ab", "unique": True}
    found = {tuple(d.key.values()): d.count for d in await find_duplicates(db.database, "dups", spec)}
    assert found == {(1, None): 2, (None, None): 2}
    sparse = await find_duplicates(db.database, "dups", {**spec, "sparse": True})
    assert [(d.key, d.count) for d in sparse] == [({"a": 1, "b": None}, 2)]


# -- the command line --------------------------------------------------------------------------------------------

class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def cli(*argv: str) -> int:
    # main() runs its own event loop (asyncio.run), so it needs a thread of its own here.
    return await asyncio.to_thread(main, list(argv))


async def test_cli_plan_json_check_and_apply(db: Db, capsys, monkeypatch) -> None:
    monkeypatch.delenv("CC_MONGO_CONNECTION_STRING", raising=False)
    assert await cli("migrate", "plan", "--json", "--uri", db.url) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["in_sync"] is False and out["database"] == db.database.name
    assert {c["action"] for c in out["changes"]} == {"create"} and len(out["changes"]) == DECLARED

    assert await cli("migrate", "check", "--uri", db.url) == 1
    assert "drift" in capsys.readouterr().out

    assert await cli("migrate", "apply", "--yes", "--uri", db.url) == 0
    out = capsys.readouterr().out
    assert f"created {SIGNAL}.signal_context_unique" in out and f"{DECLARED} change(s) applied" in out

    assert await cli("migrate", "check", "--uri", db.url) == 0
    assert "in sync" in capsys.readouterr().out
    assert await cli("migrate", "plan", "--uri", db.url) == 0
    out = capsys.readouterr().out
    assert "signal_context_unique" in out and "unchanged" in out and "create" not in out

    assert await cli("migrate", "apply", "--yes", "--uri", db.url) == 0
    assert "nothing to do" in capsys.readouterr().out


async def test_cli_reads_the_uri_from_the_environment_and_requires_one(db: Db, capsys, monkeypatch) -> None:
    monkeypatch.delenv("CC_MONGO_CONNECTION_STRING", raising=False)
    assert await cli("migrate", "check") == 2
    assert "--uri" in capsys.readouterr().err
    monkeypatch.setenv("CC_MONGO_CONNECTION_STRING", db.url)
    assert await cli("migrate", "check", "--json") == 1
    assert json.loads(capsys.readouterr().out)["database"] == db.database.name


async def test_cli_apply_refuses_without_yes_when_stdin_is_not_a_tty(db: Db, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert await cli("migrate", "apply", "--uri", db.url) == 2
    assert "--yes" in capsys.readouterr().err
    assert await check(db.database) is False and set(await db.indexes(SIGNAL)) <= {"_id_"}


async def test_cli_apply_asks_on_a_tty(db: Db, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    assert await cli("migrate", "apply", "--uri", db.url) == 1
    assert "[y/N]" in capsys.readouterr().out
    assert await check(db.database) is False

    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    assert await cli("migrate", "apply", "--uri", db.url) == 0
    assert await check(db.database) is True


async def test_cli_apply_prune_and_replace(db: Db, capsys) -> None:
    await db.database[SIGNAL].create_index([("when", ASCENDING)], name="extra_when")
    await db.database[STRATEGY].create_index([("symbol", ASCENDING)], name="strategy_context_unique")
    assert await cli("migrate", "apply", "--yes", "--uri", db.url) == 2
    err = capsys.readouterr().err
    assert "strategy_context_unique" in err and "--replace" in err

    assert await cli("migrate", "apply", "--yes", "--replace", "--uri", db.url) == 0
    out = capsys.readouterr().out
    assert f"replaced {STRATEGY}.strategy_context_unique" in out and f"kept {SIGNAL}.extra_when" in out
    assert await cli("migrate", "check", "--uri", db.url) == 1
    capsys.readouterr()

    assert await cli("migrate", "apply", "--yes", "--prune", "--json", "--uri", db.url) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(a["op"], a["name"]) for a in report["applied"]] == [("drop", "extra_when")]
    assert await cli("migrate", "check", "--uri", db.url) == 0


async def test_cli_apply_prints_duplicate_keys(db: Db, capsys) -> None:
    key = {"symbol": "DUPUSDT", "strategyName": "s1", "exchangeName": "binance"}
    await db.database[STRATEGY].insert_many([dict(key), dict(key)])
    assert await cli("migrate", "apply", "--yes", "--uri", db.url) == 2
    err = capsys.readouterr().err
    assert "DUPUSDT" in err and "2 documents" in err and "remedy" in err


async def test_cli_never_prints_the_password(db: Db, capsys) -> None:
    secret = "s3cr3t-Pa55"
    url = db.url.replace("mongodb://", f"mongodb://operator:{secret}@", 1)
    assert url != db.url
    for argv in (("plan",), ("check", "--json"), ("apply", "--yes")):
        assert await cli("migrate", *argv, "--timeout", "2", "--uri", url) == 2
        captured = capsys.readouterr()
        assert secret not in captured.out + captured.err
        assert "operator:***@" in captured.err
