"""Interval: "already fired" markers per bucket and key, soft-deleted; read-after-write is critical."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from ..models import IntervalItem
from .base import BucketEntries


class IntervalAdapter(BucketEntries):
    model = IntervalItem

    async def read_interval_data(self, key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read_entry(key)
        return value

    async def write_interval_data(self, data: dict[str, Any], key: str, when: datetime) -> None:
        await self._write_entry(data, key, when)

    async def remove_interval_data(self, key: str) -> None:
        await self._remove_entry(key)

    def list_interval_data(self) -> AsyncIterator[str]:
        return self._keys()
