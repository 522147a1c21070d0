"""Interval: "already fired this interval" markers per bucket and key, soft-deleted."""

from .base import SoftDeleteItem, context_index, field_index


class IntervalItem(SoftDeleteItem):
    bucket: str
    entryKey: str
    when: int | None = None

    class Settings:
        name = "interval-items"
        indexes = [context_index("interval", "bucket", "entryKey"), field_index("interval", "when")]
