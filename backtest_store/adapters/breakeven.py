"""Breakeven: `{signalId: {reached}}` per signal; `{}` when none."""

from datetime import datetime
from typing import Any

from ..models import BreakevenItem
from .base import SignalLevels


class BreakevenAdapter(SignalLevels):
    model = BreakevenItem

    async def read_breakeven_data(self, signal_id: str, when: datetime) -> dict[str, Any]:
        value: dict[str, Any] = await self._read_levels(signal_id, when)
        return value

    async def write_breakeven_data(self, data: dict[str, Any], signal_id: str, when: datetime) -> None:
        await self._write_levels(data, signal_id, when)
