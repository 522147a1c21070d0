"""Real servers for the whole suite: embedded ones by default, or external ones from the environment.

- BACKTEST_STORE_TEST_MONGO_URL: a MongoDB URL (its database part is replaced per test).
- BACKTEST_STORE_TEST_REDIS_URL: a Redis URL, e.g. redis://127.0.0.1:6379/13 (keys live under a per-test prefix).

The fast loop: a test is marked `unit` unless it asks (directly or through other fixtures) for a fixture of
SERVER_FIXTURES, or is marked `servers` (its body starts servers, or the CLI that starts them), or belongs to one of
the runs CI makes on their own (browser, reliability, large_dump). `pytest -m unit` then runs every server-free test
without starting a server. The marking is derived, so a new test lands on the right side without being told.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator

import pymongo
import pytest
from hypothesis import settings

from backtest_store import Store
from backtest_store.embedded import EmbeddedServer, EmbeddedServers
from tests import zoo
from tests.zoo import OpenStore, ServerUrls, unique


@pytest.fixture(scope="session")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerUrls]:
    mongo = os.environ.get("BACKTEST_STORE_TEST_MONGO_URL")
    redis = os.environ.get("BACKTEST_STORE_TEST_REDIS_URL")
    if mongo and redis:
        yield ServerUrls(mongo, redis)
        return
    async with EmbeddedServers(tmp_path_factory.mktemp("servers")) as embedded:
        yield ServerUrls(mongo or embedded.mongo_url, redis or embedded.redis_url, disposable_mongo=not mongo)


@pytest.fixture
async def open_store(servers: ServerUrls) -> AsyncIterator[OpenStore]:
    """The one store factory: stores on a fresh database and cache prefix, shared by every store this test opens,
    or each its own with `fresh=True`. Indexes are created; databases and prefixes are dropped afterwards."""
    shared = unique("t"), unique("bts")
    opened: list[tuple[Store, str, bool]] = []

    async def _open(*, fresh: bool = False, **options: object) -> Store:
        database, prefix = (unique("t"), unique("bts")) if fresh else shared
        options.setdefault("mongo_url", servers.mongo_db(database))
        options.setdefault("redis_url", servers.redis)
        options.setdefault("cache_prefix", prefix)
        # The tests assert round trips: count every command sent (production stores do not, see counting.py).
        options.setdefault("count_commands", True)
        store = await Store.open(**options)  # type: ignore[arg-type]
        opened.append((store, database, fresh))
        await store.create_indexes()
        return store

    yield _open
    dropped: set[str] = set()
    for store, database, _ in opened:
        if database not in dropped:
            dropped.add(database)
            # On the session's own embedded server the databases go with its files at the end; dropping one there
            # took SecantusDB 55 s after the real dump's 8,186 files. A server of the user's is left clean.
            if not servers.disposable_mongo:
                # Dropping the large-dump test's 200k documents takes longer than the stores' 15 s bound.
                with pymongo.timeout(300):
                    await store.mongo.drop_database(database)
            await store.flush_cache()
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test (`zoo.closed_port`)."""
    with zoo.closed_port() as port:
        yield port


# Property tests run few examples in the inner loop and many in CI (`.ci/run` sets BACKTEST_STORE_HYPOTHESIS=ci).
# A test's own `@settings(max_examples=...)` takes precedence over the profile.
settings.register_profile("dev", max_examples=30)
settings.register_profile("ci", max_examples=300)
settings.load_profile(os.environ.get("BACKTEST_STORE_HYPOTHESIS", "dev"))

# Fixtures that start servers: the suite's shared ones, and those a test file starts of its own.
SERVER_FIXTURES = {"servers", "real_dump", "own_redis", "own_valkey", "own_mongo", "redis_with_password", "cluster"}
NOT_UNIT = ("servers", "browser", "reliability", "large_dump", "typing")


@pytest.fixture(autouse=True)
def _unit_tests_start_no_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test derived `unit` that starts an embedded server in-process would slow the fast loop unseen: it fails,
    saying which marker it needs. (A CLI run in a subprocess cannot be caught here: mark such tests by hand.)"""
    if request.node.get_closest_marker("unit") is None:
        return

    async def refuse(server: EmbeddedServer, *args: object, **kwargs: object) -> None:
        pytest.fail(f"{request.node.nodeid} starts {server.name}, so it is no unit test: mark it "
                    "@pytest.mark.servers", pytrace=False)

    monkeypatch.setattr(EmbeddedServer, "start", refuse)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())) and not any(
                item.get_closest_marker(name) for name in NOT_UNIT):
            item.add_marker(pytest.mark.unit)


_MEASUREMENTS: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Record a measurement line; they are printed in the terminal summary, even with output captured."""
    return _MEASUREMENTS.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)
