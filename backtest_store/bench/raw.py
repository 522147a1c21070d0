"""Plain PyMongo and redis-py clients for the benchmark's own designs, counting their commands when asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from ..counting import CommandCounter, RedisCommandCounter


@dataclass
class RawClients:
    """One MongoDB database and one Redis client, with the counters a counting run reads."""

    client: Any
    db: Any
    redis: Any
    prefix: str
    # The floor's first level of the id cache: key → `_id` known in this process (the benchmark's keys are few).
    ids: dict[str, str] = field(default_factory=dict)
    mongo_commands: CommandCounter = field(default_factory=CommandCounter)
    redis_commands: RedisCommandCounter = field(default_factory=RedisCommandCounter)

    @classmethod
    def open(cls, mongo_url: str, database: str, redis_url: str, prefix: str, *, count: bool) -> "RawClients":
        commands = CommandCounter()
        client: Any = AsyncMongoClient(mongo_url, tz_aware=True, appname="backtest-store-bench",
                                       event_listeners=[commands] if count else [])
        redis: Any = Redis.from_url(redis_url, decode_responses=True)
        raw = cls(client, client[database], redis, prefix, mongo_commands=commands)
        if count:
            raw.redis_commands.attach(redis)
        return raw

    async def close(self) -> None:
        await self.redis.aclose()
        await self.client.close()
