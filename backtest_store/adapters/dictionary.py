"""Dictionary (backtest-kit 20): per-signal named dictionaries; an older `when` still overwrites, as State."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import validation
from ..errors import InvalidInput
from ..models import DictionaryItem
from .base import Backend, RecordAdapter


class DictionaryAdapter(RecordAdapter):
    model = DictionaryItem

    def __init__(self, backend: Backend, signal_id: str, dictionary_name: str) -> None:
        super().__init__(backend, signalId=validation.context_str("signal_id", signal_id),
                         dictionaryName=validation.context_str("dictionary_name", dictionary_name))

    async def read_dictionary_data(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._read(None)
        return value

    async def write_dictionary_data(self, data: dict[str, Any], when: datetime) -> None:
        # The original's schema requires the payload: a DictionaryData object, never null.
        if type(data) is not dict:
            raise InvalidInput(f"data must be a DictionaryData dict, got {type(data).__name__}")
        await self._write(data, when)

    def dispose(self) -> None:
        """A no-op, as in the default and the original: the instance holds no resources."""
