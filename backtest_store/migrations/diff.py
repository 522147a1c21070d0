"""Declared indexes (the Beanie Documents) against live ones (`listIndexes`): what `migrate` would change.

Our own comparison on purpose: Beanie's sorts field names, so key order and direction changes go unseen.
Keys are compared as ordered lists of `[field, direction]`; options are normalized first (booleans, numbers,
server-only fields) so that `sparse: 1` and `sparse: true` are the same index.

The index's name is not part of its identity: the TypeScript original (mongoose) created the same indexes
under names such as `symbol_1_strategyName_1_exchangeName_1`, and renaming means a rebuild, with uniqueness
off in between. So a live index with a declared index's keys and options is that index, whatever its name
(adopted). Undeclared indexes are `foreign` (left alone, not drift) unless they are unique on a key ours does
not imply: those reject documents our key tells apart, so writes fail with E11000 (`blocking`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pymongo import IndexModel

from ..drivers import Database
from ..contracts import DOCUMENTS
from ..models import Item

CREATE, CONFLICT, BLOCKING, FOREIGN, UNCHANGED = "create", "conflict", "blocking", "foreign", "unchanged"
ACTIONS = (CREATE, CONFLICT, BLOCKING, FOREIGN, UNCHANGED)
# Not drift unless asked for (`strict`): someone else's index costs writes but breaks nothing of ours.
TOLERATED = frozenset({UNCHANGED, FOREIGN})

ID_INDEX = "_id_"
# Reported by the server but not part of an index's definition.
SERVER_ONLY = frozenset({"v", "ns", "background", "dropDups", "safe"})
# Filled in by the server when the definition leaves them out; only compared when declared.
SERVER_DEFAULTED = frozenset({"textIndexVersion", "2dsphereIndexVersion"})
# Boolean options: any truthy value is True, a false one is the same as the option being absent.
BOOLEAN_OPTIONS = frozenset({"unique", "sparse", "hidden"})
NUMBER_OPTIONS = frozenset({"expireAfterSeconds", "bits", "min", "max", "bucketSize"})


@dataclass(frozen=True)
class IndexChange:
    """One index of one collection, and what `migrate apply` would do with it.

    `declared` / `live` are normalized specs: `{"key": [[field, direction], ...], "name": ..., <options>}`,
    or None when that side has no such index. `name` is the declared name, or the live one for an undeclared
    index; an adopted index keeps its live name (`live_name`). A blocking index names the declared unique index
    that takes over from it in `replaced_by`.
    """

    collection: str
    name: str
    action: str  # one of ACTIONS
    declared: dict[str, Any] | None
    live: dict[str, Any] | None
    reason: str = ""
    replaced_by: str = ""

    @property
    def drift(self) -> bool:
        return self.action not in TOLERATED

    @property
    def live_name(self) -> str | None:
        return self.live["name"] if self.live else None

    @property
    def adopted(self) -> bool:
        """Declared, and present under another name with the same keys and options."""
        return self.action == UNCHANGED and self.live_name != self.name

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "live_name": self.live_name, "adopted": self.adopted}


def _plain(value: Any) -> Any:
    """SON / nested mappings to plain dicts and tuples to lists, so specs compare and serialize simply."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _direction(value: Any) -> Any:
    # 1, 1.0 and Int64(1) are all "ascending"; strings ("text", "2dsphere", "hashed") stay as they are.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    return value


def normalize_spec(spec: Mapping[str, Any] | IndexModel) -> dict[str, Any]:
    """A declared `IndexModel` or a `listIndexes` entry as `{"key": [[f, d], ...], "name": ..., options}`."""
    if isinstance(spec, IndexModel):
        spec = spec.document
    key = spec["key"]
    pairs = list(key.items()) if isinstance(key, Mapping) else [tuple(p) for p in key]
    out: dict[str, Any] = {"key": [[str(f), _direction(d)] for f, d in pairs]}
    if spec.get("name") is not None:
        out["name"] = str(spec["name"])
    for option in sorted(spec):
        value = spec[option]
        if option in ("key", "name") or option in SERVER_ONLY:
            continue
        if option in BOOLEAN_OPTIONS:
            if value:
                out[option] = True
            continue
        if option in NUMBER_OPTIONS and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[option] = _direction(value)
            continue
        out[option] = _plain(value)
    return out


def options_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in ("key", "name")}


def compare_options(declared: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The option names whose values differ, ignoring server-filled defaults the declaration leaves out."""
    want, have = options_of(declared), options_of(live)
    differ = []
    for option in sorted(set(want) | set(have)):
        if option in SERVER_DEFAULTED and option not in want:
            continue
        a, b = want.get(option), have.get(option)
        if option == "collation" and isinstance(a, dict) and isinstance(b, dict):
            # The server expands a collation with every default; the declared fields must match.
            b = {k: v for k, v in b.items() if k in a}
        if a != b:
            differ.append(option)
    return differ


def keys_text(spec: Mapping[str, Any] | None, with_options: bool = False) -> str:
    """`{symbol: 1, interval: 1}`, and with `with_options` the options that are set (` unique`)."""
    if not spec:
        return ""
    text = "{" + ", ".join(f"{f}: {d}" for f, d in spec["key"]) + "}"
    if with_options:
        text += "".join(f" {o}" for o, v in options_of(spec).items() if v)
    return text


def _fields(spec: Mapping[str, Any]) -> list[str]:
    return [f for f, _ in spec["key"]]


def _blocked(have: Mapping[str, Any], wanted: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The declared unique index whose writes the undeclared index `have` rejects, if any.

    A unique index on a superset of our key's fields never rejects two documents our key tells apart; on
    anything else (a subset such as the original's candle key without the exchange, other fields) it does.
    A partial or sparse one still does within what it covers, and a non-simple collation can equate strings
    our key tells apart, so both count as blocking.
    """
    if not have.get("unique"):
        return None
    collation = have.get("collation")
    simple = not collation or (isinstance(collation, Mapping) and collation.get("locale") == "simple")
    for want in wanted:
        if want.get("unique") and (not simple or not set(_fields(want)) <= set(_fields(have))):
            return want
    return None


def _blocking_reason(collection: str, have: Mapping[str, Any], want: Mapping[str, Any]) -> str:
    shared = "/".join(_fields(have))
    missing = " or ".join(f for f in _fields(want) if f not in _fields(have))
    noun = collection.removesuffix("-items")
    what = (f"{noun} documents of the same {shared} with another {missing}" if missing
            else f"{noun} documents whose keys differ only in what its collation ignores")
    return f"rejects {what} (E11000); --replace-blocking builds {want['name']}, then drops this"


def diff_collection(collection: str, declared: Iterable[IndexModel | Mapping[str, Any]],
                    live: Iterable[Mapping[str, Any]]) -> list[IndexChange]:
    """Pure comparison of one collection's declared and live indexes (no I/O)."""
    wanted = [normalize_spec(d) for d in declared]
    present = [normalize_spec(x) for x in live]
    present = [x for x in present if x.get("name") != ID_INDEX]
    by_name = {x["name"]: x for x in present}
    declared_names = {w["name"] for w in wanted}
    claimed: set[str] = set()
    changes: list[IndexChange] = []

    for want in wanted:
        name = want["name"]
        have = by_name.get(name)
        if have is not None:
            claimed.add(name)
            if want["key"] != have["key"]:
                reason = f"key {keys_text(have)} on the server, {keys_text(want)} declared"
                changes.append(IndexChange(collection, name, CONFLICT, want, have, reason))
                continue
            differ = compare_options(want, have)
            if differ:
                details = ", ".join(f"{o}: {have.get(o)!r} on the server, {want.get(o)!r} declared" for o in differ)
                changes.append(IndexChange(collection, name, CONFLICT, want, have, f"options differ ({details})"))
                continue
            changes.append(IndexChange(collection, name, UNCHANGED, want, have))
            continue
        # Missing by name: the same keys under another name would make createIndexes fail (code 85/86).
        twins = [x for x in present if x["key"] == want["key"] and x["name"] not in declared_names
                 and x["name"] not in claimed]
        # An exact twin is our index under its creator's name; prefer it over one with other options.
        twin = next((x for x in twins if not compare_options(want, x)), None)
        if twin is not None:
            claimed.add(twin["name"])
            changes.append(IndexChange(collection, name, UNCHANGED, want, twin, f"adopted as {twin['name']}"))
            continue
        if twins:
            twin = twins[0]
            claimed.add(twin["name"])
            details = ", ".join(compare_options(want, twin))
            reason = (f"the same keys {keys_text(want)} exist on the server as index {twin['name']!r} "
                      f"with other options ({details})")
            changes.append(IndexChange(collection, name, CONFLICT, want, twin, reason))
            continue
        changes.append(IndexChange(collection, name, CREATE, want, None))

    for have in sorted(present, key=lambda x: x["name"]):
        if have["name"] in claimed:
            continue
        hidden = " (hidden)" if have.get("hidden") else ""
        blocked = _blocked(have, wanted)
        if blocked is not None:
            changes.append(IndexChange(collection, have["name"], BLOCKING, None, have,
                                       _blocking_reason(collection, have, blocked) + hidden, blocked["name"]))
        else:
            # Blocks no write, but a TTL index deletes documents: say so rather than call it harmless.
            ttl = have.get("expireAfterSeconds")
            expires = f"; its TTL deletes documents after {ttl} s" if ttl is not None else ""
            changes.append(IndexChange(collection, have["name"], FOREIGN, None, have,
                                       "not declared" + expires + hidden))
    return changes


async def live_indexes(database: Database, collection: str) -> list[dict[str, Any]]:
    """`listIndexes` of one collection; a collection that does not exist has none."""
    cursor = await database[collection].list_indexes()
    return [dict(spec) async for spec in cursor]


async def plan(database: Database, documents: tuple[type[Item], ...] = DOCUMENTS) -> list[IndexChange]:
    """Every declared and live index of the Documents' collections, with the action `apply` would take.

    Ordered by collection (as in `documents`), then declared indexes in declaration order, then undeclared
    ones by name. The `_id_` index never appears.
    """
    changes: list[IndexChange] = []
    for model in documents:
        name = model.collection_name()
        changes.extend(diff_collection(name, model.declared_indexes(), await live_indexes(database, name)))
    return changes


def drift(changes: Iterable[IndexChange], strict: bool = False) -> list[IndexChange]:
    """The changes that are not in sync: all but `unchanged` and `foreign` (with `strict`, `foreign` too)."""
    return [c for c in changes if c.drift or (strict and c.action == FOREIGN)]
