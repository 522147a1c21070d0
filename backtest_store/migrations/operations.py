"""`check` and `apply`: bring the live indexes in line with the declared ones.

`apply` creates what is missing; an adopted index (ours under another name) is never touched. It drops foreign
indexes only with `prune=True` (after every creation), or hides them (`collMod hidden: true`) with `hide=True`
as well. Conflicting indexes refuse the whole run unless `replace=True` (drop, then recreate). Blocking indexes
(undeclared unique ones that reject our writes) are dropped only with `replace_blocking=True`, after our unique
index is in place, so that uniqueness never lapses; without it they are left alone and reported in
`ApplyReport.blocking`, and everything else is still applied. Before building a unique index on a collection
that holds data it looks for duplicate keys with an aggregation and refuses when there are any, instead of
letting the build fail late. Nothing is written until every check has passed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymongo
from pymongo import IndexModel
from pymongo.errors import PyMongoError

from ..drivers import Database
from ..errors import InvalidInput, MigrationRefused, StorageError
from ..faults import mongo_fault
from ..contracts import DOCUMENTS
from ..models import Item
from ..wording import plural
from .diff import (
    BLOCKING,
    CONFLICT,
    CREATE,
    FOREIGN,
    ID_INDEX,
    UNCHANGED,
    IndexChange,
    compare_options,
    drift,
    keys_text,
    plan,
)
from .sharding import analyse, read_shard_config

# What apply does to one index: the verbs of `Operation.op`.
OP_CREATE, OP_DROP, OP_HIDE, OP_REPLACE, OP_UNHIDE, OP_REHIDE = "create", "drop", "hide", "replace", "unhide", "rehide"
DUPLICATES_SHOWN = 5

# An index build, and the duplicate-key check before a unique one, read the whole collection: on a large one they
# legitimately outlast the client's per-call bound (the CLI's --timeout), so each gets this one instead.
INDEX_BUILD_TIMEOUT = 3600.0



@dataclass(frozen=True)
class Duplicate:
    """A key value that more than one document holds, which a unique index would reject."""

    collection: str
    index: str
    key: dict[str, Any]
    count: int


@dataclass(frozen=True)
class Operation:
    """One write `apply` performs (or performed) for one planned change."""

    collection: str
    name: str
    op: str
    change: IndexChange

    def describe(self) -> str:
        return f"{self.op} {self.collection}.{self.name}" + (f" ({self.change.reason})" if self.change.reason else "")


@dataclass
class ApplyReport:
    """What `apply` did: every operation performed, and what it left alone on purpose."""

    plan: list[IndexChange]
    applied: list[Operation] = field(default_factory=list)
    kept: list[IndexChange] = field(default_factory=list)  # foreign indexes left in place (no prune)
    blocking: list[IndexChange] = field(default_factory=list)  # left in place (no replace_blocking): refused
    aborted: bool = False  # the confirmation said no

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "aborted": self.aborted,
            "applied": [{"collection": o.collection, "name": o.name, "op": o.op, "reason": o.change.reason,
                         "declared": o.change.declared, "live": o.change.live} for o in self.applied],
            "kept": [c.as_dict() for c in self.kept],
            "blocking": [c.as_dict() for c in self.blocking],
            "plan": [c.as_dict() for c in self.plan],
        }


Confirm = Callable[[list[Operation]], "bool | Awaitable[bool]"]


async def check(database: Database, documents: tuple[type[Item], ...] = DOCUMENTS, *,
                strict: bool = False, shard_config: Database | None = None) -> bool:
    """True when every declared index exists as declared (under any name) and no undeclared one blocks our
    writes; with `strict`, foreign indexes count as drift too (`_id_` aside).

    Through a mongos, also False when a shard key keeps a declared unique index from being enforced or our upserts
    from being targeted (`sharding.analyse`); `shard_config` reads the shard keys from that database's
    `collections` instead of the cluster's config database.
    """
    if drift(await plan(database, documents), strict=strict):
        return False
    found = await read_shard_config(database, shard_config, documents)
    return found is None or not analyse(found, database.name, documents).errors


def operations(changes: Sequence[IndexChange], *, prune: bool = False, hide: bool = False, replace: bool = False,
               replace_blocking: bool = False) -> tuple[list[Operation], list[IndexChange], list[IndexChange]]:
    """Split a plan into (operations to perform, foreign indexes kept, conflicts and blocking indexes refused).

    Creations come first, then replacements, then blocking drops, then prune drops/hides, which is the order
    `apply` runs them in: a blocking index goes only once the declared unique index taking over is in place.
    """
    declared = {(c.collection, c.name): c for c in changes if c.declared is not None}

    def takes_over(change: IndexChange) -> bool:
        successor = declared.get((change.collection, change.replaced_by))
        return successor is not None and (successor.action in (UNCHANGED, CREATE)
                                          or (successor.action == CONFLICT and replace))

    creates, replaces, retirements, removals = [], [], [], []
    kept, refused = [], []
    for change in changes:
        if change.name == ID_INDEX or (change.live or {}).get("name") == ID_INDEX:
            continue  # never dropped, hidden or rebuilt
        if change.action == CREATE:
            creates.append(Operation(change.collection, change.name, OP_CREATE, change))
        elif change.action == CONFLICT:
            if not replace:
                refused.append(change)
            elif _only_hidden_differs(change):
                op = OP_REHIDE if change.declared and change.declared.get("hidden") else OP_UNHIDE
                replaces.append(Operation(change.collection, change.name, op, change))
            else:
                replaces.append(Operation(change.collection, change.name, OP_REPLACE, change))
        elif change.action == BLOCKING:
            # Never hidden instead: a hidden unique index still enforces its constraint.
            if replace_blocking and takes_over(change):
                retirements.append(Operation(change.collection, change.name, OP_DROP, change))
            else:
                refused.append(change)
        elif change.action == FOREIGN:
            if not prune:
                kept.append(change)
            elif hide:
                # Hiding a hidden index changes nothing: idempotent.
                if not (change.live or {}).get("hidden"):
                    removals.append(Operation(change.collection, change.name, OP_HIDE, change))
            else:
                removals.append(Operation(change.collection, change.name, OP_DROP, change))
    return creates + replaces + retirements + removals, kept, refused


def _only_hidden_differs(change: IndexChange) -> bool:
    # Under another name too: unhiding an index we would adopt beats rebuilding it.
    declared, live = change.declared, change.live
    if declared is None or live is None or declared["key"] != live["key"]:
        return False
    return compare_options(declared, live) == ["hidden"]


def _index_model(spec: dict[str, Any]) -> IndexModel:
    options = {k: v for k, v in spec.items() if k not in ("key", "name")}
    return IndexModel([(f, d) for f, d in spec["key"]], name=spec["name"], **options)


async def find_duplicates(database: Database, collection: str, spec: dict[str, Any],
                          limit: int = DUPLICATES_SHOWN) -> list[Duplicate]:
    """The most frequent key values held by more than one document, as the unique index `spec` would see them.

    A missing field counts as null (as in the index); `sparse` and `partialFilterExpression` narrow the documents
    the index covers, and the index's collation is used for grouping. Array fields (multikey) are grouped by the
    whole array, so a duplicate element inside different arrays is not found here.
    """
    fields = [f for f, _ in spec["key"]]
    pipeline: list[dict[str, Any]] = []
    if spec.get("partialFilterExpression"):
        pipeline.append({"$match": spec["partialFilterExpression"]})
    if spec.get("sparse"):
        pipeline.append({"$match": {"$or": [{f: {"$exists": True}} for f in fields]}})
    pipeline += [
        {"$group": {"_id": [{"$ifNull": [f"${f}", None]} for f in fields], "count": {"$sum": 1}}},
        {"$match": {"count": {"$gt": 1}}},
        {"$sort": {"count": -1}},
        {"$limit": limit},
    ]
    options: dict[str, Any] = {}
    if spec.get("collation"):
        options["collation"] = spec["collation"]
    cursor = await database[collection].aggregate(pipeline, **options)
    return [Duplicate(collection, spec["name"], dict(zip(fields, row["_id"])), int(row["count"]))
            async for row in cursor]


async def _has_data(database: Database, collection: str) -> bool:
    return await database[collection].find_one({}, projection={"_id": 1}) is not None


def duplicates_message(duplicates: Sequence[Duplicate]) -> str:
    lines = ["duplicate keys would make these unique index builds fail:"]
    for dup in duplicates:
        key = ", ".join(f"{f}={v!r}" for f, v in dup.key.items())
        lines.append(f"  {dup.collection}.{dup.index}: {{{key}}} held by {dup.count} documents")
    lines.append("remedy: remove or merge the duplicate documents (keep one per key), then run apply again; "
                 f"at most {DUPLICATES_SHOWN} keys are shown per index")
    return "\n".join(lines)


def blocking_message(refused: Sequence[IndexChange]) -> str:
    lines = ["blocking indexes left in place (undeclared unique indexes that make our writes fail with E11000):"]
    lines += [f"  {c.collection}.{c.name} {keys_text(c.live, with_options=True)}: {c.reason}" for c in refused]
    lines.append("pass replace_blocking=True to build the declared unique index first and then drop these; "
                 "uniqueness is enforced throughout")
    return "\n".join(lines)


def conflicts_message(refused: Sequence[IndexChange]) -> str:
    lines = ["conflicting indexes (same name with other keys or options, or the same keys under another name):"]
    lines += [f"  {c.collection}.{c.name}: {c.reason}" for c in refused]
    lines.append("pass replace=True to drop and recreate them; uniqueness is not enforced in between")
    return "\n".join(lines)


async def apply(database: Database, *, prune: bool = False, hide: bool = False, replace: bool = False,
                replace_blocking: bool = False, documents: tuple[type[Item], ...] = DOCUMENTS,
                confirm: Confirm | None = None) -> ApplyReport:
    """Create missing indexes; with `prune` drop (or with `hide` hide) foreign ones; with `replace` rebuild
    conflicting ones; with `replace_blocking` drop blocking ones once our unique index is in place. Returns the
    report; running it again changes nothing.

    `confirm`, when given, is called with the operations once every check has passed and before any write; a
    false answer returns a report with `aborted=True`. Raises `MigrationRefused` (nothing written) on conflicts
    without `replace` or on duplicate keys, and `StorageError` when MongoDB fails part-way (`.report` says what
    was done by then). Blocking indexes without `replace_blocking` do not stop the rest: they are listed in
    `report.blocking`.
    """
    if hide and not prune:
        raise InvalidInput("hide only applies to pruning: pass prune=True as well")
    try:
        changes = await plan(database, documents)
    except PyMongoError as exc:
        raise StorageError(f"listing indexes failed: {mongo_fault(exc)}", mongo_fault(exc)) from None
    todo, kept, refused = operations(changes, prune=prune, hide=hide, replace=replace,
                                     replace_blocking=replace_blocking)
    conflicts = [c for c in refused if c.action == CONFLICT]
    report = ApplyReport(plan=changes, kept=kept, blocking=[c for c in refused if c.action == BLOCKING])
    if conflicts:
        raise MigrationRefused(conflicts_message(conflicts), changes=conflicts)

    duplicates: list[Duplicate] = []
    try:
        for operation in todo:
            spec = operation.change.declared
            if operation.op in (OP_CREATE, OP_REPLACE) and spec and spec.get("unique") \
                    and await _has_data(database, operation.collection):
                with pymongo.timeout(INDEX_BUILD_TIMEOUT):  # it reads the whole collection, as the build would
                    duplicates += await find_duplicates(database, operation.collection, spec)
    except PyMongoError as exc:
        raise StorageError(f"the duplicate-key check failed: {mongo_fault(exc)}", mongo_fault(exc)) from None
    if duplicates:
        raise MigrationRefused(duplicates_message(duplicates), duplicates=duplicates)

    if not todo:
        return report
    if confirm is not None:
        answer = confirm(list(todo))
        if inspect.isawaitable(answer):
            answer = await answer
        if not answer:
            report.aborted = True
            return report

    for operation in todo:
        try:
            await _perform(database, operation)
        except PyMongoError as exc:
            error = StorageError(f"{operation.op} {operation.collection}.{operation.name} failed after "
                                 f"{plural(len(report.applied), 'change')}: {mongo_fault(exc)}", mongo_fault(exc))
            error.report = report  # type: ignore[attr-defined]
            raise error from exc
        report.applied.append(operation)
    return report


async def _perform(database: Database, operation: Operation) -> None:
    with pymongo.timeout(INDEX_BUILD_TIMEOUT):
        await _perform_unbounded(database, operation)


async def _perform_unbounded(database: Database, operation: Operation) -> None:
    collection = database[operation.collection]
    change = operation.change
    if operation.op == OP_CREATE:
        await collection.create_indexes([_index_model(change.declared or {})])
    elif operation.op == OP_REPLACE:
        # The live index may carry another name (same keys): drop that one.
        await collection.drop_index((change.live or {})["name"])
        await collection.create_indexes([_index_model(change.declared or {})])
    elif operation.op in (OP_HIDE, OP_UNHIDE, OP_REHIDE):
        await database.command({"collMod": operation.collection,
                                "index": {"name": change.live_name, "hidden": operation.op != OP_UNHIDE}})
    elif operation.op == OP_DROP:
        await collection.drop_index(operation.name)
    else:  # pragma: no cover - operations() only produces the verbs above
        raise ValueError(operation.op)


__all__ = [
    "ApplyReport", "Duplicate", "MigrationRefused", "Operation", "apply", "blocking_message", "check",
    "duplicates_message",
    "find_duplicates", "operations",
]

