"""Memory: per-signal memory entries with their BM25 text, soft-deleted."""

from .base import SoftDeleteItem, context_index, field_index


class MemoryItem(SoftDeleteItem):
    signalId: str
    bucketName: str
    memoryId: str
    when: int | None = None

    class Settings:
        name = "memory-items"
        indexes = [context_index("memory", "signalId", "bucketName", "memoryId"), field_index("memory", "when")]
