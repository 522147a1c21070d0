"""Every fault gets a clear answer: bounded MongoDB calls, a refusing Redis that costs no init timeout, and
cache entries that cannot be read treated as stale rather than as errors.

Each server that a test stops or misconfigures is the test's own subprocess; the session's shared servers are
never touched. Bounds are generous multiples of the configured timeouts, never sub-second.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from backtest_store import Store, StorageError
from backtest_store.embedded import EmbeddedServer, free_port, secantus_command
from tests.conftest import ServerUrls, unique

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
T0_MS = 1767225600000


@pytest.fixture
async def own_mongo(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    port = free_port()
    server = EmbeddedServer("SecantusDB", [secantus_command(), "--host", "127.0.0.1", "--port", str(port),
                                           "--storage-path", ":memory:"], port, tmp_path / "mongo.log")
    await server.start()
    yield server
    resume(server)
    server.stop()


def resume(server: EmbeddedServer) -> None:
    # A SIGSTOPped process only acts on SIGTERM once continued.
    if server.pid is not None:
        os.kill(server.pid, signal.SIGCONT)


# -- 1. every MongoDB call is bounded by mongo_timeout_ms -------------------------------------------------------


async def test_every_mongo_call_gives_up_within_the_configured_timeout(
        own_mongo: EmbeddedServer, servers: ServerUrls, report: Callable[[str], None]) -> None:
    store = await Store.open(mongo_url=f"mongodb://127.0.0.1:{own_mongo.port}/faults", redis_url=servers.redis,
                             cache_prefix=unique("bts"), mongo_timeout_ms=2000)
    try:
        await store.wait_ready()
        await store.create_indexes()
        sig = store.adapters.signal("B", "s", "e")
        await sig.write_signal_data({"v": 1})
        await store.adapters.measure("b").write_measure_data({"id": "k", "data": 1, "removed": False}, "k", NOW)
        await store.adapters.candle("B", "1m", "e").write_candles_data(
            [{"timestamp": T0_MS, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0}])

        async def listed() -> list[str]:
            return [k async for k in store.adapters.measure("b").list_measure_data()]

        calls: dict[str, Callable[[], Awaitable[object]]] = {
            # First: the call that finds its pooled connection hung (35 s before this was bounded).
            "read": sig.read_signal_data,
            "upsert": lambda: sig.write_signal_data({"v": 2}),
            "bulk write": lambda: store.adapters.storage(True).write_storage_data([{"id": "r", "v": 1}]),
            "cursor": listed,
            "candle range": lambda: store.adapters.candle("B", "1m", "e").read_candles_data(1, T0_MS, T0_MS + 60_000),
        }
        assert own_mongo.pid is not None
        os.kill(own_mongo.pid, signal.SIGSTOP)
        took: dict[str, float] = {}
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(StorageError, match="did not answer within 2 s"):
                await asyncio.wait_for(call(), 120)
            took[name] = time.monotonic() - started
        report("stopped MongoDB, mongo_timeout_ms=2000: " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()))
        assert max(took.values()) < 10, took
    finally:
        resume(own_mongo)
        await store.flush_cache()
        await store.close()
