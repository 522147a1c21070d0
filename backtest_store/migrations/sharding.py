"""Shard keys against our keys: what `migrate plan|check` report about a sharded cluster.

On a sharded cluster the shard key of every sharded collection is in the config database: `config.collections`
holds one document per collection, `_id` the namespace (`<database>.<collection>`), `key` the shard key pattern
(`{field: 1}` ranged, `{field: "hashed"}` hashed), `unique`, and the cluster's own bookkeeping (`lastmodEpoch`,
`lastmod`, `timestamp`, `uuid`, `noBalance`, ...; MongoDB's "Config Database" reference). MongoDB 8.0 also lists
collections it only tracks there, with `unsplittable: true` and the key `{_id: 1}`: they are not sharded.
MongoDB up to 4.4 kept dropped collections there with `dropped: true`. Only a mongos has that database: on a
replica set or a standalone there are no shard keys, and nothing here reports or fails.

What a shard key means for our calls (docs/scale-out.md has the why and the costs):

- **Unique indexes.** A sharded cluster enforces a unique index only when the shard key is a prefix of it, and
  never under a hashed shard key. Otherwise MongoDB refuses to build our context index, and two writers could
  store one key twice. An error: `check` fails.
- **Keyed calls.** Every keyed write is an upsert whose filter is the whole context key, by equality (and so is
  every read by key). It goes to one shard when every shard-key field is in that filter; otherwise an upsert fails
  before MongoDB 7.1, and from 7.1 one the server accepts first queries every shard. An error too.
- **Reads through the Redis id cache** are `find_one({_id})`: on a collection not sharded on `_id` they go to every
  shard, where a read by key would go to one. A warning, as is any other call that goes to every shard although
  its filter could have been targeted, and a shard key with only a few distinct values (`backtest`, `interval`,
  `exchangeName`), whose chunks cannot split.

`read_shard_config` is the one function here that does I/O; everything else works on the documents it returns.

A little over the usual length on purpose: the call table of the adapters (derived from the contract registry) and
the checks that read it belong together, so that a new call cannot be added without its routing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import OperationFailure

from ..drivers import Database
from ..contracts import CONTRACTS, DOCUMENTS
from ..models import Item
from ..wording import plural
from .diff import normalize_spec

ERROR, WARNING = "error", "warning"
# What a finding is about.
UNIQUE_NOT_ENFORCED = "unique-not-enforced"
UNTARGETED_UPSERT = "untargeted-upsert"
SCATTER = "scatter"
COARSE_KEY = "coarse-key"
UNREADABLE = "unreadable"

# Where mongos sends a call.
ONE, SOME, EVERY = "one shard", "some shards", "every shard"
HASHED = "hashed"

# Read in place of `config` by the tests, or by an operator checking keys before sharding with them.
CONFIG_DATABASE = "config"

# Derived from the registry (backtest_store/contracts.py). The documents the adapters never read by key, and so
# never through the Redis id cache (`store.UNCACHED`).
KEYLESS: frozenset[type[Item]] = frozenset(c.model for c in CONTRACTS if not c.cached)
# Written with inserts (first write wins), not upserts.
INSERT_ONLY: frozenset[type[Item]] = frozenset(c.model for c in CONTRACTS if c.insert_only)

# The adapters' reads besides those by key (backtest_store/adapters): name, equality fields, range field.
LIST_READS: dict[type[Item], tuple[str, tuple[str, ...], str | None]] = {
    c.model: c.list_read for c in CONTRACTS if c.list_read is not None}

# The shard keys docs/scale-out.md recommends: each the collection's whole context key, ranged, so that the unique
# index is the shard key's own. None: keep the collection unsharded (it stays small).
RECOMMENDED: dict[type[Item], tuple[str, ...] | None] = {c.model: c.shard_key for c in CONTRACTS}

# Fields with few distinct values: a shard key of these alone cannot split its chunks below one value.
FEW_VALUES = {"backtest": "2 values", "interval": "11 values", "exchangeName": "one value per exchange"}


@dataclass(frozen=True)
class ShardKey:
    """One sharded collection's entry of `config.collections`, normalized."""

    namespace: str
    key: tuple[tuple[str, Any], ...]  # ((field, 1 or "hashed"), ...)
    unique: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.key)

    @property
    def hashed(self) -> bool:
        return any(d == HASHED for _, d in self.key)

    def text(self) -> str:
        return "{" + ", ".join(f"{f}: {d}" for f, d in self.key) + "}"


@dataclass(frozen=True)
class ShardConfig:
    """What `read_shard_config` read: the raw `collections` documents, how many shards, or why it could not."""

    source: str  # "config.collections", or "<database>.collections" when read from elsewhere
    collections: list[dict[str, Any]] = field(default_factory=list)
    shards: int | None = None
    error: str = ""


@dataclass(frozen=True)
class Call:
    """One of our calls on a collection and where mongos sends it under the collection's shard key."""

    name: str
    equal: tuple[str, ...]  # the filter's equality fields
    ranged: str | None  # the field the filter bounds by a range, if any
    routing: str  # ONE, SOME or EVERY
    upsert: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"call": self.name, "equal": list(self.equal), "range": self.ranged, "routing": self.routing,
                "upsert": self.upsert}


@dataclass(frozen=True)
class Finding:
    collection: str
    kind: str
    severity: str  # ERROR fails `check`, WARNING does not
    message: str
    remedy: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "kind": self.kind, "severity": self.severity,
                "message": self.message, "remedy": self.remedy}


@dataclass(frozen=True)
class CollectionSharding:
    collection: str
    shard_key: ShardKey
    calls: list[Call]
    findings: list[Finding]

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "namespace": self.shard_key.namespace,
                "shard_key": [[f, d] for f, d in self.shard_key.key], "unique": self.shard_key.unique,
                "calls": [c.as_dict() for c in self.calls], "findings": [f.as_dict() for f in self.findings]}


@dataclass(frozen=True)
class ShardingReport:
    """The sharded collections among ours, each with its calls' routing and what is wrong with its key."""

    source: str
    collections: list[CollectionSharding]
    shards: int | None = None
    error: str = ""

    @property
    def findings(self) -> list[Finding]:
        found = [f for c in self.collections for f in c.findings]
        if self.error:
            found.insert(0, Finding("", UNREADABLE, WARNING, self.error,
                                    f"grant the user read access to {self.source.split('.')[0]} (the role `read` "
                                    f"on it), or check the shard keys by hand: docs/scale-out.md"))
        return found

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    def summary(self, declared: int = len(DOCUMENTS)) -> str:
        if self.error:
            return f"shard keys not read from {self.source}"
        errors, warnings = len(self.errors), len(self.findings) - len(self.errors)
        parts = [f"{len(self.collections)} of {declared} collections sharded"]
        parts += [plural(errors, "error")] if errors else []
        parts += [plural(warnings, "warning")] if warnings else []
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "shards": self.shards, "error": self.error, "in_sync": not self.errors,
                "summary": self.summary(), "collections": [c.as_dict() for c in self.collections],
                "findings": [f.as_dict() for f in self.findings]}


# -- pure: the config documents ------------------------------------------------------------------------------

def is_mongos(hello: Mapping[str, Any]) -> bool:
    """`hello` answered by a mongos: its `msg` is "isdbgrid" (MongoDB's `hello` reference)."""
    return hello.get("msg") == "isdbgrid"


def shard_keys(collections: Iterable[Mapping[str, Any]], database: str) -> dict[str, ShardKey]:
    """The sharded collections of `database`, by collection name, from `config.collections` documents.

    Left out: other databases' collections, dropped ones (`dropped: true`, up to MongoDB 4.4) and collections
    MongoDB 8.0 tracks without sharding them (`unsplittable: true`): those live on one shard, as an unsharded
    collection does.
    """
    prefix = f"{database}."
    found: dict[str, ShardKey] = {}
    for doc in collections:
        namespace = doc.get("_id")
        if not isinstance(namespace, str) or not namespace.startswith(prefix):
            continue
        if doc.get("dropped") or doc.get("unsplittable") or not isinstance(doc.get("key"), Mapping):
            continue
        key = tuple((f, d) for f, d in normalize_spec({"key": doc["key"]})["key"])
        found[namespace[len(prefix):]] = ShardKey(namespace, key, bool(doc.get("unique")))
    return found


def routing(key: Sequence[tuple[str, Any]], equal: Collection[str], ranged: str | None = None) -> str:
    """Where mongos sends a filter with equality on `equal` (and a range on `ranged`) under shard key `key`.

    Every shard-key field held by equality: one shard (a hashed field too). Then a ranged field (not hashed), or a
    field missing after at least one held field: the shards whose chunks overlap those bounds. A first field
    missing (or hashed and ranged): every shard.
    """
    for position, (name, direction) in enumerate(key):
        if name in equal:
            continue
        if name == ranged and direction != HASHED:
            return SOME
        return EVERY if position == 0 else SOME
    return ONE


def calls(model: type[Item], key: Sequence[tuple[str, Any]], cached: bool) -> list[Call]:
    """Our calls on `model`'s collection, each routed under `key` (backtest_store/repositories/repository.py)."""
    context = model.context_key()
    # Every keyed write (find_one_and_update, or a bulk of UpdateOne) is an upsert filtering on the whole context
    # key. Candles and log entries are first-write-wins inserts instead: a document holds its whole context key,
    # so it goes where its shard-key fields say, as an equality filter on that key would.
    if model in INSERT_ONLY:
        found = [Call("insert", context, None, routing(key, context))]
    else:
        found = [Call("upsert", context, None, routing(key, context), upsert=True)]
    if model not in KEYLESS:
        found.append(Call("read by key", context, None, routing(key, context)))
        if cached:
            found.append(Call("read by cached _id", ("_id",), None, routing(key, ("_id",))))
    if model in LIST_READS:
        name, equal, ranged = LIST_READS[model]
        found.append(Call(name, equal, ranged, routing(key, equal, ranged)))
    return found


def _prefixes(key: Sequence[str], index: Sequence[str]) -> bool:
    return len(key) <= len(index) and tuple(index[:len(key)]) == tuple(key)


def _recommended(model: type[Item], namespace: str) -> str:
    fields = RECOMMENDED.get(model)
    if fields is None:
        return (f"this collection stays small: leave it unsharded (MongoDB 8.0: sh.unshardCollection(\"{namespace}\")),"
                f" or reshard it on its context key {_pattern(model.context_key())}")
    return f"sh.reshardCollection(\"{namespace}\", {_pattern(fields)})"


def _pattern(fields: Iterable[str]) -> str:
    return "{" + ", ".join(f"{f}: 1" for f in fields) + "}"


def findings(model: type[Item], shard_key: ShardKey, routed: Sequence[Call]) -> list[Finding]:
    """What is wrong with `model`'s collection under `shard_key`: pure, from the declared indexes and our calls."""
    name, namespace = model.collection_name(), shard_key.namespace
    remedy = _recommended(model, namespace)
    found: list[Finding] = []
    for spec in (normalize_spec(index) for index in model.declared_indexes()):
        if not spec.get("unique"):
            continue
        fields = [f for f, _ in spec["key"]]
        if shard_key.hashed:
            why = "a hashed shard key enforces no unique index"
        elif not _prefixes(shard_key.fields, fields):
            why = "the shard key must be a prefix of a unique index for the cluster to enforce it"
        else:
            continue
        found.append(Finding(
            name, UNIQUE_NOT_ENFORCED, ERROR,
            f"{spec['name']} {_pattern(fields)} unique is not enforced under shard key {shard_key.text()}: {why}; "
            f"MongoDB refuses to build it (migrate apply fails), and two writers could store one key twice",
            remedy))
    for call in routed:
        if call.upsert and call.routing != ONE:
            missing = [f for f in shard_key.fields if f not in call.equal]
            found.append(Finding(
                name, UNTARGETED_UPSERT, ERROR,
                f"our upserts filter on {', '.join(call.equal)} only, not on the shard key's {', '.join(missing)}: "
                f"MongoDB before 7.1 refuses them, and from 7.1 each one it accepts first queries every shard",
                remedy))
    # Calls that need not go everywhere: a list of everything (Log's rows) always does, and says nothing.
    scattered = [c for c in routed if not c.upsert and c.routing == EVERY and (c.equal or c.ranged)]
    if scattered:
        by_id = any(c.equal == ("_id",) for c in scattered)
        found.append(Finding(
            name, SCATTER, WARNING,
            "; ".join(f"{c.name} ({_filter_text(c)}) goes to every shard" for c in scattered),
            (f"a read by key goes to one shard: open the store with uncached_collections=(\"{name}\",) "
             f"(BACKTEST_STORE_UNCACHED={name}), or keep the collection unsharded" if by_id else remedy)))
    if all(f in FEW_VALUES for f in shard_key.fields):
        values = ", ".join(f"{f}: {FEW_VALUES[f]}" for f in shard_key.fields)
        found.append(Finding(
            name, COARSE_KEY, WARNING,
            f"shard key {shard_key.text()} has few distinct values ({values}): the documents of one value can "
            f"never be split across shards, so the collection spreads over that many shards at most, and a "
            f"range past the range size (128 MB by default) cannot move (jumbo)", remedy))
    return found


def _filter_text(call: Call) -> str:
    parts = [f"{f} =" for f in call.equal] + ([f"{call.ranged} in a range"] if call.ranged else [])
    return ", ".join(parts) if parts else "no filter"


def analyse(config: ShardConfig, database: str, documents: tuple[type[Item], ...] = DOCUMENTS,
            uncached: Collection[type[Item]] = KEYLESS) -> ShardingReport:
    """The report for `database` from what `read_shard_config` read: pure, no I/O.

    `uncached`: the documents read without the Redis id cache (`store.UNCACHED`); the others' reads by cached `_id`
    are routed too.
    """
    keys = shard_keys(config.collections, database)
    sharded = []
    for model in documents:
        shard_key = keys.get(model.collection_name())
        if shard_key is None:
            continue  # unsharded: on the database's primary shard, every call goes to that one shard
        routed = calls(model, shard_key.key, cached=model not in uncached)
        sharded.append(CollectionSharding(model.collection_name(), shard_key, routed,
                                          findings(model, shard_key, routed)))
    return ShardingReport(config.source, sharded, config.shards, config.error)


# -- I/O: the one read ---------------------------------------------------------------------------------------

async def read_shard_config(database: Database, config: Database | None = None,
                            documents: tuple[type[Item], ...] = DOCUMENTS) -> ShardConfig | None:
    """The `collections` documents (and the number of `shards`) naming the documents' collections of `database`.

    From `config` when given: a copy of a cluster's config database, or the keys you mean to shard with, in the
    same shape. Otherwise from the cluster's own config database when `database` is reached through a mongos, and
    None on a replica set or a standalone (one `hello`). A config database the user may not read gives a
    `ShardConfig` whose `error` says so, rather than failing.
    """
    if config is None:
        hello = await database.client.admin.command("hello")
        if not is_mongos(hello):
            return None
        config = database.client[CONFIG_DATABASE]
    source = f"{config.name}.collections"
    namespaces = [f"{database.name}.{model.collection_name()}" for model in documents]
    try:
        cursor = config["collections"].find({"_id": {"$in": namespaces}})
        collections = [dict(doc) async for doc in cursor]
        shards = await config["shards"].count_documents({})
    except OperationFailure as exc:
        reason = str((exc.details or {}).get("errmsg") or exc).split(", full error:")[0]
        return ShardConfig(source, error=f"could not read {source}: {reason}")
    return ShardConfig(source, collections, shards)
