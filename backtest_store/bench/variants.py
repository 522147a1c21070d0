"""The six storage designs the benchmark runs side by side, each opened the same way: a `Handle` with the
contract's factories (`handle.adapters`) and, when counting, the MongoDB and Redis commands it sent."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..counting import CommandCounter, RedisCommandCounter
from ..contracts import DOCUMENTS
from ..store import Store
from . import files, floor, minimal, original
from .raw import RawClients


@dataclass(frozen=True)
class Variant:
    key: str
    letter: str
    label: str
    mongo: bool  # uses MongoDB (and Redis); the file store uses neither
    short: str = ""


VARIANTS: dict[str, Variant] = {v.key: v for v in (
    Variant("shipped", "a", "backtest-store as shipped", True, "backtest-store"),
    Variant("no-cache", "b", "backtest-store with the Redis cache off", True, "no Redis cache"),
    Variant("original", "c", "the TypeScript original's access pattern", True, "TS original"),
    Variant("floor", "d", "the raw floor: PyMongo + redis-py, backtest-store's round trips and nothing else", True,
            "raw floor"),
    Variant("files", "e", "a file store like backtest-kit's default: a JSON file per key, temp + fsync + rename",
            False, "file store"),
    Variant("minimal", "f", "the minimal client a user would write instead: plain PyMongo async, one round trip by "
            "unique key, no Redis", True, "minimal client"),
)}


@dataclass
class Handle:
    """One opened design. `mongo_commands`/`redis_commands` count only on a handle opened with `count=True`."""

    variant: Variant
    adapters: Any
    close: Callable[[], Awaitable[None]]
    mongo_commands: CommandCounter = field(default_factory=CommandCounter)
    redis_commands: RedisCommandCounter = field(default_factory=RedisCommandCounter)
    file_env: files.FileEnv | None = None


@dataclass(frozen=True)
class Target:
    """Where a design keeps its data: a database and a Redis prefix on the benchmark's servers, or a folder."""

    mongo_url: str  # without a database
    redis_url: str
    database: str
    prefix: str
    folder: str

    def mongo_db_url(self) -> str:
        parts = urlsplit(self.mongo_url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{self.database}", parts.query, ""))


async def open_handle(variant: Variant, target: Target, *, count: bool) -> Handle:
    if variant.key in ("shipped", "no-cache"):
        store = await Store.open(mongo_url=target.mongo_db_url(), redis_url=target.redis_url,
                                 cache_prefix=target.prefix, flush_cache_on_open=False, count_commands=count)
        await store.wait_ready()
        if variant.key == "no-cache":
            for model in DOCUMENTS:
                store.repository(model).cache = None
        return Handle(variant, store.adapters, store.close, store.mongo_commands, store.redis_commands)
    if variant.key == "files":
        env = files.FileEnv(target.folder)
        os.makedirs(target.folder, exist_ok=True)

        async def nothing() -> None:
            return None

        return Handle(variant, files.factories(env), nothing, file_env=env)
    raw = RawClients.open(target.mongo_url, target.database, target.redis_url, target.prefix, count=count)
    make = {"original": original.factories, "minimal": minimal.factories}.get(variant.key, floor.factories)
    return Handle(variant, make(raw), raw.close, raw.mongo_commands, raw.redis_commands)
