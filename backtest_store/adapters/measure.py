"""Measure: `Cache.file` results per bucket and key, soft-deleted."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from ..models import MeasureItem
from .base import BucketEntries


class MeasureAdapter(BucketEntries):
    model = MeasureItem

    async def read_measure_data(self, key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read_entry(key)
        return value

    async def write_measure_data(self, data: dict[str, Any], key: str, when: datetime) -> None:
        await self._write_entry(data, key, when)

    async def remove_measure_data(self, key: str) -> None:
        await self._remove_entry(key)

    def list_measure_data(self) -> AsyncIterator[str]:
        return self._keys()
