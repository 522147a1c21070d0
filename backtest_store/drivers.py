"""The driver types the package passes around, spelled once: PyMongo's async classes are generic over the
document type, and every document here is a plain dict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

Doc = dict[str, Any]
Client = AsyncMongoClient[Doc]
Database = AsyncDatabase[Doc]
Collection = AsyncCollection[Doc]
# decode_responses=True: every reply is a str. Generic only in the type stubs, not at run time.
# One server, or a Redis/Valkey Cluster (`redis+cluster://`): both take the same single-key commands at run time,
# but the types-redis stubs do not list RedisCluster's commands yet; narrow with isinstance before calling them.
if TYPE_CHECKING:
    RedisClient = Redis[str] | RedisCluster[str]
else:
    RedisClient = Redis | RedisCluster
