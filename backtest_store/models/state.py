"""State: per-signal state buckets."""

from .base import PayloadItem, context_index, field_index


class StateItem(PayloadItem):
    signalId: str
    bucketName: str
    when: int | None = None

    class Settings:
        name = "state-items"
        indexes = [context_index("state", "signalId", "bucketName"), field_index("state", "when")]
