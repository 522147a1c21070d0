"""Measure: `Cache.file` results per bucket and key, soft-deleted."""

from .base import SoftDeleteItem, context_index, field_index


class MeasureItem(SoftDeleteItem):
    bucket: str
    entryKey: str
    # The original drops Measure's `when`; we keep it for look-ahead audits.
    when: int | None = None

    class Settings:
        name = "measure-items"
        indexes = [context_index("measure", "bucket", "entryKey"), field_index("measure", "when")]
