"""Risk: the active positions map, stored whole as `[key, position]` pairs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import validation
from ..errors import InvalidInput
from ..models import RiskItem
from .base import Backend, RecordAdapter


class RiskAdapter(RecordAdapter):
    model = RiskItem

    def __init__(self, backend: Backend, risk_name: str, exchange_name: str) -> None:
        super().__init__(backend, riskName=validation.context_str("risk_name", risk_name),
                         exchangeName=validation.context_str("exchange_name", exchange_name))

    async def read_position_data(self, when: datetime) -> list[Any]:
        validation.when_ms(when)  # passed by the framework, never used to filter
        value: list[Any] = await self._read([])
        return value

    async def write_position_data(self, rows: list[Any], when: datetime) -> None:
        if type(rows) not in (list, tuple):
            raise InvalidInput(f"rows must be a list of [key, position] pairs, got {type(rows).__name__}")
        await self._write(list(rows), when)
