"""The key → `_id` cache: one redis-om HashModel per collection, plain hashes, CRUD only, under an in-process
first level (`LocalIds`, a bounded LRU per Store).

A key's `_id` never changes while its document exists, so once this process knows it, a keyed read is one MongoDB
read by `_id` and no Redis command, and a keyed write that returns the same `_id` sends nothing to Redis. Redis
stays the level shared by processes: what this process learns from MongoDB (a miss, a repaired stale entry, a new
key) is written there, with a TTL so that the shared level stays bounded (`DEFAULT_TTL_S`); an entry that has
expired or been evicted costs one fallback to the key query, which writes it again. A stale `_id` (the document was
deleted and recreated by another writer) is caught by the read (no document, or another key's), which falls back
to the key and repairs both levels.

Redis is an accelerator, never the truth: every failure here is logged, counted and swallowed, and the
caller falls back to MongoDB. No `find`, `Migrator` or `JsonModel`: Redis without modules must work.

An entry that Redis returns but that cannot be read as ours (a hash without `doc_id`, bytes that are not UTF-8,
a string or list at our key) is a stale entry, not a Redis failure: it is dropped and counted as `stale`, the
read falls back to MongoDB, which writes the entry again, and the cache stays on for every other key.
"""

from __future__ import annotations

import logging
import time
import types
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final, Literal

from aredis_om import HashModel
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from ..drivers import RedisClient
from ..faults import redis_fault
from .keys import encode_key

log = logging.getLogger("backtest_store.cache")

# Everything a broken or unreachable Redis can raise through redis-py. The cluster client's own errors (no seed
# node answers, a slot map without full coverage) are RedisClusterException, which is not a RedisError.
REDIS_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)


class Stale:
    """What `IdCache.get` returns for an entry it could not read (and has dropped)."""

    def __repr__(self) -> str:
        return "STALE"


STALE: Final = Stale()


def unreadable(exc: BaseException) -> bool:
    """True when Redis answered, but with something that is not one of our entries.

    pydantic's ValidationError (a hash without a usable `doc_id`) and UnicodeDecodeError (bytes that are not
    UTF-8) are ValueErrors; WRONGTYPE is the server saying our key holds another type.
    """
    return isinstance(exc, ValueError) or (isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE"))


class CachedId(HashModel):
    """One hash per context key; `doc_id` is the MongoDB `_id` hex string. Bound per collection below."""

    doc_id: str


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stale: int = 0
    errors: int = 0
    skipped: int = 0
    commands: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def hit_ratio(self) -> float:
        looked = self.hits + self.misses + self.stale
        return self.hits / looked if looked else 0.0


# An entry leaves Redis this long after it was last written (a new key, a miss, a repair): reads, which the first
# level mostly answers, do not refresh it, so an expired entry costs one fallback to the key query, which writes it.
DEFAULT_TTL_S = 7 * 24 * 3600
# The first level's bound, per Store, over all its collections: about 200 bytes an entry.
DEFAULT_LOCAL_ENTRIES = 10_000


class LocalIds:
    """The in-process first level: Redis key → `_id` hex string, least recently used dropped first."""

    def __init__(self, max_entries: int = DEFAULT_LOCAL_ENTRIES) -> None:
        self.max_entries = max_entries
        self._ids: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, redis_key: str) -> str | None:
        doc_id = self._ids.get(redis_key)
        if doc_id is not None:
            self._ids.move_to_end(redis_key)
        return doc_id

    def put(self, redis_key: str, doc_id: str) -> None:
        self._ids[redis_key] = doc_id
        self._ids.move_to_end(redis_key)
        if len(self._ids) > self.max_entries:
            self._ids.popitem(last=False)

    def drop(self, redis_key: str) -> None:
        self._ids.pop(redis_key, None)

    def clear(self) -> None:
        self._ids.clear()


class CacheHealth:
    """Shared by every collection's cache: after a failure, Redis is bypassed for `retry_after` seconds.

    An outage ends once a whole quiet period (`retry_after`, at least 1 s) has passed without a failure: on a cluster
    one primary can be down while the others answer, and that must log one warning, not a pair per call.
    """

    def __init__(self, retry_after: float, stats: CacheStats) -> None:
        self.retry_after = retry_after
        self.stats = stats
        self._down_until = 0.0
        self._failing = False
        self._failed_at = 0.0

    def available(self) -> bool:
        if time.monotonic() < self._down_until:
            self.stats.skipped += 1
            return False
        return True

    def failed(self, action: str, exc: BaseException) -> None:
        self.stats.errors += 1
        self._failed_at = time.monotonic()
        self._down_until = self._failed_at + self.retry_after
        # One warning per outage, not one per call.
        level = logging.DEBUG if self._failing else logging.WARNING
        self._failing = True
        log.log(level, "Redis %s failed: %s; reading and writing through MongoDB only", action, redis_fault(exc))

    def succeeded(self) -> None:
        if self._failing and time.monotonic() - self._failed_at >= max(self.retry_after, 1.0):
            log.warning("Redis is answering again; the id cache is back in use")
            self._failing = False


def bind_model(redis: RedisClient, prefix: str, collection: str) -> type[CachedId]:
    meta = type("Meta", (), {"global_key_prefix": prefix, "model_key_prefix": collection, "database": redis})
    # redis-om allows one indexed class per inheritance tree and needs `index=True` even to save().
    return types.new_class(f"CachedId[{collection}]", (CachedId,), {"index": True},
                           lambda ns: ns.update({"Meta": meta, "__module__": __name__}))


def _client(model: type[CachedId]) -> "Redis[str]":
    """The Redis client a bound model writes to (its `Meta.database`). A `RedisCluster` has the same key commands
    at run time; the type stubs describe them on `Redis` only, so that is the type given here."""
    client: Redis[str] = model.db()  # type: ignore[no-untyped-call]
    return client


class IdCache:
    """key → `_id` for one collection: the Store's `LocalIds` first, then Redis."""

    def __init__(self, redis: RedisClient, prefix: str, collection: str, key_fields: tuple[str, ...],
                 health: CacheHealth, local: LocalIds | None = None, ttl: int = DEFAULT_TTL_S) -> None:
        self.model = bind_model(redis, prefix, collection)
        self.key_fields = key_fields
        self.health = health
        self.local = LocalIds() if local is None else local
        self.ttl = ttl
        # redis-om's key layout (`make_primary_key`), its constant part built once: the first level is looked up
        # on every keyed call.
        self._key_prefix: str = self.model.make_primary_key("")

    def pk(self, key: Mapping[str, object]) -> str:
        return encode_key(self.key_fields, key)

    def redis_key(self, key: Mapping[str, object]) -> str:
        return self._key_prefix + encode_key(self.key_fields, key)

    def outcome(self, counter: Literal["hits", "misses", "stale"]) -> None:
        """How a lookup turned out once the repository checked the document: the cache keeps its own statistics."""
        setattr(self.health.stats, counter, getattr(self.health.stats, counter) + 1)

    async def get(self, key: Mapping[str, object]) -> str | Stale | None:
        """The `_id` this process knows, else Redis's (then known here too); None on a miss or while Redis is
        failing; STALE for an unreadable Redis entry (dropped).

        One `HGETALL` when this process does not know the key, read as redis-om's `HashModel.get` reads it, without
        building a model: the entry is ours when it is a hash with a string `doc_id`.
        """
        pk = self.pk(key)
        redis_key = self._key_prefix + pk
        known = self.local.get(redis_key)
        if known is not None:
            return known
        if not self.health.available():
            return None
        self.health.stats.commands += 1
        try:
            entry = await _client(self.model).hgetall(redis_key)
        except (ValueError, *REDIS_FAILURES) as exc:
            if not unreadable(exc):
                self.health.failed("read", exc)
                return None
            log.debug("stale cache entry %s dropped: %s", redis_key, exc)
            await self._drop(pk)
            return STALE
        self.health.succeeded()
        if not entry:
            return None
        doc_id = entry.get("doc_id")
        if type(doc_id) is not str:
            log.debug("stale cache entry %s dropped: no doc_id", redis_key)
            await self._drop(pk)
            return STALE
        self.local.put(redis_key, doc_id)
        return doc_id

    async def set(self, key: Mapping[str, object], doc_id: object) -> None:
        """Nothing when this process knows the mapping already; else one `HSET` of the hash redis-om's
        `HashModel.save()` writes (`pk` and `doc_id`) and its `EXPIRE`, in one round trip.

        `save()` itself would re-validate the model and, on servers reporting Redis 7.4 or newer, send an `HTTL`
        before the `HSET` (and an `INFO` once per client): two or three round trips where one is enough.
        """
        pk = self.pk(key)
        redis_key = self._key_prefix + pk
        value = str(doc_id)
        if self.local.get(redis_key) == value:
            return
        # What MongoDB returned is the truth for this process, whether or not Redis takes it.
        self.local.put(redis_key, value)
        if not self.health.available():
            return
        mapping: dict[str | bytes, bytes | float | int | str] = {"pk": pk, "doc_id": value}
        try:
            await self._write(redis_key, mapping)
        except REDIS_FAILURES as exc:
            if not unreadable(exc):
                self.health.failed("write", exc)
                return
            # HSET cannot overwrite a key of another type: the stale entry goes first.
            self.health.stats.stale += 1
            if not await self._drop(pk):
                return
            try:
                await self._write(redis_key, mapping)
            except REDIS_FAILURES as exc:
                self.health.failed("write", exc)
                return
        self.health.succeeded()

    async def _write(self, redis_key: str, mapping: dict[str | bytes, bytes | float | int | str]) -> None:
        client = _client(self.model)
        if not self.ttl:
            self.health.stats.commands += 1
            await client.hset(redis_key, mapping=mapping)
            return
        self.health.stats.commands += 2
        pipe = client.pipeline(transaction=False)
        pipe.hset(redis_key, mapping=mapping)
        pipe.expire(redis_key, self.ttl)
        # The server's own error, not redis-py's annotated copy ("Command # 1 (HSET <key> ...) of pipeline caused
        # error: ..."), which would hide a WRONGTYPE from `unreadable` and quote the entry in the log.
        for answer in await pipe.execute(raise_on_error=False):
            if isinstance(answer, BaseException):
                raise answer

    async def forget(self, key: Mapping[str, object]) -> None:
        """Drop the entry of a key MongoDB does not hold, so that it stops costing a read by `_id`."""
        pk = self.pk(key)
        self.local.drop(self._key_prefix + pk)
        if self.health.available():
            await self._drop(pk)

    async def _drop(self, pk: str) -> bool:
        self.local.drop(self._key_prefix + pk)
        self.health.stats.commands += 1
        try:
            await self.model.delete(pk)
        except REDIS_FAILURES as exc:
            self.health.failed("delete", exc)
            return False
        self.health.succeeded()
        return True


async def flush_prefix(redis: RedisClient, prefix: str, batch: int = 500) -> int:
    """Delete our keys only, by SCAN: never FLUSHDB, which would take other tenants' keys with it."""
    if isinstance(redis, RedisCluster):
        return await flush_cluster_prefix(redis, prefix, batch)
    deleted = 0
    chunk: list[str] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=batch):
        chunk.append(key)
        if len(chunk) >= batch:
            deleted += await redis.unlink(*chunk)
            chunk.clear()
    if chunk:
        deleted += await redis.unlink(*chunk)
    return deleted


async def flush_cluster_prefix(redis: RedisCluster[str], prefix: str, batch: int = 500) -> int:
    """`flush_prefix` on a cluster: SCAN each primary (a key lives only on the primary owning its slot), then UNLINK
    what it found grouped by slot, never one command across slots.

    A primary that fails does not stop the others from being flushed; its failure is raised at the end.
    """
    await redis.initialize()  # the slot map; a no-op once loaded
    deleted = 0
    failed: BaseException | None = None
    for node in redis.get_primaries():
        try:
            deleted += await _flush_node(redis, node.name, prefix, batch)
        except REDIS_FAILURES as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    return deleted


async def _flush_node(redis: RedisCluster[str], name: str, prefix: str, batch: int) -> int:
    deleted, cursor = 0, 0
    while True:
        node = redis.get_node(node_name=name)  # looked up again: a reloaded slot map replaces the node objects
        if node is None:
            return deleted  # no longer in the cluster
        # SCAN's reply through the cluster client: ({node name: next cursor}, keys).
        cursors, keys = await redis.execute_command("SCAN", cursor, "MATCH", f"{prefix}:*", "COUNT", batch,
                                                    target_nodes=node)
        if keys:
            by_slot: dict[int, list[str]] = {}
            for key in keys:
                by_slot.setdefault(redis.keyslot(key), []).append(key)
            pipe = redis.pipeline(transaction=False)  # one UNLINK per slot, sent together to the slots' primaries
            for slot_keys in by_slot.values():
                pipe.execute_command("UNLINK", *slot_keys)
            deleted += sum(await pipe.execute())
        cursor = cursors[name]
        if not cursor:
            return deleted
