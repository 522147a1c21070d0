"""`wait_for_init`: waits with a timeout, shared by concurrent callers, a failure is not remembered."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from backtest_store import NotReady, Store
from backtest_store.embedded import EmbeddedServer, secantus_command
from tests.zoo import OpenStore, ServerUrls, unique


async def test_false_costs_nothing(open_store: OpenStore) -> None:
    store = await open_store()
    before = dict(store.mongo_commands.counts)
    await store.adapters.signal("B", "s", "e").wait_for_init(False)
    assert dict(store.mongo_commands.counts) == before


async def test_concurrent_callers_share_one_attempt(servers: ServerUrls) -> None:
    database = unique("init")
    store = await Store.open(mongo_url=servers.mongo_db(database), redis_url=servers.redis,
                             cache_prefix=unique("bts"), count_commands=True)
    try:
        await asyncio.gather(*(store.adapters.log().wait_for_init(True) for _ in range(20)))
        assert store.mongo_commands.counts["ping"] == 1
        await store.adapters.log().wait_for_init(True)
        assert store.mongo_commands.counts["ping"] == 1
    finally:
        await store.mongo.drop_database(database)
        await store.close()


async def test_timeout_error_is_redacted(servers: ServerUrls, closed_port: int) -> None:
    store = await Store.open(mongo_url=f"mongodb://admin:s3cret-pw@127.0.0.1:{closed_port}/db?authSource=admin",
                             redis_url=servers.redis, init_timeout=2.0, flush_cache_on_open=False)
    try:
        with pytest.raises(NotReady) as info:
            await store.adapters.signal("B", "s", "e").wait_for_init(True)
        assert "s3cret-pw" not in str(info.value) and "admin:***@" in str(info.value)
    finally:
        await store.close()


async def test_failure_is_not_cached_recovers_once_the_server_is_up(servers: ServerUrls, tmp_path: Path) -> None:
    # Bound but not listening (connections refused), so that nothing else listens there before our server does.
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    store = await Store.open(mongo_url=f"mongodb://127.0.0.1:{port}/db", redis_url=servers.redis, init_timeout=2.0,
                             flush_cache_on_open=False)
    server = EmbeddedServer("SecantusDB", [secantus_command(), "--host", "127.0.0.1", "--port", str(port),
                                           "--storage-path", ":memory:"], port, tmp_path / "mongo.log")
    try:
        sig = store.adapters.signal("B", "s", "e")
        with pytest.raises(NotReady):
            await sig.wait_for_init(True)
        blocker.close()
        await server.start()
        await sig.wait_for_init(True)
        await store.create_indexes()
        await sig.write_signal_data({"ok": True})
        assert await sig.read_signal_data() == {"ok": True}
    finally:
        blocker.close()
        await store.close()
        server.stop()


async def test_runtime_never_touches_indexes(servers: ServerUrls) -> None:
    database = unique("no_index")
    store = await Store.open(mongo_url=servers.mongo_db(database), redis_url=servers.redis, cache_prefix=unique("bts"), count_commands=True)
    try:
        sig = store.adapters.signal("B", "s", "e")
        await sig.wait_for_init(True)
        await sig.write_signal_data({"x": 1})
        await sig.read_signal_data()
        assert "createIndexes" not in store.mongo_commands.counts
        assert "dropIndexes" not in store.mongo_commands.counts
        names = [i["name"] async for i in await store.database["signal-items"].list_indexes()]
        assert names == ["_id_"]
    finally:
        await store.mongo.drop_database(database)
        await store.close()
