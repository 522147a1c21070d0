"""Log: one global log; only entries whose ids are new are written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import LogItem
from .base import RowsAdapter

if TYPE_CHECKING:
    from ..store import Store


class LogAdapter(RowsAdapter):
    model = LogItem
    row_field = "entryId"
    append_only = True

    def __init__(self, store: "Store") -> None:
        super().__init__(store)

    async def read_log_data(self) -> list[dict[str, Any]]:
        return await self._read_rows()

    async def write_log_data(self, entries: list[dict[str, Any]]) -> int:
        """Returns how many entries were new."""
        return (await self._write_rows(entries, "entries")).inserted
