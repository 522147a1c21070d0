"""Partial: `{signalId: {profitLevels, lossLevels}}` per signal; `{}` when none."""

from datetime import datetime
from typing import Any

from ..models import PartialItem
from .base import SignalLevels


class PartialAdapter(SignalLevels):
    model = PartialItem

    async def read_partial_data(self, signal_id: str, when: datetime) -> dict[str, Any]:
        value: dict[str, Any] = await self._read_levels(signal_id, when)
        return value

    async def write_partial_data(self, data: dict[str, Any], signal_id: str, when: datetime) -> None:
        await self._write_levels(data, signal_id, when)
