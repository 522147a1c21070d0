"""Memory: per-signal memory entries, soft-deleted; `has` sees removed entries too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from .. import validation
from ..models import MemoryItem
from .base import Backend, EntryAdapter


class MemoryAdapter(EntryAdapter):
    model = MemoryItem
    entry_field = "memoryId"

    def __init__(self, backend: Backend, signal_id: str, bucket_name: str) -> None:
        super().__init__(backend, signalId=validation.context_str("signal_id", signal_id),
                         bucketName=validation.context_str("bucket_name", bucket_name))

    async def read_memory_data(self, memory_id: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read_entry(memory_id)
        return value

    async def has_memory_data(self, memory_id: str) -> bool:
        return await self._has_entry(memory_id)

    async def write_memory_data(self, data: dict[str, Any], memory_id: str, when: datetime) -> None:
        await self._write_entry(data, memory_id, when)

    async def remove_memory_data(self, memory_id: str) -> None:
        await self._remove_entry(memory_id)

    def list_memory_data(self) -> AsyncIterator[tuple[str, Any]]:
        return self._entries()

    def dispose(self) -> None:
        """A no-op, as in the default and the original: the instance holds no resources."""
