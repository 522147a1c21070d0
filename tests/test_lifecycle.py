"""One call, one bound; a failed write says what became of it; one error boundary; one lifecycle.

Servers a test freezes, breaks or starts are its own; the session's shared servers are never touched. No test waits
on the wall clock: a call's budget is checked through an injected clock, and the only real timeouts are whole
seconds that a stopped server makes the driver wait out.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pymongo
import pytest

from backtest_store import BacktestStoreError, NotReady, NotWritten, OutcomeUnknown, StorageError, Store
from backtest_store import embedded
from backtest_store.cli import main
from backtest_store.cli.connect import mongo_database
from backtest_store.embedded import (
    DataDirInUse,
    EmbeddedServer,
    EmbeddedServers,
    free_port,
    free_ports,
    secantus_command,
    servers_for,
    valkey_binary,
)
from backtest_store.models import SignalItem
from tests.zoo import T0, OpenStore, ServerUrls, frozen, unique


@pytest.fixture
async def own_mongo(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    port = free_port()
    server = EmbeddedServer("SecantusDB", [secantus_command(), "--host", "127.0.0.1", "--port", str(port),
                                           "--storage-path", ":memory:"], port, tmp_path / "mongo.log")
    await server.start()
    yield server
    if server.pid is not None:
        os.kill(server.pid, signal.SIGCONT)  # a stopped process only acts on SIGTERM once continued
    await server.astop()


# -- one call, one bound -------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spy_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The bounds handed to `pymongo.timeout`, in order."""
    seen: list[float | None] = []
    real = pymongo.timeout

    def spy(seconds: float | None) -> Any:
        seen.append(seconds)
        return real(seconds)

    monkeypatch.setattr(pymongo, "timeout", spy)
    return seen


async def test_a_read_gives_mongo_what_the_redis_lookup_left_of_one_bound(
        open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: Redis's own timeout (1 s), then a fresh 2 s for MongoDB: 3 s for a call documented as bounded by 2 s.
    store = await open_store(mongo_timeout_ms=2000)
    sig = store.adapters.signal("B", "s", "e")
    await sig.write_signal_data({"v": 1})
    repo = store.repository(SignalItem)
    assert repo.cache is not None
    repo.clock = clock = Clock()
    lookup = repo.cache.get

    async def slow_lookup(key: Any) -> Any:
        clock.now += 1.5  # the Redis step took 1.5 s of the call's 2 s
        return await lookup(key)

    monkeypatch.setattr(repo.cache, "get", slow_lookup)
    seen = spy_timeouts(monkeypatch)
    assert await sig.read_signal_data() == {"v": 1}
    assert seen == [pytest.approx(0.5)]


async def test_a_write_whose_mongo_step_took_the_whole_bound_sends_no_redis_step(
        open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(mongo_timeout_ms=2000)
    repo = store.repository(SignalItem)
    assert repo.cache is not None
    repo.clock = clock = Clock()
    upsert = repo.collection.find_one_and_update

    async def slow_upsert(*args: Any, **kwargs: Any) -> Any:
        clock.now += 2.5
        return await upsert(*args, **kwargs)

    monkeypatch.setattr(repo.collection, "find_one_and_update", slow_upsert)
    commands = store.cache_stats.commands
    await store.adapters.signal("B", "s", "e").write_signal_data({"v": 1})
    # No HSET past the deadline, and Redis, which was not slow, is not counted as failing.
    assert (store.cache_stats.commands, store.cache_stats.errors) == (commands, 0)


# -- a failed write says what became of it ---------------------------------------------------------------------


async def test_a_write_to_a_frozen_mongo_is_outcome_unknown_with_its_fault(
        own_mongo: EmbeddedServer, servers: ServerUrls) -> None:
    url = f"mongodb://127.0.0.1:{own_mongo.port}/outcome"
    async with await Store.open(mongo_url=url, redis_url=servers.redis, cache_prefix=unique("bts"),
                                mongo_timeout_ms=2000) as store:
        await store.wait_ready()
        sig = store.adapters.signal("B", "s", "e")
        await sig.write_signal_data({"v": 1})  # a pooled connection, which the stop then hangs
        assert own_mongo.pid is not None
        await frozen(own_mongo.pid)
        with pytest.raises(OutcomeUnknown, match="may have been applied") as raised:
            await sig.write_signal_data({"v": 2})
        assert isinstance(raised.value, StorageError)
        assert raised.value.fault is not None and not raised.value.fault.permanent
        assert "did not answer within 2 s" in str(raised.value.fault)
        os.kill(own_mongo.pid, signal.SIGCONT)


def commands_named(store: Store, name: str) -> int:
    return int(store.mongo_commands.counts.get(name, 0))


async def test_a_refused_upsert_is_not_written_and_not_retried(store: Store) -> None:
    # A duplicate on ANOTHER unique index than our key is the server's refusal, not a race to retry (before: three
    # attempts, then a plain StorageError).
    await store.repository(SignalItem).collection.create_index("payload.v", unique=True)
    await store.adapters.signal("B", "s", "e").write_signal_data({"v": 1})
    before = commands_named(store, "findAndModify")
    with pytest.raises(NotWritten, match="E11000|duplicate") as raised:
        await store.adapters.signal("C", "s", "e").write_signal_data({"v": 1})
    assert commands_named(store, "findAndModify") - before == 1
    assert raised.value.fault is not None
    assert await store.adapters.signal("C", "s", "e").read_signal_data() is None


async def test_a_refused_bulk_write_is_not_written_and_not_retried(store: Store) -> None:
    from backtest_store.models import StorageItem

    await store.repository(StorageItem).collection.create_index("payload.v", unique=True)
    before = commands_named(store, "update")
    with pytest.raises(NotWritten):
        await store.adapters.storage(True).write_storage_data([{"id": "a", "v": 1}, {"id": "b", "v": 1}])
    assert commands_named(store, "update") - before == 1


async def test_the_cli_client_bounds_every_call_not_only_server_selection(servers: ServerUrls) -> None:
    async with mongo_database(servers.mongo_db(unique("t")), 7.0, "test") as database:
        assert database.client.options.timeout == 7.0
        assert database.client.options.server_selection_timeout == 7.0


# -- one error boundary ------------------------------------------------------------------------------------------


def closed_port() -> int:
    return free_port()  # nothing listens there


@pytest.mark.servers  # waits out each public method's bound against servers that are down (seconds)
async def test_no_driver_exception_leaves_any_public_store_method_with_the_servers_down() -> None:
    store = await Store.open(mongo_url=f"mongodb://127.0.0.1:{closed_port()}/down",
                             redis_url=f"redis://127.0.0.1:{closed_port()}/0", mongo_timeout_ms=1000,
                             init_timeout=1, flush_cache_on_open=False)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "wait_ready": store.wait_ready,
        "create_indexes": store.create_indexes,
        "flush_cache": store.flush_cache,
        "schema": store.schema,
        "audit": lambda: store.audit(T0),
        "bind_beanie": store.bind_beanie,
        "close": store.close,
    }
    public = {name for name, member in inspect.getmembers(Store, inspect.iscoroutinefunction)
              if not name.startswith("_") and not isinstance(inspect.getattr_static(Store, name), classmethod)}
    assert public == set(calls), "a new public coroutine method: add it to this walk"
    escaped: dict[str, str] = {}
    for name, call in calls.items():
        try:
            await call()
        except BacktestStoreError:
            pass
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            escaped[name] = f"{type(exc).__module__}.{type(exc).__name__}"
    assert escaped == {}


# -- Beanie's binding is process-global: the store never binds on its own ------------------------------------------


async def test_two_stores_on_two_databases_do_not_redirect_each_others_beanie_queries(open_store: OpenStore) -> None:
    first, second = await open_store(fresh=True), await open_store(fresh=True)
    await first.adapters.signal("first", "s", "e").write_signal_data({"v": 1})
    await second.adapters.signal("second", "s", "e").write_signal_data({"v": 2})
    await first.bind_beanie()
    await second.wait_ready()  # before: every ready store bound the Documents to its own database
    found = await SignalItem.find_one()
    assert found is not None and found.symbol == "first"
    assert await second.adapters.signal("second", "s", "e").read_signal_data() == {"v": 2}
    assert await first.adapters.signal("second", "s", "e").read_signal_data() is None


# -- Store lifecycle --------------------------------------------------------------------------------------------


class FakeServers:
    stopped = False

    async def astop(self) -> None:
        self.stopped = True


async def test_close_runs_every_step_when_one_fails_and_cancels_a_pending_readiness(
        monkeypatch: pytest.MonkeyPatch, servers: ServerUrls) -> None:
    store = await Store.open(mongo_url=f"mongodb://127.0.0.1:{closed_port()}/down", redis_url=servers.redis,
                             init_timeout=600, flush_cache_on_open=False)
    waiting = asyncio.create_task(store.wait_ready())
    while store._ready_task is None:
        await asyncio.sleep(0)
    fake = FakeServers()
    store._servers = fake
    mongo_closed: list[bool] = []
    close_mongo = store.mongo.close

    async def broken_aclose() -> None:
        raise ConnectionError("redis went away")

    async def recorded_close() -> None:
        mongo_closed.append(True)
        await close_mongo()

    monkeypatch.setattr(store.redis, "aclose", broken_aclose)
    monkeypatch.setattr(store.mongo, "close", recorded_close)
    with pytest.raises(ConnectionError):
        await store.close()
    assert mongo_closed == [True] and fake.stopped
    with pytest.raises(NotReady, match="closed"):
        await waiting


async def test_a_local_store_that_fails_to_start_closes_what_it_opened(
        monkeypatch: pytest.MonkeyPatch, servers: ServerUrls) -> None:
    fake = FakeServers()

    async def shared_servers(data_dir: Any) -> tuple[tuple[str, str], Any]:
        return (servers.mongo_db(unique("t")), servers.redis), fake

    async def refused(self: Store) -> dict[str, list[str]]:
        raise StorageError("refused")

    closed: list[Store] = []
    close = Store.close

    async def recorded_close(self: Store) -> None:
        closed.append(self)
        await close(self)

    monkeypatch.setattr(embedded, "servers_for", shared_servers)
    monkeypatch.setattr(Store, "create_indexes", refused)
    monkeypatch.setattr(Store, "close", recorded_close)
    with pytest.raises(StorageError, match="refused"):
        await Store.local("unused")
    assert len(closed) == 1 and fake.stopped


# -- embedded servers ---------------------------------------------------------------------------------------------


def test_ports_picked_together_are_distinct() -> None:
    for _ in range(50):
        ports = free_ports(4)
        assert len(set(ports)) == 4


@pytest.mark.servers  # starts embedded servers (or a CLI that does) of its own
async def test_a_server_whose_port_was_taken_meanwhile_starts_on_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A port another process bound between our pick and the server's start: bound but not listening, so that
    # nothing but our own server can answer on the port we finally use.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        picks = iter([[free_port(), port]])
        real = free_ports
        monkeypatch.setattr(embedded, "free_ports", lambda n: next(picks, None) or real(n))
        servers = await EmbeddedServers(tmp_path / "d").start()
        try:
            assert servers.redis.port != port
            assert embedded.running(tmp_path / "d") == (servers.mongo_url, servers.redis_url)
        finally:
            await servers.astop()


@pytest.mark.servers  # starts embedded servers (or a CLI that does) of its own
async def test_one_data_dir_gets_one_set_of_servers_whoever_asks_at_once(tmp_path: Path) -> None:
    (urls_a, started_a), (urls_b, started_b) = await asyncio.gather(servers_for(tmp_path), servers_for(tmp_path))
    started = [s for s in (started_a, started_b) if s is not None]
    try:
        assert len(started) == 1 and urls_a == urls_b
        with pytest.raises(DataDirInUse, match="in use by another process"):
            await EmbeddedServers(tmp_path).start()
    finally:
        for s in started:
            await s.astop()


@pytest.mark.servers  # starts embedded servers (or a CLI that does) of its own
async def test_stopping_a_server_leaves_the_event_loop_free(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedServer("valkey-server", [str(valkey_binary()), "--bind", "127.0.0.1", "--port", str(port),
                                              "--save", "", "--appendonly", "no"], port, tmp_path / "redis.log")
    await server.start()
    proc, pid = server.proc, server.pid
    assert proc is not None and pid is not None
    os.kill(pid, signal.SIGSTOP)  # it cannot act on SIGTERM until continued
    stopping = asyncio.create_task(server.astop())
    await asyncio.sleep(0)
    # Only a loop that is not blocked by the stop can continue the server: a blocked one waits out the stop's
    # timeout and then SIGKILLs it.
    os.kill(pid, signal.SIGCONT)
    await stopping
    assert proc.returncode != -signal.SIGKILL


@pytest.mark.servers  # starts embedded servers (or a CLI that does) of its own
async def test_a_failed_start_leaves_no_sibling_start_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "valkey_binary", lambda: Path("/bin/false"))
    servers = EmbeddedServers(tmp_path)
    with pytest.raises(NotReady, match="exited"):
        await servers.start()
    left = [t for t in asyncio.all_tasks() if "EmbeddedServer.start" in t.get_coro().__qualname__]  # type: ignore[union-attr]
    assert left == []
    assert servers.mongo.proc is None and servers.redis.proc is None


# -- --data-dir that cannot be used -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["demo"], ["inspect"], ["migrate", "plan"], ["report"], ["serve"],
                                  ["export-dump", "OUT"], ["import-dump", "IN"]])
@pytest.mark.parametrize("where", ["file", "under a file"])
def test_a_data_dir_that_cannot_be_used_is_one_line_and_exit_2(
        argv: list[str], where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("CC_MONGO") or name.startswith("CC_REDIS"):
            monkeypatch.delenv(name)
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "IN").mkdir()
    data_dir = afile if where == "file" else afile / "sub"
    argv = [str(tmp_path / a) if a in ("OUT", "IN") else a for a in argv]
    assert main([*argv, "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(data_dir) in err[0] and "Traceback" not in err[0], err


# -- one Ctrl-C stops a command at any moment -----------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _interrupt_demo(data_dir: Path, moment: Callable[[str], bool]) -> tuple[int, str, list[int]]:
    """Run `backtest-store demo` on a terminal (so that it shows its progress), send one SIGINT at the moment its
    output first satisfies `moment`, and return its exit code, its output and the pids of the servers it started."""
    import json
    import pty
    import select
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    env["COLUMNS"] = "120"
    cli = Path(sys.executable).with_name("backtest-store")
    proc = subprocess.Popen([str(cli), "demo", "--minutes", "100000", "--data-dir", str(data_dir)],
                            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out, sent_at, pids = b"", None, []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal closed: the demo has exited
                    break
                if not chunk:
                    break
                out += chunk
            if sent_at is None and moment(out.decode(errors="replace")):
                state = json.loads((data_dir / embedded.STATE_FILE).read_text())
                pids = [state["mongo_pid"], state["redis_pid"]]
                proc.send_signal(signal.SIGINT)
                sent_at = time.monotonic()
            # Generous: only an ignored Ctrl-C gets anywhere near this (the run it asked for takes an hour).
            if sent_at is not None and time.monotonic() - sent_at > 120:
                break
            if proc.poll() is not None and not ready:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        os.close(master)
        for pid in pids:  # a demo that ignored the Ctrl-C and was killed left its servers running
            if _alive(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
    return code, out.decode(errors="replace"), pids


def _minutes_done(text: str) -> int:
    import re

    counts = re.findall(r"(\d+)/100000", text)
    return int(counts[-1]) if counts else -1


@pytest.mark.servers  # starts embedded servers (or a CLI that does) of its own
@pytest.mark.parametrize("moment", ["after start-up", "early in the simulation", "later in the simulation"])
def test_one_ctrl_c_stops_the_demo_with_interrupted_and_130(moment: str, tmp_path: Path) -> None:
    when: Callable[[str], bool] = {
        "after start-up": lambda text: "Redis " in text,
        "early in the simulation": lambda text: _minutes_done(text) >= 20,
        "later in the simulation": lambda text: _minutes_done(text) >= 300,
    }[moment]
    code, out, pids = _interrupt_demo(tmp_path, when)
    assert pids, f"the moment never came:\n{out[-2000:]}"
    assert code == 130, out[-2000:]
    assert "backtest-store: interrupted" in out
    assert "Traceback" not in out
    # The servers the demo started were stopped on the way out.
    assert not (tmp_path / embedded.STATE_FILE).exists()
    assert not any(_alive(pid) for pid in pids)


async def _cancellations_lost(wait_for: Callable[..., Awaitable[int]]) -> int:
    """Cancel a task waiting in `wait_for` at each step of an operation that completes at once: how many of those
    cancellations the task never saw (it returned the result instead)."""
    lost = 0
    for steps in range(6):
        async def operation() -> int:
            await asyncio.sleep(0)
            return 1

        async def caller() -> int:
            return await wait_for(operation(), 10)

        task = asyncio.create_task(caller())
        for _ in range(steps):
            await asyncio.sleep(0)
        if task.done():
            continue
        task.cancel()
        try:
            await task
            lost += 1
        except asyncio.CancelledError:
            pass
    return lost


async def test_the_console_commands_wait_for_never_loses_a_cancellation() -> None:
    import sys

    from backtest_store.cli.interrupt import patched_wait_for

    original = asyncio.wait_for
    with patched_wait_for():
        assert await _cancellations_lost(asyncio.wait_for) == 0
        assert await asyncio.wait_for(asyncio.sleep(0, "done"), None) == "done"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 0)
    assert asyncio.wait_for is original
    if sys.version_info < (3, 12):
        # Why the console command replaces it: Python 3.11's own loses some (CPython gh-86296).
        assert await _cancellations_lost(original) > 0
