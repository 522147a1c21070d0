"""The benchmark's servers: its own embedded SecantusDB and valkey, or the MongoDB (and Redis) named by
`BACKTEST_STORE_BENCH_MONGO_URL` (and `BACKTEST_STORE_BENCH_REDIS_URL`). Its own valkey by default even with a
real MongoDB: nothing else talks to it while the benchmark runs."""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from ..cache import flush_prefix
from ..config import redact
from ..embedded import EmbeddedServer, EmbeddedServers, free_port, valkey_binary

MONGO_ENV = "BACKTEST_STORE_BENCH_MONGO_URL"
REDIS_ENV = "BACKTEST_STORE_BENCH_REDIS_URL"


@dataclass
class BenchServers:
    mongo_url: str  # no database in it: each design gets its own
    redis_url: str
    mongo: str  # "MongoDB 8.0.4", or "SecantusDB (embedded MongoDB wire-protocol server in Python), reports 8.2.11"
    redis: str
    embedded_mongo: bool
    own_redis: bool  # started by the benchmark: nothing else talks to it

    def describe(self) -> dict[str, Any]:
        return {"mongo": self.mongo, "redis": self.redis, "mongo_url": redact(self.mongo_url),
                "redis_url": redact(self.redis_url), "embedded_mongo": self.embedded_mongo, "own_redis": self.own_redis}


def without_database(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/", parts.query, ""))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@asynccontextmanager
async def bench_servers(workdir: Path, env: dict[str, str] | None = None) -> AsyncIterator[BenchServers]:
    env = dict(os.environ) if env is None else env
    mongo_url, redis_url = env.get(MONGO_ENV), env.get(REDIS_ENV)
    started: list[Any] = []
    try:
        if not mongo_url:
            servers = await EmbeddedServers(workdir / "servers").start()
            started.append(servers)
            mongo_url = servers.mongo_url
            redis_url = redis_url or servers.redis_url
        elif not redis_url:
            port = free_port()
            valkey = EmbeddedServer("valkey-server", [
                str(valkey_binary()), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                "--dir", str(workdir)], port, workdir / "valkey.log")
            await valkey.start()
            started.append(valkey)
            redis_url = f"redis://127.0.0.1:{port}/0"
        assert redis_url is not None
        mongo, embedded = await _mongo_version(mongo_url)
        yield BenchServers(without_database(mongo_url), redis_url, mongo, await _redis_version(redis_url), embedded,
                           own_redis=not env.get(REDIS_ENV))
    finally:
        for server in reversed(started):
            server.stop()


async def _mongo_version(url: str) -> tuple[str, bool]:
    client: Any = AsyncMongoClient(url, serverSelectionTimeoutMS=15000)
    try:
        info = await client.admin.command("buildInfo")
        status = await client.admin.command("serverStatus")
    finally:
        await client.close()
    if "secantus" in status:
        return (f"SecantusDB (an embedded MongoDB wire-protocol server written in Python; reports MongoDB "
                f"{info.get('version')})", True)
    return f"MongoDB {info.get('version')}", False


async def _redis_version(url: str) -> str:
    client: Any = Redis.from_url(url, decode_responses=True)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    if info.get("valkey_version"):
        return f"valkey {info['valkey_version']}"
    return f"Redis {info.get('redis_version')}"


async def drop(servers: BenchServers, databases: list[str], prefixes: list[str]) -> None:
    """Remove what the benchmark wrote on servers it did not start (its own go with their temporary folder)."""
    if not servers.embedded_mongo:
        client: Any = AsyncMongoClient(servers.mongo_url)
        try:
            for name in databases:
                await client.drop_database(name)
        finally:
            await client.close()
    if not servers.own_redis:
        redis: Any = Redis.from_url(servers.redis_url, decode_responses=True)
        try:
            for prefix in prefixes:
                await flush_prefix(redis, prefix)
        finally:
            await redis.aclose()


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "os": f"{platform.system()} {platform.release()}"}


def run_id() -> str:
    return uuid.uuid4().hex[:8]
