"""The driver types the package passes around, spelled once: PyMongo's async classes are generic over the
document type, and every document here is a plain dict."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
Client = AsyncMongoClient[Doc]
Database = AsyncDatabase[Doc]
Collection = AsyncCollection[Doc]
