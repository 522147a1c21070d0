"""State: per-signal state buckets; an older `when` still overwrites."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import validation
from ..models import StateItem
from .base import Backend, RecordAdapter


class StateAdapter(RecordAdapter):
    model = StateItem

    def __init__(self, backend: Backend, signal_id: str, bucket_name: str) -> None:
        super().__init__(backend, signalId=validation.context_str("signal_id", signal_id),
                         bucketName=validation.context_str("bucket_name", bucket_name))

    async def read_state_data(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read(None)
        return value

    async def write_state_data(self, data: dict[str, Any], when: datetime) -> None:
        await self._write(data, when)

    def dispose(self) -> None:
        """A no-op, as in the default and the original: the instance holds no resources."""
