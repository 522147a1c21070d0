"""Create the indexes the Documents declare."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from ..models import DOCUMENTS, Item


async def create_indexes(database: AsyncDatabase, documents: tuple[type[Item], ...] = DOCUMENTS) -> dict[str, list[str]]:
    """Create every declared index (idempotent: MongoDB ignores an identical existing index).

    Returns the index names per collection. Changed or conflicting indexes raise here; `migrate plan` shows them.
    """
    created: dict[str, list[str]] = {}
    for model in documents:
        created[model.collection_name()] = await database[model.collection_name()].create_indexes(
            model.declared_indexes())
    return created
