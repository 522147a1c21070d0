"""Documents the TypeScript original wrote under an older key, which no index change can bring back into view.

Before backtest-kit v15 the original keyed Session by (strategyName, exchangeName, frameName) only. Its
documents lack `symbol` and `backtest`, so our Session adapter, which always filters on both, never sees
them. `migrate` counts them so that an operator knows they are there; it changes nothing, because the symbol
and mode they belonged to are not stored anywhere we could trust (the payload's `id` is the framework's, not
a key).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..drivers import Database
from ..contracts import DOCUMENTS
from ..models import Item, SessionItem

# Per Document: the context-key fields the original added later, which its older documents lack.
ADDED_KEY_FIELDS: dict[type[Item], tuple[str, ...]] = {SessionItem: ("symbol", "backtest")}


@dataclass(frozen=True)
class LegacyDocuments:
    """How many documents of one collection lack some of the context key's later fields."""

    collection: str
    missing: tuple[str, ...]
    count: int
    note: str

    def describe(self) -> str:
        noun = self.collection.removesuffix("-items")
        return f"{self.collection}: {self.count} legacy {noun} document{'s' if self.count != 1 else ''} {self.note}"

    def as_dict(self) -> dict[str, object]:
        return {"collection": self.collection, "missing": list(self.missing), "count": self.count,
                "note": self.note}


async def legacy_documents(database: Database,
                           documents: tuple[type[Item], ...] = DOCUMENTS) -> list[LegacyDocuments]:
    """The collections holding documents without the later key fields, with their counts (none: empty list).

    Only collections with such a history are counted. Those stay small (one document per run context), so the
    count's scan is cheap; candles, which can be millions, never had their key extended.
    """
    found = []
    for model in documents:
        fields = ADDED_KEY_FIELDS.get(model)
        if not fields:
            continue
        count = await database[model.collection_name()].count_documents(
            {"$or": [{f: {"$exists": False}} for f in fields]})
        if count:
            name = model.__name__.removesuffix("Item")
            note = f"without {'/'.join(fields)}: invisible to the {name} adapter"
            found.append(LegacyDocuments(model.collection_name(), fields, count, note))
    return found
