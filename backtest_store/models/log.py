"""Log: append-only entries; an id already stored is never rewritten."""

from .base import PayloadItem, context_index


class LogItem(PayloadItem):
    entryId: str

    class Settings:
        name = "log-items"
        indexes = [context_index("log", "entryId")]
