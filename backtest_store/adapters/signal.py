"""Signal: the live open position; `None` clears it."""

from typing import Any

from ..models import SignalItem
from .base import StrategyScoped


class SignalAdapter(StrategyScoped):
    model = SignalItem

    async def read_signal_data(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read(None)
        return value

    async def write_signal_data(self, row: dict[str, Any] | None) -> None:
        await self._write(row)
