"""Storage: signal history rows, upserted by `row["id"]`; reads return every row."""

from typing import Any

from ..models import StorageItem
from .base import ModeRows


class StorageAdapter(ModeRows):
    model = StorageItem
    row_field = "signalId"

    async def read_storage_data(self) -> list[dict[str, Any]]:
        return await self._read_rows()

    async def write_storage_data(self, rows: list[dict[str, Any]]) -> None:
        await self._write_rows(rows, "rows")
