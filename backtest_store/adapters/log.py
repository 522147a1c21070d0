"""Log: one global log; only entries whose ids are new are written."""

from __future__ import annotations

from typing import Any

from ..models import LogItem
from .base import Backend, RowsAdapter


class LogAdapter(RowsAdapter):
    model = LogItem
    row_field = "entryId"
    append_only = True

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)

    async def read_log_data(self) -> list[dict[str, Any]]:
        return await self._read_rows()

    async def write_log_data(self, entries: list[dict[str, Any]]) -> int:
        """Returns how many entries were new."""
        return (await self._write_rows(entries, "entries")).inserted
