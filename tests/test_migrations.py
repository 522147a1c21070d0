"""Index migrations: plan / check / apply, as a library and as `backtest-store migrate`, against the real servers."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from rich.console import Console

from backtest_store import Store
from backtest_store.cli import main
from backtest_store.cli.connect import warn_missing_indexes
from backtest_store.errors import InvalidInput, StorageError
from backtest_store.migrations import (
    IndexChange,
    MigrationRefused,
    apply,
    check,
    create_indexes,
    diff_collection,
    drift,
    find_duplicates,
    legacy_documents,
    operations,
    plan,
)
from backtest_store.contracts import DOCUMENTS
from backtest_store.models import SignalItem, StrategyItem
from tests.realdata import (
    VARIANTS,
    load_ts_original,
    ts_original_documents,
    ts_original_indexes,
)

SIGNAL = SignalItem.collection_name()
STRATEGY = StrategyItem.collection_name()
DECLARED = sum(len(model.declared_indexes()) for model in DOCUMENTS)
SIGNAL_KEYS = [["symbol", 1], ["strategyName", 1], ["exchangeName", 1]]
WHEN = datetime(2026, 1, 2, tzinfo=timezone.utc)


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


async def test_extra_index_is_foreign_kept_without_prune_and_dropped_with_it(db: Db) -> None:
    await apply(db.database)
    await db.database[SIGNAL].create_index([("when", ASCENDING)], name="extra_when")
    extra = rows(await plan(db.database), SIGNAL)["extra_when"]
    assert (extra.action, extra.declared, extra.live["key"]) == ("foreign", None, [["when", 1]])
    # Someone else's index blocks none of our writes: not drift, unless asked for.
    assert await check(db.database) is True
    assert await check(db.database, strict=True) is False

    kept = await apply(db.database)
    assert kept.applied == [] and [c.name for c in kept.kept] == ["extra_when"]
    assert "extra_when" in await db.indexes(SIGNAL)

    pruned = await apply(db.database, prune=True)
    assert [(o.op, o.name) for o in pruned.applied] == [("drop", "extra_when")]
    assert set(await db.indexes(SIGNAL)) == {"_id_", "signal_context_unique"}
    assert await check(db.database, strict=True) is True


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


def test_a_hidden_foreign_index_is_still_listed_but_not_hidden_twice() -> None:
    live = [{"v": 2, "key": {"_id": 1}, "name": "_id_"},
            {"v": 2, "key": {"symbol": 1, "strategyName": 1, "exchangeName": 1}, "name": "signal_context_unique",
             "unique": True},
            {"v": 2, "key": {"when": 1}, "name": "extra_when", "hidden": True}]
    changes = diff_collection(SIGNAL, SignalItem.declared_indexes(), live)
    assert [(c.name, c.action) for c in changes] == [("signal_context_unique", "unchanged"), ("extra_when", "foreign")]
    assert "hidden" in changes[1].reason
    todo, kept, refused = operations(changes, prune=True, hide=True)
    assert todo == [] and kept == [] and refused == []
    assert [o.op for o in operations(changes, prune=True)[0]] == ["drop"]


def test_a_foreign_ttl_index_says_that_it_deletes_documents() -> None:
    live = [{"v": 2, "key": {"createDate": 1}, "name": "createDate_1", "expireAfterSeconds": 86400}]
    [change] = diff_collection(SIGNAL, [], live)
    assert change.action == "foreign" and "deletes documents after 86400 s" in change.reason


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
    assert "replace=True" in str(refused.value)  # the library names its argument; the CLI its option
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


async def test_same_keys_and_options_under_another_name_is_adopted(db: Db) -> None:
    await db.database[SIGNAL].create_index(
        [("symbol", ASCENDING), ("strategyName", ASCENDING), ("exchangeName", ASCENDING)], name="legacy", unique=True)
    signal_rows = rows(await plan(db.database), SIGNAL)
    assert set(signal_rows) == {"signal_context_unique"}  # no separate row for the twin
    adopted = signal_rows["signal_context_unique"]
    assert (adopted.action, adopted.live_name, adopted.adopted, adopted.drift) == ("unchanged", "legacy", True, False)

    await apply(db.database, prune=True, replace=True)
    assert set(await db.indexes(SIGNAL)) == {"_id_", "legacy"}


async def test_same_keys_under_another_name_with_other_options_is_a_conflict_replaced_under_the_declared_name(
        db: Db) -> None:
    await db.database[SIGNAL].create_index(
        [("symbol", ASCENDING), ("strategyName", ASCENDING), ("exchangeName", ASCENDING)], name="legacy")
    signal_rows = rows(await plan(db.database), SIGNAL)
    assert set(signal_rows) == {"signal_context_unique"}  # no separate row for the twin
    conflict = signal_rows["signal_context_unique"]
    assert conflict.action == "conflict" and conflict.live_name == "legacy" and "unique" in conflict.reason

    await apply(db.database, replace=True)
    assert set(await db.indexes(SIGNAL)) == {"_id_", "signal_context_unique"}


async def test_a_hidden_twin_under_another_name_is_unhidden_not_rebuilt(db: Db) -> None:
    await db.database[SIGNAL].create_index(
        [("symbol", ASCENDING), ("strategyName", ASCENDING), ("exchangeName", ASCENDING)], name="legacy",
        unique=True, hidden=True)
    db.commands.sent.clear()
    report = await apply(db.database, replace=True)
    assert [(o.op, o.name) for o in report.applied if o.collection == SIGNAL] == [("unhide", "signal_context_unique")]
    assert {"name": "legacy", "hidden": False} in [c["index"] for c in db.commands.sent if "collMod" in c]
    assert not any("dropIndexes" in c for c in db.commands.sent)


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
    assert f"created {SIGNAL}.signal_context_unique" in out and f"{DECLARED} changes applied" in out

    assert await cli("migrate", "check", "--uri", db.url) == 0
    assert "in sync" in capsys.readouterr().out
    assert await cli("migrate", "plan", "--uri", db.url) == 0
    out = capsys.readouterr().out
    assert "signal_context_unique" in out and "unchanged" in out and "create" not in out

    assert await cli("migrate", "apply", "--yes", "--uri", db.url) == 0
    assert "nothing to do" in capsys.readouterr().out


async def test_cli_reads_the_uri_from_the_environment_else_uses_the_embedded_servers(
        db: Db, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("CC_MONGO_CONNECTION_STRING", raising=False)
    # Nothing configured: the embedded servers of --data-dir (started for the command: a fresh, empty database).
    assert await cli("migrate", "check", "--data-dir", str(tmp_path / "data")) == 1
    assert "embedded, data in" in capsys.readouterr().out
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
    assert f"replaced {STRATEGY}.strategy_context_unique" in out and "kept 1 foreign index (" in out
    assert await cli("migrate", "check", "--strict", "--uri", db.url) == 1
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


# -- adopting a database the TypeScript original wrote (tests/fixtures/ts-original-db) ----------------------------

CANDLE, SESSION, RISK, MEASURE = "candle-items", "session-items", "risk-items", "measure-items"
CANDLE_LEGACY, SESSION_LEGACY = "symbol_1_interval_1_timestamp_1", "strategyName_1_exchangeName_1_frameName_1"
DICTIONARY = "dictionary-items"
# Declared indexes the original has no equivalent for: everything else is adopted under mongoose's name. The
# fixture is @backtest-kit/mongo 19.5's database: Dictionary (backtest-kit 20) has no collection there yet.
NEW_IN_20 = {(DICTIONARY, "dictionary_context_unique"), (DICTIONARY, "dictionary_when")}
MISSING = {"current": {(CANDLE, "candle_context_unique"), (MEASURE, "measure_when"), *NEW_IN_20},
           "legacy-session": {(CANDLE, "candle_context_unique"), (MEASURE, "measure_when"),
                              (SESSION, "session_context_unique"), *NEW_IN_20}}
BLOCKING = {"current": {(CANDLE, CANDLE_LEGACY)},
            "legacy-session": {(CANDLE, CANDLE_LEGACY), (SESSION, SESSION_LEGACY)}}


def by_action(changes: list[IndexChange], action: str) -> set[tuple[str, str]]:
    return {(c.collection, c.name) for c in changes if c.action == action}


async def original_ids(database: AsyncDatabase) -> dict[str, set[Any]]:
    return {name: {doc["_id"] async for doc in database[name].find({}, {"_id": 1})}
            for name in ts_original_documents("current")}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_originals_listindexes_answer_is_adopted_without_io(variant: str) -> None:
    """Straight from the original's `listIndexes` (with its `v` and `background`): nothing to rebuild."""
    live = ts_original_indexes(variant)
    changes = [c for model in DOCUMENTS
               for c in diff_collection(model.collection_name(), model.declared_indexes(),
                                        live.get(model.collection_name(), []))]
    assert by_action(changes, "conflict") == set()
    assert by_action(changes, "create") == MISSING[variant]
    assert by_action(changes, "blocking") == BLOCKING[variant]
    signal = rows(changes, SIGNAL)["signal_context_unique"]
    assert (signal.action, signal.live_name, signal.adopted) == (
        "unchanged", "symbol_1_strategyName_1_exchangeName_1", True)
    # Our single-field `when` indexes are mongoose's `when_1`.
    risk_when = rows(changes, RISK)["risk_when"]
    assert (risk_when.action, risk_when.live_name) == ("unchanged", "when_1")
    foreign = rows(changes, SIGNAL)["symbol_1"]
    assert (foreign.action, foreign.declared, foreign.drift) == ("foreign", None, False)


async def test_plan_on_the_originals_database_adopts_its_indexes(db: Db) -> None:
    await load_ts_original(db.database, "current")
    changes = await plan(db.database)
    assert by_action(changes, "conflict") == set()
    assert by_action(changes, "create") == MISSING["current"]
    assert by_action(changes, "blocking") == BLOCKING["current"]
    adopted = {(c.collection, c.name): c.live_name for c in changes if c.action == "unchanged"}
    assert adopted[(SESSION, "session_context_unique")] == \
        "strategyName_1_exchangeName_1_frameName_1_symbol_1_backtest_1"
    assert adopted[(SESSION, "session_when")] == "when_1"
    assert len(adopted) == DECLARED - len(MISSING["current"])
    # Every mongoose single-field index is foreign, and foreign is not drift.
    assert all(c.live["key"][0][0] != "_id" and len(c.live["key"]) == 1 for c in changes if c.action == "foreign")
    assert {c.action for c in drift(changes)} == {"create", "blocking"}


async def test_apply_never_drops_or_rebuilds_an_adopted_index(db: Db) -> None:
    await load_ts_original(db.database, "current")
    db.commands.sent.clear()
    await apply(db.database, prune=True, replace=True, replace_blocking=True)
    dropped = {c["index"] for c in db.commands.sent if "dropIndexes" in c}
    created = {ix["name"] for c in db.commands.sent if "createIndexes" in c for ix in c["indexes"]}
    assert created == {name for _, name in MISSING["current"]}
    assert "symbol_1_strategyName_1_exchangeName_1" not in dropped and "when_1" not in dropped
    assert "symbol_1_strategyName_1_exchangeName_1" in await db.indexes(SIGNAL)
    assert await check(db.database, strict=True) is True


async def test_create_indexes_skips_adopted_indexes(db: Db) -> None:
    # Store.create_indexes (the embedded default, tests) on an adopted database: MongoDB refuses the same index
    # under a second name (code 85).
    await load_ts_original(db.database, "current")
    await apply(db.database, replace_blocking=True)
    before = {name: await db.indexes(name) for name in (SIGNAL, RISK, CANDLE)}
    created = await create_indexes(db.database)
    assert created[SIGNAL] == [] and created[CANDLE] == ["candle_context_unique"]
    assert {name: await db.indexes(name) for name in before} == before


async def test_legacy_unique_indexes_are_blocking_and_say_what_they_block(db: Db) -> None:
    await load_ts_original(db.database, "legacy-session")
    changes = await plan(db.database)
    candle = rows(changes, CANDLE)[CANDLE_LEGACY]
    assert (candle.action, candle.replaced_by, candle.drift) == ("blocking", "candle_context_unique", True)
    assert "same symbol/interval/timestamp" in candle.reason and "another exchangeName" in candle.reason
    session = rows(changes, SESSION)[SESSION_LEGACY]
    assert (session.action, session.replaced_by) == ("blocking", "session_context_unique")
    assert "another symbol or backtest" in session.reason
    assert await check(db.database) is False


async def test_apply_without_the_flag_creates_what_is_safe_and_refuses_the_blocking_indexes(db: Db) -> None:
    await load_ts_original(db.database, "legacy-session")
    report = await apply(db.database, prune=True)
    assert {(o.collection, o.name) for o in report.applied if o.op == "create"} == MISSING["legacy-session"]
    assert {(c.collection, c.name) for c in report.blocking} == BLOCKING["legacy-session"]
    assert not any(o.name in (CANDLE_LEGACY, SESSION_LEGACY) for o in report.applied)
    assert CANDLE_LEGACY in await db.indexes(CANDLE) and SESSION_LEGACY in await db.indexes(SESSION)
    assert await check(db.database) is False
    assert {c.action for c in drift(await plan(db.database))} == {"blocking"}


async def test_replace_blocking_builds_our_unique_index_before_dropping_the_blocking_one(db: Db) -> None:
    await load_ts_original(db.database, "legacy-session")
    db.commands.sent.clear()
    report = await apply(db.database, replace_blocking=True, prune=True, hide=True)
    # Dropped even under --hide: a hidden unique index still enforces its constraint.
    assert {(o.collection, o.name) for o in report.applied if o.op == "drop"} == BLOCKING["legacy-session"]
    assert {o.op for o in report.applied if o.change.action == "foreign"} == {"hide"}
    sent = [c for c in db.commands.sent if {"aggregate", "createIndexes", "dropIndexes"} & set(c)]

    def position(command: str, collection: str) -> int:
        return next(i for i, c in enumerate(sent) if c.get(command) == collection)

    for collection in (CANDLE, SESSION):
        # The duplicate-key check, then our unique index, and only then the drop: uniqueness never lapses.
        assert position("aggregate", collection) < position("createIndexes", collection) \
            < position("dropIndexes", collection)
    assert set(await db.indexes(CANDLE)) >= {"candle_context_unique"} and CANDLE_LEGACY not in await db.indexes(CANDLE)
    assert await check(db.database) is True
    assert (await apply(db.database, replace_blocking=True)).applied == []


async def test_replace_blocking_refuses_on_duplicates_of_our_key_and_writes_nothing(db: Db) -> None:
    # A legacy unique index that does not imply ours (here: partial) lets duplicates of our key in.
    await load_ts_original(db.database, "current", indexes=False)
    await db.database[CANDLE].create_index([("symbol", 1), ("interval", 1), ("timestamp", 1)], name=CANDLE_LEGACY,
                                           unique=True, partialFilterExpression={"interval": "1m"})
    twin = {"symbol": "BTCUSDT", "interval": "5m", "timestamp": 1767225600000, "exchangeName": "ccxt_binance",
            "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}
    await db.database[CANDLE].insert_many([dict(twin), dict(twin)])
    assert rows(await plan(db.database), CANDLE)[CANDLE_LEGACY].action == "blocking"
    with pytest.raises(MigrationRefused) as refused:
        await apply(db.database, replace_blocking=True)
    [dup] = refused.value.duplicates
    assert (dup.index, dup.count, dup.key["interval"]) == ("candle_context_unique", 2, "5m")
    assert set(await db.indexes(CANDLE)) == {"_id_", CANDLE_LEGACY}


@pytest.mark.parametrize("variant", VARIANTS)
async def test_after_apply_our_adapters_write_beside_every_original_document(db: Db, servers, variant: str) -> None:
    counts = await load_ts_original(db.database, variant)
    before = await original_ids(db.database)
    original = (await db.database[CANDLE].find_one({}, sort=[("timestamp", 1)]))
    candle = {"timestamp": int(original["timestamp"]), "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5,
              "volume": 3.0}
    store = await Store.open(mongo_url=db.url, redis_url=servers.redis, cache_prefix=f"mig_{uuid.uuid4().hex[:10]}")
    try:
        other_exchange = store.adapters.candle(original["symbol"], original["interval"], "binance")
        with pytest.raises(StorageError):  # the original's unique index ignores the exchange
            await other_exchange.write_candles_data([candle])

        assert await cli("migrate", "apply", "--yes", "--replace-blocking", "--uri", db.url) == 0
        assert await cli("migrate", "check", "--uri", db.url) == 0

        assert await other_exchange.write_candles_data([candle]) == 1
        assert await other_exchange.read_candles_data(1, candle["timestamp"], 0) == [candle]
        session = await db.database[SESSION].find_one({})
        for symbol, backtest in (("NEWUSDT", True), ("NEWUSDT", False)):
            adapter = store.adapters.session(session["strategyName"], session["exchangeName"], session["frameName"],
                                             symbol, backtest)
            await adapter.write_session_data({"id": f"{symbol}_{backtest}", "data": {}}, WHEN)
            assert (await adapter.read_session_data())["id"] == f"{symbol}_{backtest}"
        assert await store.adapters.signal("BTCUSDT", "strat-A", "ccxt-exchange").read_signal_data() is not None
    finally:
        await store.flush_cache()
        await store.close()
    after = await original_ids(db.database)
    assert all(before[name] <= after[name] for name in before)
    assert {name: len(ids) for name, ids in before.items()} == counts
    assert len(after[CANDLE]) == counts[CANDLE] + 1 and len(after[SESSION]) == counts[SESSION] + 2


async def test_legacy_session_documents_are_counted_and_never_block(db: Db, capsys) -> None:
    await load_ts_original(db.database, "legacy-session")
    [found] = await legacy_documents(db.database)
    assert (found.collection, found.count, found.missing) == (SESSION, 1, ("symbol", "backtest"))
    assert "invisible to the Session adapter" in found.note

    assert await cli("migrate", "plan", "--uri", db.url) == 0
    assert "1 legacy session document without symbol/backtest" in capsys.readouterr().out
    assert await cli("migrate", "apply", "--yes", "--replace-blocking", "--uri", db.url) == 0
    capsys.readouterr()
    assert await cli("migrate", "check", "--json", "--uri", db.url) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["in_sync"] is True
    assert out["legacy_documents"] == [{"collection": SESSION, "missing": ["symbol", "backtest"], "count": 1,
                                        "note": found.note}]
    assert await db.database[SESSION].count_documents({"symbol": {"$exists": False}}) == 1

    await db.database[SESSION].delete_many({"symbol": {"$exists": False}})
    assert await legacy_documents(db.database) == []


async def test_cli_plan_and_apply_on_the_originals_database(db: Db, capsys) -> None:
    await load_ts_original(db.database, "current")
    assert await cli("migrate", "plan", "--json", "--uri", db.url) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["in_sync"] is False and out["legacy_documents"] == []
    assert out["summary"] == {"create": 4, "blocking": 1, "unchanged": DECLARED - 4, "foreign": 49}
    signal = next(c for c in out["changes"] if c["name"] == "signal_context_unique")
    assert (signal["action"], signal["live_name"]) == ("unchanged", "symbol_1_strategyName_1_exchangeName_1")
    blocking = next(c for c in out["changes"] if c["action"] == "blocking")
    assert (blocking["name"], blocking["live_name"], blocking["replaced_by"]) == (
        CANDLE_LEGACY, CANDLE_LEGACY, "candle_context_unique")

    assert await cli("migrate", "plan", "--uri", db.url) == 0
    table = capsys.readouterr().out
    # The reason column folds to the terminal's width: the live name may start on the next line.
    assert "adopted as" in table and "symbol_1_strategyName_1_exchangeName_1" in table
    assert "blocking" in table and "foreign" in table

    assert await cli("migrate", "apply", "--yes", "--uri", db.url) == 2
    captured = capsys.readouterr()
    assert f"created {CANDLE}.candle_context_unique" in captured.out
    assert f"created {MEASURE}.measure_when" in captured.out
    assert CANDLE_LEGACY in captured.err and "--replace-blocking" in captured.err
    assert await cli("migrate", "apply", "--yes", "--json", "--uri", db.url) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["applied"] == [] and [c["name"] for c in report["blocking"]] == [CANDLE_LEGACY]
    assert await cli("migrate", "check", "--uri", db.url) == 1
    capsys.readouterr()

    assert await cli("migrate", "apply", "--yes", "--replace-blocking", "--uri", db.url) == 0
    assert f"dropped {CANDLE}.{CANDLE_LEGACY}" in capsys.readouterr().out
    assert await cli("migrate", "check", "--uri", db.url) == 0
    assert "in sync" in capsys.readouterr().out
    assert await cli("migrate", "check", "--strict", "--uri", db.url) == 1
    capsys.readouterr()
    assert await cli("migrate", "apply", "--yes", "--prune", "--uri", db.url) == 0
    assert await cli("migrate", "check", "--strict", "--uri", db.url) == 0
    assert "symbol_1_strategyName_1_exchangeName_1" in await db.indexes(SIGNAL)


async def test_demo_and_dump_warn_about_blocking_indexes_not_adopted_ones(db: Db, servers) -> None:
    await load_ts_original(db.database, "legacy-session")
    store = await Store.open(mongo_url=db.url, redis_url=servers.redis, cache_prefix=f"mig_{uuid.uuid4().hex[:10]}")
    try:
        out = io.StringIO()
        missing = await warn_missing_indexes(store, Console(file=out, width=300))
    finally:
        await store.close()
    assert missing == {CANDLE: ["candle_context_unique"], MEASURE: ["measure_when"],
                       SESSION: ["session_context_unique"],
                       DICTIONARY: ["dictionary_context_unique", "dictionary_when"]}
    text = out.getvalue()
    assert f"{CANDLE}.{CANDLE_LEGACY}" in text and f"{SESSION}.{SESSION_LEGACY}" in text
    assert "--replace-blocking" in text
