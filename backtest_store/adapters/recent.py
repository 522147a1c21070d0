"""Recent: the latest active signal snapshot per context, overwritten on every ping."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import validation
from ..errors import InvalidInput
from ..models import RecentItem
from .base import Backend, RecordAdapter


class RecentAdapter(RecordAdapter):
    model = RecentItem

    def __init__(self, backend: Backend, symbol: str, strategy_name: str, exchange_name: str, frame_name: str,
                 backtest: bool) -> None:
        super().__init__(backend, symbol=validation.context_str("symbol", symbol),
                         strategyName=validation.context_str("strategy_name", strategy_name),
                         exchangeName=validation.context_str("exchange_name", exchange_name),
                         frameName=validation.context_str("frame_name", frame_name, allow_empty=True),
                         backtest=validation.context_bool("backtest", backtest))

    async def read_recent_data(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read(None)
        return value

    async def write_recent_data(self, row: dict[str, Any], when: datetime) -> None:
        if type(row) is not dict:
            raise InvalidInput(f"row must be a dict, got {type(row).__name__}")
        await self._write(row, when)
