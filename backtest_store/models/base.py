"""What every collection shares. Models are pure data: the repositories do all the I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from beanie import Document
from pymongo import ASCENDING, IndexModel


def context_index(short: str, *fields: str) -> IndexModel:
    """The compound unique index on a collection's context key, under an explicit name."""
    return IndexModel([(f, ASCENDING) for f in fields], name=f"{short}_context_unique", unique=True)


def field_index(short: str, name: str) -> IndexModel:
    return IndexModel([(name, ASCENDING)], name=f"{short}_{name}")


class Item(Document):
    """Timestamps named as mongoose's `timestamps: {createdAt: "createDate", updatedAt: "updatedDate"}`."""

    createDate: datetime | None = None
    updatedDate: datetime | None = None

    # Which document field holds the adapter's value: `positions` for Risk, as in the original.
    value_field: ClassVar[str] = "payload"
    # Rows re-sent whole as windows (Storage, Notification): stored with a digest of their payload, so that a
    # re-sent row equal to the stored one is never sent again (`Repository.write_window`).
    windowed: ClassVar[bool] = False

    @classmethod
    def collection_name(cls) -> str:
        name: str = cls.Settings.name
        return name

    @classmethod
    def declared_indexes(cls) -> list[IndexModel]:
        return list(cls.Settings.indexes)

    @classmethod
    def context_key(cls) -> tuple[str, ...]:
        """The fields of the unique index, in index order: the one definition of a document's identity."""
        for index in cls.declared_indexes():
            if index.document.get("unique"):
                return tuple(index.document["key"].keys())
        raise TypeError(f"{cls.__name__} declares no unique index")


class PayloadItem(Item):
    """A document holding an opaque JSON payload (mongoose `Schema.Types.Mixed`)."""

    payload: Any = None


class SoftDeleteItem(PayloadItem):
    """Measure, Interval and Memory: removal sets `removed` on the column and inside the payload."""

    removed: bool = False


class StrategyScopedItem(PayloadItem):
    """The context shared by Signal, Schedule, Strategy, Partial, Breakeven and Recent."""

    symbol: str
    strategyName: str
    exchangeName: str


def collection_names() -> tuple[str, ...]:
    """The collections of every model in this package, found from the classes themselves: for `Settings`, which
    sits below the contract registry (backtest_store/contracts.py) and so cannot import it. The registry's
    completeness test checks that both name the same collections."""
    found: list[str] = []
    pending: list[type[Item]] = [Item]
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if "Settings" in cls.__dict__ and cls.__module__.startswith(__package__ + "."):
            found.append(cls.collection_name())
    return tuple(found)
