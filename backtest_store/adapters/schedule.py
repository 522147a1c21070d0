"""Schedule: the scheduled signal awaiting activation; `None` clears it."""

from typing import Any

from ..models import ScheduleItem
from .base import StrategyScoped


class ScheduleAdapter(StrategyScoped):
    model = ScheduleItem

    async def read_schedule_data(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read(None)
        return value

    async def write_schedule_data(self, row: dict[str, Any] | None) -> None:
        await self._write(row)
