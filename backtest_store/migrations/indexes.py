"""Create the indexes the Documents declare."""

from __future__ import annotations

from ..drivers import Database
from ..contracts import DOCUMENTS
from ..models import Item
from .diff import diff_collection, live_indexes


async def create_indexes(database: Database,
                         documents: tuple[type[Item], ...] = DOCUMENTS) -> dict[str, list[str]]:
    """Create every declared index (idempotent: MongoDB ignores an identical existing index).

    Returns the index names per collection, leaving out the adopted ones (present under another name, which
    MongoDB would refuse to create again: code 85). Changed or conflicting indexes raise here; `migrate plan`
    shows them.
    """
    created: dict[str, list[str]] = {}
    for model in documents:
        name = model.collection_name()
        adopted = {c.name for c in diff_collection(name, model.declared_indexes(), await live_indexes(database, name))
                   if c.adopted}
        wanted = [index for index in model.declared_indexes() if index.document["name"] not in adopted]
        created[name] = await database[name].create_indexes(wanted) if wanted else []
    return created
