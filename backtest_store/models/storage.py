"""Storage: closed/active signal history rows, upserted by row id."""

from typing import ClassVar

from .base import PayloadItem, context_index


class StorageItem(PayloadItem):
    windowed: ClassVar[bool] = True
    backtest: bool
    signalId: str

    class Settings:
        name = "storage-items"
        indexes = [context_index("storage", "backtest", "signalId")]
