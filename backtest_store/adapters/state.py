"""State: per-signal state buckets; an older `when` still overwrites."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import validation
from ..models import StateItem
from .base import RecordAdapter

if TYPE_CHECKING:
    from ..store import Store


class StateAdapter(RecordAdapter):
    model = StateItem

    def __init__(self, store: "Store", signal_id: str, bucket_name: str) -> None:
        super().__init__(store, signalId=validation.context_str("signal_id", signal_id),
                         bucketName=validation.context_str("bucket_name", bucket_name))

    async def read_state_data(self) -> dict[str, Any] | None:
        return await self._read(None)

    async def write_state_data(self, data: dict[str, Any], when: datetime) -> None:
        await self._write(data, when)

    def dispose(self) -> None:
        """A no-op, as in the default and the original: the instance holds no resources."""
