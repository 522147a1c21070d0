"""(e) A file store like backtest-kit's default backend: one JSON file per key, at the paths its `./dump` uses
(`docs/dump-layout.md`), written as `writeFileAtomic` writes (temp file, fsync, rename), read with an existence
check first, as `PersistBase` reads.

- a candle read checks and reads one file per candle; a candle write checks each and writes the missing ones;
- Storage and Notification windows write every row's file; a Log window writes the entries whose file is
  missing;
- lists read the directory, then each file (to skip removed entries).

The files are written synchronously on the event loop, as one process doing nothing else would (Node's `fs`
promises run the same system calls on its thread pool).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from .. import validation
from ..dump.jsonfile import write_atomic
from ..dump.layout import LAYOUTS
from .contracts import Factories, Shape

_STEP = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
         "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "1d": 86_400_000}
_BY_NAME = {layout.name: layout for layout in LAYOUTS}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class FileEnv:
    """The root folder, and whether writes fsync (they do, as the default's do; seeding turns it off)."""

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self.files_written = 0
        self.files_read = 0


class _Files(Shape):
    env: FileEnv

    def __init__(self, env: FileEnv, contract: Any, context: dict[str, Any]) -> None:
        super().__init__(env, contract, context)
        self.layout = _BY_NAME[contract.name]
        self._dirs: set[str] = set()

    def _path(self, extra: dict[str, Any]) -> tuple[str, str]:
        parts = self.layout.path({**self.context, **extra})
        directory = os.path.join(self.env.root, *self.layout.root, *parts[:-1])
        return directory, parts[-1]

    def _has(self, directory: str, name: str) -> bool:
        return os.path.exists(os.path.join(directory, name))

    def _read(self, directory: str, name: str) -> Any:
        try:
            with open(os.path.join(directory, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        self.env.files_read += 1
        return json.loads(data)

    def _write(self, directory: str, name: str, value: Any) -> None:
        if directory not in self._dirs:
            os.makedirs(directory, exist_ok=True)
            self._dirs.add(directory)
        self.env.files_written += 1
        if self.env.fsync:
            write_atomic(directory, name, _dumps(value))
        else:
            with open(os.path.join(directory, name), "wb") as f:
                f.write(_dumps(value))


class Candle(_Files):
    async def read_candles(self, limit: int, since: int) -> list[dict[str, Any]] | None:
        step, out = _STEP[self.context["interval"]], []
        for i in range(limit):
            directory, name = self._path({"timestamp": since + i * step})
            if not self._has(directory, name):  # the default checks, then reads
                return None
            out.append(self._read(directory, name))
        return out

    async def write_candles(self, candles: list[dict[str, Any]]) -> int:
        written = 0
        for candle in candles:
            directory, name = self._path({"timestamp": candle["timestamp"]})
            if not self._has(directory, name):
                self._write(directory, name, candle)
                written += 1
        return written


class Record(_Files):
    """Partial and Breakeven's files hold `{signalId: levels}`, as the default's do."""

    def _where(self, signal_id: str | None) -> tuple[str, str]:
        return self._path({} if signal_id is None else {"signalId": signal_id})

    async def read(self, default: Any, signal_id: str | None = None) -> Any:
        directory, name = self._where(signal_id)
        if not self._has(directory, name):
            return default
        value = self._read(directory, name)
        return default if value is None else value

    async def write(self, value: Any, when: datetime | None, signal_id: str | None = None) -> None:
        self._write(*self._where(signal_id), value)


class Entries(_Files):
    def _where(self, key: str) -> tuple[str, str]:
        return self._path({self.contract.entry_field: key})

    async def read_entry(self, key: str) -> Any:
        directory, name = self._where(key)
        if not self._has(directory, name):
            return None
        value = self._read(directory, name)
        return None if not isinstance(value, dict) or validation.js_truthy(value.get("removed")) else value

    async def has_entry(self, key: str) -> bool:
        return self._has(*self._where(key))

    async def write_entry(self, data: Any, key: str, when: datetime) -> None:
        self._write(*self._where(key), data)

    async def remove_entry(self, key: str) -> None:
        directory, name = self._where(key)
        if self._has(directory, name):
            value = self._read(directory, name)
            if isinstance(value, dict):
                self._write(directory, name, {**value, "removed": True})

    def _listed(self) -> list[tuple[str, Any]]:
        directory, _ = self._where("x")
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            value = self._read(directory, name)
            if isinstance(value, dict) and not validation.js_truthy(value.get("removed")):
                out.append((name[:-5], value))
        return out

    async def keys(self) -> Any:
        for key, _ in self._listed():
            yield key

    async def entries(self) -> Any:
        for pair in self._listed():
            yield pair


class Rows(_Files):
    def _where(self, row_id: str) -> tuple[str, str]:
        return self._path({self.contract.entry_field: row_id, "payload": {"id": row_id}})

    async def read_rows(self) -> list[Any]:
        directory, _ = self._where("x")
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        return [self._read(directory, name) for name in names]

    async def write_rows(self, rows: list[dict[str, Any]]) -> int:
        written = 0
        for row in rows:
            directory, name = self._where(row["id"])
            if self.contract.append_only and self._has(directory, name):
                continue  # Log: existing ids are skipped
            self._write(directory, name, row)
            written += 1
        return written


def factories(env: FileEnv) -> Factories:
    return Factories(env, {"candle": Candle, "record": Record, "levels": Record, "rows": Rows, "entries": Entries})
