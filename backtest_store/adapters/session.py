"""Session: keyed by strategy, exchange, frame, symbol and mode (HEAD contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import validation
from ..models import SessionItem
from .base import Backend, RecordAdapter


class SessionAdapter(RecordAdapter):
    model = SessionItem

    def __init__(self, backend: Backend, strategy_name: str, exchange_name: str, frame_name: str, symbol: str,
                 backtest: bool) -> None:
        super().__init__(backend, strategyName=validation.context_str("strategy_name", strategy_name),
                         exchangeName=validation.context_str("exchange_name", exchange_name),
                         frameName=validation.context_str("frame_name", frame_name, allow_empty=True),
                         symbol=validation.context_str("symbol", symbol),
                         backtest=validation.context_bool("backtest", backtest))

    async def read_session_data(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read(None)
        return value

    async def write_session_data(self, data: dict[str, Any], when: datetime) -> None:
        await self._write(data, when)

    def dispose(self) -> None:
        """A no-op, as in the default and the original: the instance holds no resources."""
