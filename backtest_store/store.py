"""`Store`: the one object that holds the connections, the repositories and the adapter factories."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Unpack

import pymongo
from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError as MongoConfigurationError
from pymongo.errors import PyMongoError
from redis.exceptions import RedisClusterException

from .cache import CacheHealth, CacheStats, IdCache, LocalIds, flush_prefix
from .cache.client import connect as connect_redis
from .cache.ids import REDIS_FAILURES
from .config import Settings, StoreOptions, redact, redis_url_from_env
from .contracts import CONTRACTS, DOCUMENTS, Adapters
from .counting import CommandCounter, RedisCommandCounter
from .drivers import Client, Database, RedisClient
from .errors import ConfigurationError, Fault, NotReady
from .faults import mongo_fault, redis_fault, translated, translating
from .migrations import create_indexes
from .models import Item
from .repositories import Repository

if TYPE_CHECKING:
    from .inspection import AuditReport, SchemaReport

log = logging.getLogger("backtest_store")

# Row sets are only ever listed and candles are read by range: a per-row Redis key would only cost memory, so
# these collections have no id cache (the registry's `cached=False`).
UNCACHED: frozenset[type[Item]] = frozenset(c.model for c in CONTRACTS if not c.cached)


class Store:
    def __init__(self, settings: Settings, mongo: Client, database: Database, redis: RedisClient,
                 commands: CommandCounter) -> None:
        self.settings = settings
        self.mongo = mongo
        self.database = database
        self.redis = redis
        self.cache_stats = CacheStats()
        # Both stay empty unless the store was opened with `count_commands=True` (see `counting.py`).
        self.mongo_commands = commands
        self.redis_commands = RedisCommandCounter()
        if settings.count_commands:
            self.redis_commands.attach(redis)
        self._health = CacheHealth(settings.cache_retry_after, self.cache_stats)
        # The id cache's first level, shared by this store's collections (`cache.ids`).
        self.local_ids = LocalIds(settings.cache_local_entries)
        self._repositories: dict[type[Item], Repository] = {}
        for model in DOCUMENTS:
            uncached = model in UNCACHED or model.collection_name() in settings.uncached_collections
            cache = None if uncached else IdCache(
                redis, settings.cache_prefix, model.collection_name(), model.context_key(), self._health,
                self.local_ids, settings.cache_ttl_s)
            self._repositories[model] = Repository(model, database[model.collection_name()], cache,
                                                   settings.mongo_timeout_ms / 1000)
        self.adapters = Adapters(self)
        self._ready = False
        self._ready_task: asyncio.Future[None] | None = None
        self._closed = False
        self._servers: Any = None  # the EmbeddedServers this store started (Store.local), stopped by close()

    # -- opening and closing ---------------------------------------------------------------------------------

    @classmethod
    async def open(cls, mongo_url: str | None = None, redis_url: str | None = None,
                   **options: Unpack[StoreOptions]) -> "Store":
        """Connect using explicit URLs, else `CC_MONGO_CONNECTION_STRING` / `CC_REDIS_*` from the environment, else
        the TypeScript original's defaults (`mongodb://localhost:27017/backtest-kit`, `redis://127.0.0.1:6379/0`),
        which the log then names.

        A MongoDB named (here or in the environment) with no Redis named is refused: the default Redis would be
        some local server of someone else's, and opening flushes our prefix there."""
        mongo_named = mongo_url is not None or bool(os.environ.get("CC_MONGO_CONNECTION_STRING"))
        if mongo_named and redis_url is None and redis_url_from_env(os.environ) is None:
            raise ConfigurationError(
                "a MongoDB URL is given but no Redis URL: set CC_REDIS_URL (or CC_REDIS_HOST / CC_REDIS_PORT / "
                "CC_REDIS_USER / CC_REDIS_PASSWORD), or pass redis_url=; the local default redis://127.0.0.1:6379/0 "
                "is used only when neither server is named, since opening deletes our keys there")
        settings = Settings.from_env(mongo_url=mongo_url, redis_url=redis_url, **options)
        for name, explicit, variables in (("MongoDB", mongo_url, "CC_MONGO_CONNECTION_STRING"),
                                          ("Redis", redis_url, "CC_REDIS_URL / CC_REDIS_*")):
            url = settings.mongo_url if name == "MongoDB" else settings.redis_url
            if explicit is None and url == getattr(Settings, "mongo_url" if name == "MongoDB" else "redis_url"):
                log.warning("no %s URL given or configured (%s): using the default %s", name, variables, redact(url))
        return await cls.from_settings(settings)

    @classmethod
    async def from_settings(cls, settings: Settings) -> "Store":
        commands = CommandCounter()
        # timeoutMS (client-side operation timeout) bounds each operation as a whole: server selection, connection
        # checkout, every retry and the reply. serverSelectionTimeoutMS alone left a call on a hung connection
        # waiting for the monitor to give up on the server (35 s measured against a configured 5 s).
        try:
            mongo: Client = AsyncMongoClient(
                settings.mongo_url, tz_aware=True, appname="backtest-store",
                event_listeners=[commands] if settings.count_commands else [],
                timeoutMS=settings.mongo_timeout_ms, serverSelectionTimeoutMS=settings.mongo_timeout_ms)
        except (PyMongoError, ValueError, TypeError) as exc:
            # The driver's words may quote pieces of the URL: only their redacted form is shown, with no cause.
            raise ConfigurationError(f"invalid MongoDB URL {redact(settings.mongo_url)}: "
                                     f"{redact(str(exc).split(', full error:')[0])}") from None
        try:
            database = mongo.get_default_database()
        except MongoConfigurationError:
            await mongo.close()
            raise ConfigurationError(
                f"the MongoDB URL {redact(settings.mongo_url)} names no database; append /<database>") from None
        try:
            redis = connect_redis(settings.redis_url, settings.redis_socket_timeout)  # a cluster for redis+cluster://
        except (ValueError, TypeError, RedisClusterException) as exc:
            await mongo.close()
            raise ConfigurationError(f"invalid Redis URL {redact(settings.redis_url)}: {redact(str(exc))}") from None
        store = cls(settings, mongo, database, redis, commands)
        # No MongoDB I/O here: a server that is still starting is waited for by `wait_ready`, not failed on.
        if settings.flush_cache_on_open:
            await store.flush_cache()
        return store

    @classmethod
    async def local(cls, data_dir: str | os.PathLike[str] = ".backtest-store",
                    **options: Unpack[StoreOptions]) -> "Store":
        """A ready store on the embedded servers of `data_dir`, with the indexes created.

        Servers already running there (`backtest-store serve`, a demo, another notebook) are shared; otherwise
        they are started now, for this store, and `close()` stops them.
        """
        from .embedded import servers_for

        urls, servers = await servers_for(data_dir)
        store: Store | None = None
        try:
            store = await cls.from_settings(Settings(mongo_url=urls[0], redis_url=urls[1], **options))
            store._servers = servers
            await store.wait_ready()
            await store.create_indexes()
        except BaseException:
            # The store's clients, its readiness attempt and the servers started for it, whatever failed.
            if store is not None:
                await store.close()
            elif servers is not None:
                await servers.astop()
            raise
        return store

    @classmethod
    @asynccontextmanager
    async def embedded(cls, data_dir: str | os.PathLike[str] = ".backtest-store",
                       **options: Unpack[StoreOptions]) -> AsyncIterator["Store"]:
        """`Store.local` as a context manager: the store is closed (and servers it started stopped) on exit."""
        store = await cls.local(data_dir, **options)
        try:
            yield store
        finally:
            await store.close()

    async def close(self) -> None:
        """Cancel a pending readiness attempt, close both clients and stop the servers this store started. Each step
        runs whatever the others raised; the first failure is raised at the end."""
        self._closed = True
        failures: list[BaseException] = []
        task, self._ready_task = self._ready_task, None
        if task is not None and not task.done():
            task.cancel()
            # wait, not await: the attempt's outcome no longer matters, and a cancellation of close() itself must
            # still reach its caller.
            await asyncio.wait([task])
        servers, self._servers = self._servers, None
        # redis-py 5 has aclose(); the types-redis stubs redis-om pulls in still describe 4.x, which lacked it.
        steps: list[Any] = [self.redis.aclose, self.mongo.close]  # type: ignore[union-attr]
        if servers is not None:
            steps.append(servers.astop)
        for step in steps:
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - raised below, once every step has run
                failures.append(exc)
        if failures:
            raise failures[0]

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- readiness ---------------------------------------------------------------------------------------------

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait for MongoDB (required) and Redis (optional: an outage only disables the cache).

        Concurrent callers share one attempt. Success is remembered; a failure is not, so the next call tries again.
        """
        if self._ready:
            return
        if self._closed:
            raise NotReady("the store is closed")
        if self._ready_task is None or self._ready_task.done():
            self._ready_task = asyncio.ensure_future(self._probe(timeout or self.settings.init_timeout))
        task = self._ready_task
        try:
            # shield: one caller giving up must not cancel the attempt the others are waiting on.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._closed and task.cancelled():
                raise NotReady("the store was closed while waiting for its servers") from None
            raise
        self._ready = True

    async def _probe(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        mongo_failed, redis_failed = await asyncio.gather(
            self._retry_until(deadline, self._ping_mongo, (PyMongoError,), mongo_fault),
            self._retry_until(deadline, self._ping_redis, REDIS_FAILURES, redis_fault))
        if mongo_failed is not None:
            exc, fault = mongo_failed
            where = redact(self.settings.mongo_url)
            if fault.permanent:
                raise NotReady(f"MongoDB at {where}: {fault}") from exc
            raise NotReady(f"MongoDB at {where} did not answer within {timeout:g} s: "
                           f"{type(exc).__name__}: {fault.detail or 'no answer'}") from exc
        if redis_failed is not None:
            self._health.failed("ping", redis_failed[0])

    async def bind_beanie(self) -> None:
        """Bind the Beanie Documents (`backtest_store.models`) to this store's database, for querying in notebooks
        (`await SignalItem.find_all().to_list()`).

        Beanie's binding is process-global: the last store bound wins for every Document class. That is why the
        store never binds on its own (two stores on two databases in one process would redirect each other's
        queries) and never reads or writes through Beanie: its repositories hold their own collections.
        `skip_indexes`: binding never touches indexes.
        """
        with translating("binding the Beanie Documents"):
            await init_beanie(database=self.database, document_models=list(DOCUMENTS), skip_indexes=True)

    async def _ping_mongo(self, left: float) -> None:
        # Bounded by the driver rather than cancelled from outside, so that giving up still says why (refused, …).
        with pymongo.timeout(left):
            await self.database.command("ping")

    async def _ping_redis(self, left: float) -> None:
        # execute_command: the stubs list no commands for RedisCluster (on a cluster PING goes to one node).
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can lose a cancellation (see cli/interrupt.py).
        async with asyncio.timeout(left):
            await self.redis.execute_command("PING")

    @staticmethod
    async def _retry_until(deadline: float, ping: Any, failures: tuple[type[BaseException], ...],
                           classify: Any) -> tuple[BaseException, Fault] | None:
        """None once `ping` answers; else the last failure, at the deadline or as soon as it is permanent.

        A server still starting refuses or times out for a while, so those are retried. Refused credentials are
        not, and neither is a closed port for Redis (`redis_fault` says which): waiting would only delay the
        answer. A closed MongoDB port is retried, because MongoDB is required and may be starting.
        """
        caught: tuple[type[BaseException], ...] = (asyncio.TimeoutError, *failures)
        last: tuple[BaseException, Fault] | None = None
        while (left := deadline - time.monotonic()) > 0:
            try:
                await ping(left)
                return None
            except caught as exc:
                last = (exc, classify(exc))
                if last[1].permanent:
                    return last
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if last is None:
            never = TimeoutError("no attempt")
            last = (never, classify(never))
        return last

    # -- maintenance -------------------------------------------------------------------------------------------

    @translated("creating the indexes")
    async def create_indexes(self) -> dict[str, list[str]]:
        """Create the declared indexes. For tests, the embedded default and `migrate`; never called at runtime."""
        return await create_indexes(self.database)

    async def flush_cache(self) -> int:
        """Delete this store's cached ids, in this process and in Redis (our prefix only, by SCAN). A Redis outage is
        logged, not raised."""
        self.local_ids.clear()
        try:
            deleted = await flush_prefix(self.redis, self.settings.cache_prefix)
        except REDIS_FAILURES as exc:
            self._health.failed("flush", exc)
            return 0
        self.cache_stats.commands += 1
        return deleted

    @translated("reading the schema")
    async def schema(self, collection: str | None = None) -> "SchemaReport":
        """Collections, fields, context keys, declared vs live indexes, counts and samples (for notebooks)."""
        from .inspection import schema

        return await schema(self.database, collection)

    @translated("the look-ahead audit")
    async def audit(self, when: datetime | int, collection: str | None = None, *, limit: int = 20) -> "AuditReport":
        """Look-ahead audit: per collection, the documents whose stored `when` is later than `when`."""
        from .inspection import audit

        return await audit(self.database, when, collection, limit=limit)

    def analysis(self, mode: str = "backtest", *, strategy: str | None = None, symbol: str | None = None,
                 exchange: str | None = None, frame: str | None = None) -> Any:
        """Closed signals, equity, summaries, tearsheet, open positions, candles and plots of one mode, for
        notebooks (`notebook` extra)."""
        from .analysis import Analysis

        return Analysis(self.database, mode, strategy=strategy, symbol=symbol, exchange=exchange, frame=frame)

    def repository(self, model: type[Item]) -> Repository:
        return self._repositories[model]

    def stats(self) -> dict[str, Any]:
        return {
            "cache": {**self.cache_stats.as_dict(), "hit_ratio": self.cache_stats.hit_ratio},
            "mongo_commands": dict(self.mongo_commands.counts),
            "redis_commands": dict(self.redis_commands.counts),
        }

    def __repr__(self) -> str:
        return f"Store({self.settings!r})"
