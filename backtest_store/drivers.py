"""The driver types the package passes around, spelled once: PyMongo's async classes are generic over the
document type, and every document here is a plain dict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

Doc = dict[str, Any]
Client = AsyncMongoClient[Doc]
Database = AsyncDatabase[Doc]
Collection = AsyncCollection[Doc]
# decode_responses=True: every reply is a str. Generic only in the type stubs, not at run time.
if TYPE_CHECKING:
    RedisClient = Redis[str]
else:
    RedisClient = Redis
