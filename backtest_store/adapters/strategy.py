"""Strategy: the deferred-operations snapshot, written before the Signal/Schedule it guards."""

from typing import Any

from ..models import StrategyItem
from .base import StrategyScoped


class StrategyAdapter(StrategyScoped):
    model = StrategyItem

    async def read_strategy_data(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read(None)
        return value

    async def write_strategy_data(self, row: dict[str, Any] | None) -> None:
        await self._write(row)
