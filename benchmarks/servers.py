"""The servers a benchmark runs on: yours when CC_MONGO_CONNECTION_STRING is set (as every command does), else
embedded ones on a temporary data directory, removed afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backtest_store import Store
from backtest_store.cli.connect import open_store


@asynccontextmanager
async def benchmark_store() -> AsyncIterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(tmp) as store:
            yield store
